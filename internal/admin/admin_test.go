package admin

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestAccessRules(t *testing.T) {
	t.Parallel()
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) })
	withToken := New(Options{Token: "0123456789abcdef-secret", PublicHealth: true, Metrics: ok})
	withToken.Handle("GET /api/v1/thing", ok)
	privateHealth := New(Options{Token: "0123456789abcdef-secret", PublicHealth: false, Metrics: ok})
	noToken := New(Options{PublicHealth: true, Metrics: ok})
	noToken.Handle("GET /api/v1/thing", ok)

	cases := []struct {
		desc   string
		srv    *Server
		path   string
		remote string
		auth   string
		want   int
	}{
		{"token: api without token", withToken, "/api/v1/thing", "203.0.113.5:1000", "", 401},
		{"token: api with wrong token", withToken, "/api/v1/thing", "203.0.113.5:1000", "Bearer nope", 401},
		{"token: api with token prefix only", withToken, "/api/v1/thing", "203.0.113.5:1000", "Bearer 0123456789abcdef", 401},
		{"token: api with token", withToken, "/api/v1/thing", "203.0.113.5:1000", "Bearer 0123456789abcdef-secret", 204},
		{"token: scheme case-insensitive", withToken, "/api/v1/thing", "203.0.113.5:1000", "bearer 0123456789abcdef-secret", 204},
		{"token: public health", withToken, "/healthz", "203.0.113.5:1000", "", 200},
		{"token: public metrics", withToken, "/metrics", "203.0.113.5:1000", "", 204},
		{"token: private health", privateHealth, "/healthz", "203.0.113.5:1000", "", 401},
		{"token: private health with token", privateHealth, "/healthz", "203.0.113.5:1000", "Bearer 0123456789abcdef-secret", 200},
		{"no token: loopback api", noToken, "/api/v1/thing", "127.0.0.1:1000", "", 204},
		{"no token: loopback v6", noToken, "/api/v1/thing", "[::1]:1000", "", 204},
		{"no token: remote api", noToken, "/api/v1/thing", "203.0.113.5:1000", "", 403},
		{"no token: remote health", noToken, "/healthz", "203.0.113.5:1000", "", 403},
		{"unknown endpoint", noToken, "/api/v1/nope", "127.0.0.1:1000", "", 404},
	}
	for _, tc := range cases {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			r := httptest.NewRequest("GET", tc.path, nil)
			r.RemoteAddr = tc.remote
			if tc.auth != "" {
				r.Header.Set("Authorization", tc.auth)
			}
			w := httptest.NewRecorder()
			tc.srv.ServeHTTP(w, r)
			if w.Code != tc.want {
				t.Fatalf("status = %d; want %d (body %s)", w.Code, tc.want, w.Body)
			}
			if w.Code == 401 && w.Header().Get("WWW-Authenticate") == "" {
				t.Error("401 without WWW-Authenticate")
			}
			if w.Code >= 400 && w.Header().Get("Content-Type") != "application/problem+json" {
				t.Errorf("error Content-Type = %q; want application/problem+json", w.Header().Get("Content-Type"))
			}
		})
	}
}

func TestReadiness(t *testing.T) {
	t.Parallel()
	ready := false
	s := New(Options{PublicHealth: true, Ready: func() bool { return ready }})
	r := httptest.NewRequest("GET", "/readyz", nil)
	r.RemoteAddr = "127.0.0.1:1"
	w := httptest.NewRecorder()
	s.ServeHTTP(w, r)
	if w.Code != 503 || w.Header().Get("Retry-After") == "" {
		t.Errorf("not ready: %d Retry-After=%q; want 503 with Retry-After", w.Code, w.Header().Get("Retry-After"))
	}
	ready = true
	w = httptest.NewRecorder()
	s.ServeHTTP(w, r)
	if w.Code != 200 {
		t.Errorf("ready: %d; want 200", w.Code)
	}
}

func TestPprofOnlyWhenEnabled(t *testing.T) {
	t.Parallel()
	for _, on := range []bool{false, true} {
		s := New(Options{Pprof: on, Token: "0123456789abcdef-secret"})
		r := httptest.NewRequest("GET", "/debug/pprof/", nil)
		r.RemoteAddr = "127.0.0.1:1"
		r.Header.Set("Authorization", "Bearer 0123456789abcdef-secret")
		w := httptest.NewRecorder()
		s.ServeHTTP(w, r)
		want := 404
		if on {
			want = 200
		}
		if w.Code != want {
			t.Errorf("pprof %v: /debug/pprof/ = %d; want %d", on, w.Code, want)
		}
		// Even when on, it is behind the token.
		r2 := httptest.NewRequest("GET", "/debug/pprof/", nil)
		r2.RemoteAddr = "127.0.0.1:1"
		w2 := httptest.NewRecorder()
		s.ServeHTTP(w2, r2)
		if w2.Code != 401 {
			t.Errorf("pprof %v without token: %d; want 401", on, w2.Code)
		}
	}
}
