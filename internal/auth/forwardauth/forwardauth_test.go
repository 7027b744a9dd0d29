package forwardauth

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/portunus-gw/portunus/internal/auth"
	"github.com/portunus-gw/portunus/internal/auth/ttlcache"
	"github.com/portunus-gw/portunus/internal/config"
	"github.com/portunus-gw/portunus/internal/pipeline"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// authsvc is a real authorization service: it allows Authorization
// "Bearer good", redirects "Bearer login", fails with "Bearer boom", and
// otherwise refuses with a 401 and its own challenge. It records the last
// request it saw and counts calls.
type authsvc struct {
	srv   *httptest.Server
	calls atomic.Int64
	mu    sync.Mutex
	last  *http.Request
}

func newAuthsvc(t *testing.T) *authsvc {
	t.Helper()
	a := &authsvc{}
	a.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a.calls.Add(1)
		a.mu.Lock()
		a.last = r.Clone(r.Context())
		a.mu.Unlock()
		switch r.Header.Get("Authorization") {
		case "Bearer good":
			w.Header().Set("X-User-Id", "u-42")
			w.Header().Set("X-Auth-Consumer", "alice")
			w.Header().Set("X-Auth-Roles", "admin, ops")
			w.Header().Set("X-Internal", "not copied")
			w.WriteHeader(http.StatusNoContent)
		case "Bearer login":
			http.Redirect(w, r, "https://login.example/?next=x", http.StatusFound)
		case "Bearer boom":
			http.Error(w, "internal detail", http.StatusInternalServerError)
		case "Bearer big":
			w.WriteHeader(http.StatusForbidden)
			_, _ = w.Write([]byte(strings.Repeat("x", maxBody+1)))
		default:
			w.Header().Set("WWW-Authenticate", `Bearer realm="authsvc", error="invalid_token"`)
			w.Header().Set("Connection", "X-Hop")
			w.Header().Set("X-Hop", "hop")
			w.Header().Set("Content-Type", "text/plain")
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = w.Write([]byte("go away"))
		}
	}))
	t.Cleanup(a.srv.Close)
	return a
}

func (a *authsvc) lastRequest() *http.Request {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.last
}

