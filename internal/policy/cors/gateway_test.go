package cors_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/portunus-gw/portunus/internal/gateway/gatewaytest"
)

// recorder is an upstream that remembers the methods it was asked and
// answers with its own (wrong) CORS headers, as many applications do.
type recorder struct {
	mu      sync.Mutex
	methods []string
}

func (u *recorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	u.mu.Lock()
	u.methods = append(u.methods, r.Method)
	u.mu.Unlock()
	w.Header().Set("Access-Control-Allow-Origin", "*")
	w.Header().Set("Vary", "Accept-Language")
	w.Header().Set("Content-Type", "application/json")
	_, _ = io.WriteString(w, `{"rows":[`+strings.Repeat(`{"a":1},`, 200)+`{}]}`)
}

func (u *recorder) seen() []string {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]string(nil), u.methods...)
}

func startGateway(t *testing.T, cfg string) string {
	return gatewaytest.URL(t, gatewaytest.Start(t, cfg))
}

func TestGatewayCORS(t *testing.T) {
	t.Parallel()
	up := &recorder{}
	srv := httptest.NewServer(up)
	t.Cleanup(srv.Close)
	base := startGateway(t, `
listeners: [{ address: "127.0.0.1:0" }]
observability: { access_log: { path: "off" } }
upstreams: [{ name: up, targets: [{ url: "`+srv.URL+`" }] }]
routes:
  - match: { path_prefix: /api, methods: [GET, PUT] }
    upstream: up
    compression: {}
    cors:
      origins: ["https://app.example.com", "https://*.example.com"]
      headers: [Content-Type, Authorization]
      credentials: true
      max_age: 1h
  - match: { path_prefix: /plain }
    upstream: up
`)
	client := &http.Client{Transport: &http.Transport{DisableCompression: true}, Timeout: 30 * time.Second}
	do := func(method, path string, h map[string]string) *http.Response {
		t.Helper()
		req, _ := http.NewRequest(method, base+path, nil)
		for k, v := range h {
			req.Header.Set(k, v)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp
	}
	check := func(resp *http.Response, name string, want map[string]string) {
		t.Helper()
		for k, w := range want {
			if got := strings.Join(resp.Header.Values(k), ", "); got != w {
				t.Errorf("%s: %s = %q; want %q", name, k, got, w)
			}
		}
	}

	resp := do("OPTIONS", "/api/items", map[string]string{
		"Origin": "https://app.example.com", "Access-Control-Request-Method": "PUT", "Access-Control-Request-Headers": "content-type",
	})
	if resp.StatusCode != http.StatusNoContent {
		t.Errorf("preflight: status %d; want 204", resp.StatusCode)
	}
	check(resp, "preflight", map[string]string{
		"Access-Control-Allow-Origin":      "https://app.example.com",
		"Access-Control-Allow-Methods":     "PUT",
		"Access-Control-Allow-Headers":     "Content-Type, Authorization",
		"Access-Control-Allow-Credentials": "true",
		"Access-Control-Max-Age":           "3600",
	})

	resp = do("OPTIONS", "/api/items", map[string]string{"Origin": "https://example.com", "Access-Control-Request-Method": "GET"})
	if resp.StatusCode != http.StatusForbidden || resp.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("preflight from the apex: status %d, Allow-Origin %q; want 403 and none", resp.StatusCode, resp.Header.Get("Access-Control-Allow-Origin"))
	}
	resp = do("OPTIONS", "/api/items", map[string]string{"Origin": "https://app.example.com", "Access-Control-Request-Method": "DELETE"})
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("preflight for a method the route refuses: status %d; want 405", resp.StatusCode)
	}
	if got := up.seen(); len(got) != 0 {
		t.Fatalf("upstream saw %q after preflights; want nothing", got)
	}

	resp = do("GET", "/api/items", map[string]string{"Origin": "https://eu.example.com", "Accept-Encoding": "gzip"})
	if resp.StatusCode != 200 {
		t.Errorf("actual request: status %d; want 200", resp.StatusCode)
	}
	check(resp, "actual request", map[string]string{
		"Access-Control-Allow-Origin":      "https://eu.example.com",
		"Access-Control-Allow-Credentials": "true",
		"Content-Encoding":                 "gzip",
	})
	if v := strings.Join(resp.Header.Values("Vary"), ","); !strings.Contains(v, "Accept-Language") || !strings.Contains(v, "Accept-Encoding") || !strings.Contains(v, "Origin") {
		t.Errorf("Vary = %q; want the upstream's, compression's and Origin merged", v)
	}

	resp = do("GET", "/api/items", nil)
	check(resp, "request without Origin", map[string]string{"Access-Control-Allow-Origin": ""})
	if v := strings.Join(resp.Header.Values("Vary"), ","); !strings.Contains(v, "Origin") {
		t.Errorf("request without Origin: Vary = %q; want Origin in it", v)
	}

	resp = do("GET", "/plain", map[string]string{"Origin": "https://app.example.com"})
	check(resp, "route without cors", map[string]string{"Access-Control-Allow-Origin": "*", "Vary": "Accept-Language"})

	if got := up.seen(); strings.Join(got, ",") != "GET,GET,GET" {
		t.Errorf("upstream saw %q; want only the three GETs", got)
	}
}
