// Package oauth2_test runs OAuth2 token introspection and forward auth end
// to end: a gateway started from a config file (gateway.Start) in front of
// a real upstream, a real RFC 7662 introspection endpoint and a real
// authorization service, all on :0 ports.
package oauth2_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/portunus-gw/portunus/internal/gateway"
)

// env is one gateway with its upstream, introspection endpoint and auth
// service, and counters of what each saw.
type env struct {
	gw         string // http://addr
	idpCalls   atomic.Int64
	authCalls  atomic.Int64
	idpDown    atomic.Bool
	upstreamHd atomic.Value // http.Header of the last upstream request
	upstreamN  atomic.Int64
}

func newEnv(t *testing.T) *env {
	t.Helper()
	e := &env{}
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e.upstreamN.Add(1)
		e.upstreamHd.Store(r.Header.Clone())
		_, _ = io.WriteString(w, "upstream says hi")
	}))
	t.Cleanup(upstream.Close)
	idp := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e.idpCalls.Add(1)
		if e.idpDown.Load() {
			http.Error(w, "down", http.StatusBadGateway)
			return
		}
		if id, secret, ok := r.BasicAuth(); !ok || id != "portunus" || secret != "idp-secret" {
			http.Error(w, `{"error":"invalid_client"}`, http.StatusUnauthorized)
			return
		}
		var claims map[string]any
		switch r.PostFormValue("token") {
		case "alice-token":
			claims = map[string]any{"active": true, "sub": "alice", "scope": "orders:read orders:write",
				"exp": time.Now().Add(time.Hour).Unix()}
		case "bob-token":
			claims = map[string]any{"active": true, "sub": "bob", "scope": "profile"}
		default:
			claims = map[string]any{"active": false}
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(claims)
	}))
	t.Cleanup(idp.Close)
	authsvc := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e.authCalls.Add(1)
		if r.Header.Get("Cookie") == "session=valid" {
			w.Header().Set("X-User-Id", "user-7")
			w.Header().Set("X-Auth-Consumer", "carol")
			w.WriteHeader(http.StatusOK)
			return
		}
		w.Header().Set("WWW-Authenticate", `Cookie realm="authsvc"`)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = io.WriteString(w, `{"login":"https://login.example"}`)
	}))
	t.Cleanup(authsvc.Close)

	cfg := fmt.Sprintf(`
listeners: [{ address: "127.0.0.1:0" }]
observability: { access_log: { path: "off" } }
consumers:
  - name: alice
    roles: [orders-admin]
oauth2_providers:
  - name: idp
    introspection_url: "%s/introspect"
    client_id: portunus
    client_secret: idp-secret
forward_auth:
  - name: authsvc
    url: "%s/check"
    copy_headers: [X-User-Id]
upstreams:
  - name: app
    targets: [{ url: "%s" }]
routes:
  - name: orders
    match: { path_prefix: /orders }
    upstream: app
    auth: ["oauth2:idp"]
    allow: { scopes: ["orders:read"] }
  - name: admin
    match: { path_prefix: /admin }
    upstream: app
    auth: ["oauth2:idp"]
    allow: { roles: [orders-admin] }
  - name: app
    match: { path_prefix: /app }
    upstream: app
    auth: ["forward:authsvc"]
`, idp.URL, authsvc.URL, upstream.URL)
	path := filepath.Join(t.TempDir(), "portunus.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	if testing.Verbose() {
		log = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	rt, err := gateway.Start(gateway.Options{ConfigPath: path, Log: log})
	if err != nil {
		t.Fatalf("gateway start: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		rt.Shutdown(ctx)
	})
	for _, a := range rt.ListenerAddrs() {
		e.gw = "http://" + a
	}
	return e
}

type reply struct {
	status int
	header http.Header
	body   string
}

func (e *env) do(t *testing.T, path string, header map[string]string) reply {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, e.gw+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	client := &http.Client{Timeout: 20 * time.Second}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return reply{resp.StatusCode, resp.Header, string(body)}
}

func (e *env) lastUpstreamHeader() http.Header {
	h, _ := e.upstreamHd.Load().(http.Header)
	return h
}

func TestIntrospection(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	tests := []struct {
		name, path, authz string
		status            int
		challenge         bool
	}{
		{"no token", "/orders/1", "", 401, true},
		{"inactive token", "/orders/1", "Bearer nobody", 401, true},
		{"malformed token", "/orders/1", "Bearer a b", 401, true},
		{"active token with scope", "/orders/1", "Bearer alice-token", 200, false},
		{"active token without scope", "/orders/1", "Bearer bob-token", 403, false},
		{"roles of the configured consumer added", "/admin", "Bearer alice-token", 200, false},
		{"no such roles", "/admin", "Bearer bob-token", 403, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := map[string]string{}
			if tc.authz != "" {
				h["Authorization"] = tc.authz
			}
			got := e.do(t, tc.path, h)
			if got.status != tc.status {
				t.Fatalf("status: got %d; want %d (body %s)", got.status, tc.status, got.body)
			}
			if ch := got.header.Get("WWW-Authenticate"); tc.challenge && ch != `Bearer realm="portunus"` {
				t.Errorf("WWW-Authenticate: got %q; want the Bearer challenge", ch)
			}
		})
	}
}