func newService(t *testing.T, u string, c *clock) *Service {
	t.Helper()
	s, err := New(config.ForwardAuth{Name: "authsvc", URL: u, CopyHeaders: []string{"x-user-id", "X-Tenant"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c != nil {
		s.now = c.now
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func request(authz string) (*http.Request, *pipeline.State) {
	r := httptest.NewRequest(http.MethodPost, "http://api.test/orders/7?x=1", strings.NewReader("body"))
	if authz != "" {
		r.Header.Set("Authorization", authz)
	}
	return r, &pipeline.State{Path: "/orders/7", ClientIP: netip.MustParseAddr("203.0.113.9"), RequestID: "req-9"}
}

func TestAllowCopiesHeaders(t *testing.T) {
	t.Parallel()
	a := newAuthsvc(t)
	s := newService(t, a.srv.URL+"/check", nil)
	if got, want := s.Name(), "forward:authsvc"; got != want {
		t.Errorf("Name: got %q; want %q", got, want)
	}
	if got := s.Challenge(); got != "" {
		t.Errorf("Challenge: got %q; want none", got)
	}
	r, st := request("Bearer good")
	r.Header.Set("Connection", "X-Drop")
	r.Header.Set("X-Drop", "1")
	r.Header.Set("Cookie", "sid=1")
	id, err := s.Authenticate(r, st)
	if err != nil {
		t.Fatalf("Authenticate: %v", err)
	}
	if id.Consumer != "alice" || strings.Join(id.Roles, ",") != "admin,ops" {
		t.Errorf("identity: got %q %q; want alice [admin ops]", id.Consumer, id.Roles)
	}
	if got := id.Header.Get("X-User-Id"); got != "u-42" {
		t.Errorf("X-User-Id: got %q; want u-42", got)
	}
	if vs, ok := id.Header["X-Tenant"]; !ok || len(vs) != 0 {
		t.Errorf("X-Tenant absent from the answer: got %q, present=%v; want present with no value (client copy removed)", vs, ok)
	}
	if _, ok := id.Header["X-Internal"]; ok {
		t.Errorf("X-Internal copied; want only copy_headers")
	}
	got := a.lastRequest()
	checks := []struct{ name, got, want string }{
		{"method", got.Method, http.MethodGet},
		{"path", got.URL.Path, "/check"},
		{"X-Forwarded-Method", got.Header.Get("X-Forwarded-Method"), "POST"},
		{"X-Forwarded-Host", got.Header.Get("X-Forwarded-Host"), "api.test"},
		{"X-Forwarded-Uri", got.Header.Get("X-Forwarded-Uri"), "/orders/7?x=1"},
		{"X-Forwarded-Proto", got.Header.Get("X-Forwarded-Proto"), "http"},
		{"X-Forwarded-For", got.Header.Get("X-Forwarded-For"), "203.0.113.9"},
		{"Authorization", got.Header.Get("Authorization"), "Bearer good"},
		{"Cookie", got.Header.Get("Cookie"), "sid=1"},
		{"X-Drop (named by Connection)", got.Header.Get("X-Drop"), ""},
		{"Content-Length", fmt.Sprint(got.ContentLength), "0"},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("service saw %s: got %q; want %q", c.name, c.got, c.want)
		}
	}
}

func TestDenyRelayed(t *testing.T) {
	t.Parallel()
	a := newAuthsvc(t)
	s := newService(t, a.srv.URL, nil)
	r, st := request("Bearer bad")
	id, err := s.Authenticate(r, st)
	var d *auth.Denied
	if id != nil || !errors.As(err, &d) {
		t.Fatalf("got (%v, %v); want *auth.Denied", id, err)
	}
	if d.Status != http.StatusUnauthorized {
		t.Errorf("status: got %d; want 401", d.Status)
	}
	if got, want := d.Header.Get("WWW-Authenticate"), `Bearer realm="authsvc", error="invalid_token"`; got != want {
		t.Errorf("WWW-Authenticate: got %q; want %q", got, want)
	}
	if got := string(d.Body); got != "go away" {
		t.Errorf("body: got %q; want %q", got, "go away")
	}
	for _, h := range []string{"Connection", "X-Hop", "Content-Length"} {
		if _, ok := d.Header[h]; ok {
			t.Errorf("relayed hop-by-hop header %s", h)
		}
	}
}

func TestRedirectNotFollowed(t *testing.T) {
	t.Parallel()
	a := newAuthsvc(t)
	s := newService(t, a.srv.URL, nil)
	r, st := request("Bearer login")
	_, err := s.Authenticate(r, st)
	var d *auth.Denied
	if !errors.As(err, &d) || d.Status != http.StatusFound || d.Header.Get("Location") == "" {
		t.Errorf("got %v; want the 302 with its Location", err)
	}
	if got := a.calls.Load(); got != 1 {
		t.Errorf("calls: got %d; want 1 (redirect not followed)", got)
	}
}

func TestServiceFailureNeverAllows(t *testing.T) {
	t.Parallel()
	dead := httptest.NewServer(http.NotFoundHandler())
	deadURL := dead.URL
	dead.Close()
	a := newAuthsvc(t)
	tests := []struct{ name, url, authz string }{
		{"service down", deadURL, "Bearer good"},
		{"5xx", a.srv.URL, "Bearer boom"},
		{"oversized deny", a.srv.URL, "Bearer big"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := newService(t, tc.url, nil)
			r, st := request(tc.authz)
			id, err := s.Authenticate(r, st)
			var u *auth.Unavailable
			if id != nil || !errors.As(err, &u) {
				t.Fatalf("got (%v, %v); want *auth.Unavailable (a 503, never allow)", id, err)
			}
			if strings.Contains(u.Reason, "internal detail") {
				t.Errorf("reason %q leaks the service's answer", u.Reason)
			}
			if got := s.cache.Len(); got != 0 {
				t.Errorf("cached after failure: got %d entries; want 0", got)
			}
		})
	}
}

func TestTimeout(t *testing.T) {
	t.Parallel()
	gate := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-gate }))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(gate) })
	s := newService(t, srv.URL, nil)
	r, st := request("Bearer good")
	id, err := s.Authenticate(r, st)
	var u *auth.Unavailable
	if id != nil || !errors.As(err, &u) {
		t.Errorf("got (%v, %v); want *auth.Unavailable (a 503, never allow)", id, err)
	}
}

