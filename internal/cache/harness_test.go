package cache

import (
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/portunus-gw/portunus/internal/pipeline"
)

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// origin is the handler behind the cache: it answers with respond and
// records every request it sees.
type origin struct {
	mu      sync.Mutex
	respond func(w http.ResponseWriter, r *http.Request, n int)
	seen    []*http.Request
	calls   atomic.Int32
}

func (o *origin) handler(w http.ResponseWriter, r *http.Request, _ *pipeline.State) {
	n := int(o.calls.Add(1))
	o.mu.Lock()
	o.seen = append(o.seen, r.Clone(r.Context()))
	f := o.respond
	o.mu.Unlock()
	f(w, r, n)
}

func (o *origin) set(f func(w http.ResponseWriter, r *http.Request, n int)) {
	o.mu.Lock()
	o.respond = f
	o.mu.Unlock()
}

func (o *origin) last() *http.Request {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.seen[len(o.seen)-1]
}

// fixture is a cache policy in front of an origin, behind a real server.
type fixture struct {
	t      *testing.T
	p      *Policy
	origin *origin
	clock  *clock
	srv    *httptest.Server
	client *http.Client
}

// answer is what a test keeps of one response.
type answer struct {
	status int
	header http.Header
	body   string
}

// static answers with body and the given header fields (name, value pairs).
func static(body string, kv ...string) func(w http.ResponseWriter, r *http.Request, n int) {
	return func(w http.ResponseWriter, r *http.Request, n int) {
		for i := 0; i+1 < len(kv); i += 2 {
			w.Header().Add(kv[i], kv[i+1])
		}
		_, _ = io.WriteString(w, body)
	}
}

func newFixture(t *testing.T, o Options) *fixture {
	t.Helper()
	f := &fixture{t: t, origin: &origin{}, clock: newClock()}
	f.origin.set(static("ok"))
	if o.Backend == nil {
		o.Backend = NewMemory(64<<20, nil)
	}
	if o.TTL == 0 {
		o.TTL = time.Minute
	}
	if o.Route == "" {
		o.Route = "r"
	}
	o.Now = f.clock.Now
	f.p = New(o)
	h := f.p.Middleware()(f.origin.handler)
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := &pipeline.State{Path: r.URL.EscapedPath(), Consumer: r.Header.Get("X-Test-Consumer")}
		// As the gateway does, before the route's chain runs.
		w.Header().Set("X-Request-Id", r.Header.Get("X-Test-Rid"))
		h(w, r, s)
	}))
	f.client = f.srv.Client()
	f.client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	t.Cleanup(func() {
		f.srv.Close()
		f.p.Wait()
	})
	return f
}

// do sends method path with header fields (name, value pairs).
func (f *fixture) do(method, path string, kv ...string) answer {
	f.t.Helper()
	req, err := http.NewRequest(method, f.srv.URL+path, nil)
	if err != nil {
		f.t.Fatal(err)
	}
	for i := 0; i+1 < len(kv); i += 2 {
		req.Header.Add(kv[i], kv[i+1])
	}
	resp, err := f.client.Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		f.t.Fatal(err)
	}
	return answer{status: resp.StatusCode, header: resp.Header, body: string(b)}
}

func (f *fixture) get(path string, kv ...string) answer { return f.do("GET", path, kv...) }

func (f *fixture) calls() int { return int(f.origin.calls.Load()) }

// wantCalls fails unless the origin saw exactly n requests.
func (f *fixture) wantCalls(n int) {
	f.t.Helper()
	if got := f.calls(); got != n {
		f.t.Fatalf("origin calls = %d; want %d", got, n)
	}
}

// waitFor polls cond for up to 10 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func wantStatus(t *testing.T, a answer, status int, cacheStatus string) {
	t.Helper()
	if a.status != status {
		t.Fatalf("status = %d; want %d (body %q)", a.status, status, a.body)
	}
	if got := a.header.Get("Cache-Status"); got != cacheStatus {
		t.Fatalf("Cache-Status = %q; want %q", got, cacheStatus)
	}
}
