package cors

import (
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/portunus-gw/portunus/internal/config"
	"github.com/portunus-gw/portunus/internal/pipeline"
)

// upstreamStub stands for the rest of the chain: it counts calls and
// answers with the headers it is given, as an upstream with its own
// CORS handling would.
type upstreamStub struct {
	calls  int
	header http.Header
}

func (u *upstreamStub) handler(w http.ResponseWriter, r *http.Request, s *pipeline.State) {
	u.calls++
	for k, v := range u.header {
		w.Header()[k] = v
	}
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write([]byte("ok"))
}

func serve(t *testing.T, c config.CORS, up *upstreamStub, req *http.Request) *httptest.ResponseRecorder {
	t.Helper()
	mw, err := New(c)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	rec := httptest.NewRecorder()
	mw(up.handler)(rec, req, &pipeline.State{RequestID: "r1"})
	return rec
}

func preflightReq(origin, method, headers string) *http.Request {
	r := httptest.NewRequest(http.MethodOptions, "/api", nil)
	r.Header.Set("Origin", origin)
	r.Header.Set("Access-Control-Request-Method", method)
	if headers != "" {
		r.Header.Set("Access-Control-Request-Headers", headers)
	}
	return r
}

func TestPreflight(t *testing.T) {
	t.Parallel()
	full := config.CORS{
		Origins:     []string{"https://app.example.com", "https://*.example.com"},
		Methods:     []string{"GET", "post"},
		Headers:     []string{"authorization", "Content-Type"},
		Credentials: true,
		MaxAge:      config.Duration(10 * time.Minute),
	}
	cases := []struct {
		name   string
		cfg    config.CORS
		req    *http.Request
		status int
		want   map[string]string // "" means absent
	}{
		{
			name: "allowed origin, full config", cfg: full,
			req:    preflightReq("https://app.example.com", "POST", "authorization"),
			status: http.StatusNoContent,
			want: map[string]string{
				"Access-Control-Allow-Origin":      "https://app.example.com",
				"Access-Control-Allow-Credentials": "true",
				"Access-Control-Allow-Methods":     "GET, POST",
				"Access-Control-Allow-Headers":     "Authorization, Content-Type",
				"Access-Control-Max-Age":           "600",
			},
		},
		{
			name: "wildcard origin echoed as sent", cfg: full,
			req:    preflightReq("https://EU.example.com", "GET", ""),
			status: http.StatusNoContent,
			want:   map[string]string{"Access-Control-Allow-Origin": "https://EU.example.com"},
		},
		{
			name: "requested header not listed is not granted", cfg: full,
			req:    preflightReq("https://app.example.com", "GET", "x-secret"),
			status: http.StatusNoContent,
			want:   map[string]string{"Access-Control-Allow-Headers": "Authorization, Content-Type"},
		},
		{
			name: "disallowed origin refused", cfg: full,
			req:    preflightReq("https://evil.org", "GET", ""),
			status: http.StatusForbidden,
			want: map[string]string{
				"Access-Control-Allow-Origin":      "",
				"Access-Control-Allow-Credentials": "",
				"Access-Control-Allow-Methods":     "",
				"Content-Type":                     "application/problem+json",
			},
		},
		{
			name: "apex refused by wildcard", cfg: config.CORS{Origins: []string{"https://*.example.com"}},
			req:    preflightReq("https://example.com", "GET", ""),
			status: http.StatusForbidden,
			want:   map[string]string{"Access-Control-Allow-Origin": ""},
		},
		{
			name: "null origin refused by a list", cfg: full,
			req:    preflightReq("null", "GET", ""),
			status: http.StatusForbidden,
		},
		{
			name: "star without credentials", cfg: config.CORS{Origins: []string{"*"}},
			req:    preflightReq("https://any.example", "PUT", "x-custom"),
			status: http.StatusNoContent,
			want: map[string]string{
				"Access-Control-Allow-Origin":      "*",
				"Access-Control-Allow-Credentials": "",
				"Access-Control-Allow-Methods":     "PUT", // no list: the requested (routed) method
				"Access-Control-Allow-Headers":     "",    // no list: nothing echoed
				"Access-Control-Max-Age":           "",
			},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			up := &upstreamStub{}
			rec := serve(t, c.cfg, up, c.req)
			if up.calls != 0 {
				t.Errorf("upstream calls = %d; want 0 (a preflight is answered by the gateway)", up.calls)
			}
			if rec.Code != c.status {
				t.Errorf("status = %d; want %d", rec.Code, c.status)
			}
			for k, want := range c.want {
				if got := rec.Header().Get(k); got != want {
					t.Errorf("%s = %q; want %q", k, got, want)
				}
			}
			if got := rec.Header().Values("Vary"); !hasToken(got, "origin") {
				t.Errorf("Vary = %q; want it to name Origin", got)
			}
		})
	}
}