func TestDecisionCache(t *testing.T) {
	t.Parallel()
	a := newAuthsvc(t)
	c := &clock{t: time.Now()}
	s := newService(t, a.srv.URL, c)
	ask := func(authz, path string) error {
		r, st := request(authz)
		st.Path = path
		_, err := s.Authenticate(r, st)
		return err
	}
	steps := []struct {
		name        string
		advance     time.Duration
		authz, path string
		calls       int64
	}{
		{"first", 0, "Bearer good", "/a", 1},
		{"repeat", 0, "Bearer good", "/a", 1},
		{"other path", 0, "Bearer good", "/b", 2},
		{"other credential", 0, "Bearer bad", "/a", 3},
		{"deny cached", 0, "Bearer bad", "/a", 3},
		{"within the second", 900 * time.Millisecond, "Bearer good", "/a", 3},
		{"after it", 200 * time.Millisecond, "Bearer good", "/a", 4},
	}
	for _, st := range steps {
		c.add(st.advance)
		_ = ask(st.authz, st.path)
		if got := a.calls.Load(); got != st.calls {
			t.Errorf("%s: calls got %d; want %d", st.name, got, st.calls)
		}
	}
}

func TestDecisionCacheBounded(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	t.Cleanup(srv.Close)
	s := newService(t, srv.URL, &clock{t: time.Now()})
	const max = 64 // the production bound is maxEntries; the code path is the same
	s.cache = ttlcache.New[decision](max)
	for i := range 3 * max {
		r, st := request(fmt.Sprintf("Bearer t%d", i))
		if _, err := s.Authenticate(r, st); err != nil {
			t.Fatal(err)
		}
	}
	if got := s.cache.Len(); got > max || got == 0 {
		t.Errorf("cache entries: got %d; want 1..%d", got, max)
	}
}

func TestKeyDistinguishesFields(t *testing.T) {
	t.Parallel()
	s := newService(t, "http://127.0.0.1:1/", nil)
	base := func() (*http.Request, *pipeline.State) { return request("Bearer x") }
	r0, st0 := base()
	k0 := s.key(r0, st0)
	mutations := []struct {
		name string
		mut  func(*http.Request, *pipeline.State)
	}{
		{"method", func(r *http.Request, _ *pipeline.State) { r.Method = "DELETE" }},
		{"host", func(r *http.Request, _ *pipeline.State) { r.Host = "other.test" }},
		{"path", func(_ *http.Request, st *pipeline.State) { st.Path = "/orders/8" }},
		{"query", func(r *http.Request, _ *pipeline.State) { r.URL.RawQuery = "x=2" }},
		{"client", func(_ *http.Request, st *pipeline.State) { st.ClientIP = netip.MustParseAddr("::1") }},
		{"authorization", func(r *http.Request, _ *pipeline.State) { r.Header.Set("Authorization", "Bearer y") }},
		{"cookie added", func(r *http.Request, _ *pipeline.State) { r.Header.Set("Cookie", "a=b") }},
		{"value split", func(r *http.Request, _ *pipeline.State) { r.Header["Authorization"] = []string{"Bearer", " x"} }},
	}
	for _, m := range mutations {
		r, st := base()
		m.mut(r, st)
		if s.key(r, st) == k0 {
			t.Errorf("%s: same cache key; want a different one", m.name)
		}
	}
	r1, st1 := base()
	r1.Header.Set("X-Request-Id", "other")
	if s.key(r1, st1) != k0 {
		t.Errorf("X-Request-Id changed the key; want it ignored")
	}
}

func TestConcurrentIdenticalRequestsOneCall(t *testing.T) {
	t.Parallel()
	var calls atomic.Int64
	gate := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		<-gate
	}))
	t.Cleanup(srv.Close)
	s := newService(t, srv.URL, nil)
	var wg sync.WaitGroup
	errs := make(chan error, 10)
	for range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, st := request("Bearer same")
			_, err := s.Authenticate(r, st)
			errs <- err
		}()
	}
	deadline := time.Now().Add(10 * time.Second)
	for calls.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	time.Sleep(50 * time.Millisecond)
	close(gate)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("caller: %v", err)
		}
	}
	if got := calls.Load(); got != 1 {
		t.Errorf("calls: got %d; want 1", got)
	}
}

func TestNewRejectsBadURL(t *testing.T) {
	t.Parallel()
	for _, u := range []string{"", "ftp://x/", "/check"} {
		if _, err := New(config.ForwardAuth{Name: "x", URL: u}, nil); err == nil {
			t.Errorf("New(%q): got nil error; want one", u)
		}
	}
}

func BenchmarkAuthenticateWarm(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-User-Id", "u-1")
	}))
	defer srv.Close()
	s, err := New(config.ForwardAuth{Name: "b", URL: srv.URL, CopyHeaders: []string{"X-User-Id"}}, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	r, st := request("Bearer good")
	if _, err := s.Authenticate(r, st); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := s.Authenticate(r, st); err != nil {
			b.Fatal(err)
		}
	}
}
