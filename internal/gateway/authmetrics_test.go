package gateway

import (
	"io"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestAuthOutcomesReported checks that authentication outcomes reach the
// metrics: successes by method, failures by method and reason.
func TestAuthOutcomesReported(t *testing.T) {
	t.Parallel()
	up := newUpstream(t, "up")
	g := startGateway(t, `
listeners: [{ address: "127.0.0.1:0" }]
observability: { access_log: { path: "off" } }
consumers:
  - { name: alice, roles: [reader], api_keys: ["alice-test-key-0001"] }
upstreams: [{ name: up, targets: [{ url: "`+up.URL+`" }] }]
routes:
  - { match: { path_prefix: /p }, upstream: up, auth: [api_key] }
`)
	send := func(key string, want int) {
		h := map[string]string{}
		if key != "" {
			h["X-API-Key"] = key
		}
		resp := g.do("GET", "/p", h, "")
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Fatalf("key %q: status %d; want %d", key, resp.StatusCode, want)
		}
	}
	send("alice-test-key-0001", 200)
	send("alice-test-key-0001", 200)
	send("wrong-key", 401)
	send("", 401)
	if got := up.last(t).Header["X-Consumer-Name"]; len(got) != 1 || got[0] != "alice" {
		t.Errorf("upstream X-Consumer-Name = %v; want [alice]", got)
	}
	w := httptest.NewRecorder()
	g.rt.Metrics().Handler().ServeHTTP(w, httptest.NewRequest("GET", "/metrics", nil))
	b, _ := io.ReadAll(w.Body)
	text := string(b)
	for _, want := range []string{
		`portunus_auth_requests_total{method="api_key",reason="",result="success"} 2`,
		`portunus_auth_requests_total{method="none",reason="no credentials",result="failure"} 1`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("metrics lack %s:\n%s", want, grepLines(text, "portunus_auth"))
		}
	}
	if !strings.Contains(text, `portunus_auth_requests_total{method="api_key",reason=`) || !strings.Contains(grepLines(text, `result="failure"`), `method="api_key"`) {
		t.Errorf("the wrong key is not counted as an api_key failure:\n%s", grepLines(text, "portunus_auth"))
	}
}