func TestActualRequest(t *testing.T) {
	t.Parallel()
	cfg := config.CORS{Origins: []string{"https://app.example.com"}, Credentials: true}
	upstreamCORS := http.Header{
		"Access-Control-Allow-Origin":      {"*"},
		"Access-Control-Allow-Credentials": {"true"},
		"Access-Control-Allow-Methods":     {"DELETE"},
		"Access-Control-Expose-Headers":    {"X-Total"},
		"Vary":                             {"Accept-Encoding"},
	}
	cases := []struct {
		name       string
		cfg        config.CORS
		origin     string
		upstream   http.Header
		wantOrigin string
		wantCreds  string
		wantVary   []string
		wantExpose string
	}{
		{"allowed origin", cfg, "https://app.example.com", nil, "https://app.example.com", "true", []string{"Origin"}, ""},
		{"disallowed origin passes without grant", cfg, "https://evil.org", nil, "", "", []string{"Origin"}, ""},
		{"no origin only varies", cfg, "", nil, "", "", []string{"Origin"}, ""},
		{"upstream grant replaced", cfg, "https://app.example.com", upstreamCORS, "https://app.example.com", "true", []string{"Accept-Encoding", "Origin"}, "X-Total"},
		{"upstream grant removed for other origins", cfg, "https://evil.org", upstreamCORS, "", "", []string{"Accept-Encoding", "Origin"}, "X-Total"},
		{"star", config.CORS{Origins: []string{"*"}}, "https://x.example", nil, "*", "", []string{"Origin"}, ""},
		{"vary already names origin", cfg, "", http.Header{"Vary": {"accept, ORIGIN"}}, "", "", []string{"accept, ORIGIN"}, ""},
		{"vary star kept", cfg, "", http.Header{"Vary": {"*"}}, "", "", []string{"*"}, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			up := &upstreamStub{header: c.upstream.Clone()}
			r := httptest.NewRequest(http.MethodGet, "/api", nil)
			if c.origin != "" {
				r.Header.Set("Origin", c.origin)
			}
			rec := serve(t, c.cfg, up, r)
			if up.calls != 1 || rec.Code != http.StatusOK || rec.Body.String() != "ok" {
				t.Fatalf("got %d upstream calls, status %d, body %q; want 1, 200, \"ok\"", up.calls, rec.Code, rec.Body.String())
			}
			h := rec.Header()
			if got := h.Get("Access-Control-Allow-Origin"); got != c.wantOrigin {
				t.Errorf("Allow-Origin = %q; want %q", got, c.wantOrigin)
			}
			if got := h.Values("Access-Control-Allow-Origin"); len(got) > 1 {
				t.Errorf("Allow-Origin has %d values %q; want one", len(got), got)
			}
			if got := h.Get("Access-Control-Allow-Credentials"); got != c.wantCreds {
				t.Errorf("Allow-Credentials = %q; want %q", got, c.wantCreds)
			}
			if got := h.Get("Access-Control-Allow-Methods"); got != "" {
				t.Errorf("Allow-Methods = %q on an actual answer; want none", got)
			}
			if got := h.Values("Vary"); !slices.Equal(got, c.wantVary) {
				t.Errorf("Vary = %q; want %q", got, c.wantVary)
			}
			if got := h.Get("Access-Control-Expose-Headers"); got != c.wantExpose {
				t.Errorf("Expose-Headers = %q; want %q (the upstream's is kept)", got, c.wantExpose)
			}
		})
	}
}

