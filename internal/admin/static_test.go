package admin

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

// Static files (the dashboard) need no token, but nothing else becomes
// reachable through their prefix, and the loopback rule still holds.
func TestStaticAccess(t *testing.T) {
	t.Parallel()
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) })
	const tok = "0123456789abcdef-secret"
	withToken := New(Options{Token: tok})
	withToken.Handle("GET /api/v1/thing", ok)
	withToken.HandleStatic("/ui/", ok)
	noToken := New(Options{})
	noToken.HandleStatic("/ui/", ok)
	if !withToken.TokenRequired() || noToken.TokenRequired() {
		t.Fatalf("TokenRequired = %v, %v; want true, false", withToken.TokenRequired(), noToken.TokenRequired())
	}
	cases := []struct {
		desc, method, path, remote string
		srv                        *Server
		want                       int
	}{
		{"token: file without token", "GET", "/ui/app.js", "203.0.113.5:1000", withToken, 204},
		{"token: HEAD without token", "HEAD", "/ui/", "203.0.113.5:1000", withToken, 204},
		{"token: bare prefix redirects", "GET", "/ui", "203.0.113.5:1000", withToken, 301},
		{"token: POST is not static", "POST", "/ui/app.js", "203.0.113.5:1000", withToken, 401},
		{"token: dot-dot out of the prefix", "GET", "/ui/../api/v1/thing", "203.0.113.5:1000", withToken, 307},
		{"token: api still needs the token", "GET", "/api/v1/thing", "203.0.113.5:1000", withToken, 401},
		{"token: look-alike prefix", "GET", "/uix/app.js", "203.0.113.5:1000", withToken, 401},
		{"no token: loopback file", "GET", "/ui/app.js", "127.0.0.1:1000", noToken, 204},
		{"no token: remote file", "GET", "/ui/app.js", "203.0.113.5:1000", noToken, 403},
	}
	for _, c := range cases {
		req := httptest.NewRequest(c.method, c.path, nil)
		req.RemoteAddr = c.remote
		rec := httptest.NewRecorder()
		c.srv.ServeHTTP(rec, req)
		if rec.Code != c.want {
			t.Errorf("%s: %s %s = %d; want %d", c.desc, c.method, c.path, rec.Code, c.want)
		}
		if c.path == "/ui/../api/v1/thing" {
			if loc := rec.Header().Get("Location"); loc != "/api/v1/thing" {
				t.Errorf("%s: Location %q; want /api/v1/thing (which then needs the token)", c.desc, loc)
			}
		}
	}
}