func TestIntrospectionIdentityUpstream(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	before := e.idpCalls.Load()
	for n := 0; n < 5; n++ {
		got := e.do(t, "/orders/1", map[string]string{
			"Authorization":    "Bearer alice-token",
			"X-Consumer-Name":  "mallory", // spoofed: must be replaced
			"X-Consumer-Roles": "root",
		})
		if got.status != 200 {
			t.Fatalf("status: got %d; want 200 (%s)", got.status, got.body)
		}
	}
	if got := e.idpCalls.Load() - before; got != 1 {
		t.Errorf("introspection calls for 5 requests: got %d; want 1 (cached)", got)
	}
	h := e.lastUpstreamHeader()
	if got := h.Get("X-Consumer-Name"); got != "alice" {
		t.Errorf("upstream X-Consumer-Name: got %q; want alice", got)
	}
	if got := h.Get("X-Consumer-Roles"); strings.Contains(got, "root") || !strings.Contains(got, "orders-admin") {
		t.Errorf("upstream X-Consumer-Roles: got %q; want the token's and alice's roles only", got)
	}
	if got := h.Get("Authorization"); got != "" {
		t.Errorf("upstream Authorization: got %q; want none (hide_credentials)", got)
	}
}

func TestIntrospectionEndpointDown(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.idpDown.Store(true)
	before := e.upstreamN.Load()
	got := e.do(t, "/orders/1", map[string]string{"Authorization": "Bearer alice-token"})
	if got.status != http.StatusServiceUnavailable {
		t.Fatalf("status: got %d; want 503 (never allow)", got.status)
	}
	if got.header.Get("Retry-After") == "" || got.header.Get("Content-Type") != "application/problem+json" ||
		!strings.Contains(got.body, "upstream-unavailable") {
		t.Errorf("answer: got %v %s; want problem+json upstream-unavailable with Retry-After", got.header, got.body)
	}
	if n := e.upstreamN.Load() - before; n != 0 {
		t.Errorf("upstream reached %d times; want 0", n)
	}
	e.idpDown.Store(false)
	if got := e.do(t, "/orders/1", map[string]string{"Authorization": "Bearer alice-token"}); got.status != 200 {
		t.Errorf("after recovery: got %d; want 200", got.status)
	}
}

func TestForwardAuth(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	t.Run("allow copies headers", func(t *testing.T) {
		got := e.do(t, "/app/home", map[string]string{"Cookie": "session=valid", "X-User-Id": "spoofed"})
		if got.status != 200 || got.body != "upstream says hi" {
			t.Fatalf("got %d %q; want 200 from the upstream", got.status, got.body)
		}
		h := e.lastUpstreamHeader()
		if vs := h.Values("X-User-Id"); len(vs) != 1 || vs[0] != "user-7" {
			t.Errorf("upstream X-User-Id: got %q; want [user-7]", vs)
		}
		if got := h.Get("X-Consumer-Name"); got != "carol" {
			t.Errorf("upstream X-Consumer-Name: got %q; want carol", got)
		}
	})
	t.Run("deny relayed", func(t *testing.T) {
		before := e.upstreamN.Load()
		got := e.do(t, "/app/home", map[string]string{"Cookie": "session=stolen"})
		if got.status != 401 {
			t.Fatalf("status: got %d; want 401", got.status)
		}
		if ch := got.header.Get("WWW-Authenticate"); ch != `Cookie realm="authsvc"` {
			t.Errorf("WWW-Authenticate: got %q; want the service's", ch)
		}
		if got.body != `{"login":"https://login.example"}` {
			t.Errorf("body: got %q; want the service's", got.body)
		}
		if n := e.upstreamN.Load() - before; n != 0 {
			t.Errorf("upstream reached %d times; want 0", n)
		}
	})
	t.Run("decisions cached", func(t *testing.T) {
		before := e.authCalls.Load()
		for n := 0; n < 5; n++ {
			e.do(t, "/app/cached", map[string]string{"Cookie": "session=valid"})
		}
		// The cache lasts one second; a slow machine may see it expire
		// once between requests, never five times.
		if got := e.authCalls.Load() - before; got < 1 || got > 2 {
			t.Errorf("auth service calls for 5 identical requests: got %d; want 1 (2 at most on a slow machine)", got)
		}
	})
}