// TestStreamedAnswerDecorated: a flush before any write sends the header,
// and it must already carry the grant.
func TestStreamedAnswerDecorated(t *testing.T) {
	t.Parallel()
	mw, err := New(config.CORS{Origins: []string{"https://app.example.com"}})
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	r := httptest.NewRequest(http.MethodGet, "/events", nil)
	r.Header.Set("Origin", "https://app.example.com")
	mw(func(w http.ResponseWriter, r *http.Request, s *pipeline.State) {
		w.Header().Set("Access-Control-Allow-Origin", "*")
		if err := http.NewResponseController(w).Flush(); err != nil {
			t.Errorf("flush: %v", err)
		}
		_, _ = w.Write([]byte("data: 1\n\n"))
	})(rec, r, &pipeline.State{})
	if !rec.Flushed {
		t.Errorf("recorder not flushed; want the flush to reach it")
	}
	if got := rec.Header().Get("Access-Control-Allow-Origin"); got != "https://app.example.com" {
		t.Errorf("Allow-Origin = %q; want the gateway's grant", got)
	}
}

func TestNewRefusesStarWithCredentials(t *testing.T) {
	t.Parallel()
	if _, err := New(config.CORS{Origins: []string{"*"}, Credentials: true}); err == nil {
		t.Errorf("New(* with credentials): got no error; want one")
	}
}

func BenchmarkActualAllowed(b *testing.B) {
	mw, err := New(config.CORS{Origins: []string{"https://app.example.com", "https://*.example.com"}, Credentials: true})
	if err != nil {
		b.Fatal(err)
	}
	h := mw(func(w http.ResponseWriter, r *http.Request, s *pipeline.State) { w.WriteHeader(http.StatusOK) })
	r := httptest.NewRequest(http.MethodGet, "/api", nil)
	r.Header.Set("Origin", "https://app.example.com")
	w := &discardWriter{h: http.Header{}}
	s := &pipeline.State{}
	b.ReportAllocs()
	for b.Loop() {
		clear(w.h)
		h(w, r, s)
	}
}

func BenchmarkActualWildcard(b *testing.B) {
	mw, err := New(config.CORS{Origins: []string{"https://app.example.com", "https://*.example.com"}})
	if err != nil {
		b.Fatal(err)
	}
	h := mw(func(w http.ResponseWriter, r *http.Request, s *pipeline.State) { w.WriteHeader(http.StatusOK) })
	r := httptest.NewRequest(http.MethodGet, "/api", nil)
	r.Header.Set("Origin", "https://eu.shop.example.com")
	w := &discardWriter{h: http.Header{}}
	s := &pipeline.State{}
	b.ReportAllocs()
	for b.Loop() {
		clear(w.h)
		h(w, r, s)
	}
}

func BenchmarkPreflight(b *testing.B) {
	mw, err := New(config.CORS{Origins: []string{"https://app.example.com"}, Methods: []string{"GET", "POST"}, Headers: []string{"Authorization"}, MaxAge: config.Duration(time.Minute)})
	if err != nil {
		b.Fatal(err)
	}
	h := mw(func(w http.ResponseWriter, r *http.Request, s *pipeline.State) {})
	r := preflightReq("https://app.example.com", "POST", "authorization")
	w := &discardWriter{h: http.Header{}}
	s := &pipeline.State{}
	b.ReportAllocs()
	for b.Loop() {
		clear(w.h)
		h(w, r, s)
	}
}

// discardWriter is a ResponseWriter that keeps only its header map, so
// benchmarks measure the policy and not a recorder.
type discardWriter struct {
	h    http.Header
	code int
}

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) WriteHeader(code int)        { w.code = code }
func (w *discardWriter) Write(b []byte) (int, error) { return len(b), nil }
