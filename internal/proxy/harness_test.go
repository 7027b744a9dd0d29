package proxy_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/portunus-gw/portunus/internal/config"
	"github.com/portunus-gw/portunus/internal/pipeline"
	"github.com/portunus-gw/portunus/internal/proxy"
	"github.com/portunus-gw/portunus/internal/upstream"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// waitLimit bounds every wait in these tests so a bug fails a test
// instead of hanging it; nothing asserts on how fast things are.
const waitLimit = 20 * time.Second

// seen is what a recording upstream received.
type seen struct {
	Method      string
	Host        string
	Path        string // decoded
	EscapedPath string
	RequestURI  string
	Query       string
	Header      http.Header
	Body        []byte
}

// recordingUpstream answers 200 "ok" and reports every request it got.
func recordingUpstream(t *testing.T) (*httptest.Server, <-chan seen) {
	t.Helper()
	ch := make(chan seen, 64)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		ch <- seen{
			Method:      r.Method,
			Host:        r.Host,
			Path:        r.URL.Path,
			EscapedPath: r.URL.EscapedPath(),
			RequestURI:  r.RequestURI,
			Query:       r.URL.RawQuery,
			Header:      r.Header.Clone(),
			Body:        body,
		}
		w.Header().Set("X-Upstream", "1")
		io.WriteString(w, "ok")
	}))
	t.Cleanup(srv.Close)
	return srv, ch
}

func receive(t *testing.T, ch <-chan seen) seen {
	t.Helper()
	select {
	case s := <-ch:
		return s
	case <-time.After(waitLimit):
		t.Fatal("upstream received nothing")
		return seen{}
	}
}

// newPool builds a pool over urls (weight 1 each) closed at cleanup.
func newPool(t testing.TB, cfg config.Upstream, urls ...string) *upstream.Pool {
	t.Helper()
	if cfg.Name == "" {
		cfg.Name = "up"
	}
	for _, u := range urls {
		cfg.Targets = append(cfg.Targets, config.Target{URL: u})
	}
	p, err := upstream.NewPool(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

// frontOpts configure the gateway stand-in.
type frontOpts struct {
	trusted bool
	// setup fills what routing and authentication would (params, consumer).
	setup func(s *pipeline.State, r *http.Request)
	mws   []pipeline.Middleware
	// states, when set, receives the final State of each request.
	states chan pipeline.State
}

// startFront runs h behind a stand-in for the gateway: it fills the State
// as the gateway would, sanitizes the inbound headers and sets the
// response X-Request-Id.
func startFront(t *testing.T, h pipeline.Handler, o frontOpts) *httptest.Server {
	t.Helper()
	chain := pipeline.Chain(h, o.mws...)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := &pipeline.State{
			RequestID:   "req-42",
			Start:       time.Now(),
			PeerTrusted: o.trusted,
			Path:        r.URL.EscapedPath(),
			RouteName:   "test-route",
		}
		if ap, err := netip.ParseAddrPort(r.RemoteAddr); err == nil {
			s.ClientIP = ap.Addr()
		}
		proxy.SanitizeInbound(r.Header, o.trusted)
		w.Header().Set("X-Request-Id", s.RequestID)
		if o.setup != nil {
			o.setup(s, r)
		}
		chain(w, r, s)
		if o.states != nil {
			o.states <- *s
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

// do sends req with the front's client and returns the response with its
// body read.
func do(t *testing.T, front *httptest.Server, req *http.Request) (*http.Response, string) {
	t.Helper()
	res, err := front.Client().Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("reading body: %v", err)
	}
	return res, string(b)
}

// mustRequest builds a request bounded by waitLimit, so a proxy bug fails
// the test instead of hanging it.
func mustRequest(t testing.TB, method, url string, body io.Reader) *http.Request {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	t.Cleanup(cancel)
	req, err := http.NewRequestWithContext(ctx, method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	return req
}
