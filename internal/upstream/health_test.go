package upstream

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/portunus-gw/portunus/internal/config"
)

// waitFor polls cond until it holds or 10 s pass (a generous bound on a
// shared machine; nothing here asserts how fast).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func fastCheck(path, expected string) *config.HealthCheck {
	return &config.HealthCheck{Path: path, Interval: config.Duration(20 * time.Millisecond), Timeout: config.Duration(time.Second),
		HealthyThreshold: 2, UnhealthyThreshold: 2, ExpectedStatus: expected}
}

type recObserver struct {
	nopObserver
	ups, downs, checks atomic.Int64
}

func (o *recObserver) TargetUp(_ string, up bool) {
	if up {
		o.ups.Add(1)
	} else {
		o.downs.Add(1)
	}
}
func (o *recObserver) HealthCheck(string, bool) { o.checks.Add(1) }

// TestActiveHealthStoppedServer: a target whose server stops becomes
// unhealthy and is no longer picked; when a server listens on its address
// again, it returns.
func TestActiveHealthStoppedServer(t *testing.T) {
	t.Parallel()
	var probes atomic.Int64
	var gotPath, gotUA atomic.Value
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		probes.Add(1)
		gotPath.Store(r.URL.Path)
		gotUA.Store(r.UserAgent())
		w.WriteHeader(http.StatusNoContent)
	})
	srv := httptest.NewServer(handler)
	addr := srv.Listener.Addr().String()
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	t.Cleanup(other.Close)
	obs := &recObserver{}
	p := newTestPool(t, config.Upstream{
		Targets:     []config.Target{{URL: "http://" + addr + "/base"}, {URL: other.URL}},
		HealthCheck: fastCheck("/healthz", "200-299"),
	}, WithObserver(obs))
	a := p.Targets()[0]
	if a.Status().Health != HealthUnknown || a.Status().LastCheck != nil {
		t.Fatalf("before Start: %+v; want unknown, no check", a.Status())
	}
	p.Start()
	p.Start() // idempotent: still one prober per target
	waitFor(t, "a passing probe", func() bool { return a.Status().Health == HealthHealthy })
	if lc := a.Status().LastCheck; !lc.OK || lc.Status != 204 {
		t.Errorf("last check: %+v; want ok, 204", lc)
	}
	// The path is under the target's path prefix, like forwarded paths.
	if path, ua := gotPath.Load(), gotUA.Load(); path != "/base/healthz" || ua != "portunus-health-check" {
		t.Errorf("probe path %v, user agent %v; want /base/healthz, portunus-health-check", path, ua)
	}

	srv.Close()
	waitFor(t, "the stopped target to turn unhealthy", func() bool { return a.Status().Health == HealthUnhealthy })
	if lc := a.Status().LastCheck; lc.OK || lc.Error == "" {
		t.Errorf("last check of a stopped server: %+v; want a failure with an error", lc)
	}
	for range 50 {
		if p.Pick(nil) == a {
			t.Fatal("picked the unhealthy target")
		}
	}
	if obs.downs.Load() != 1 {
		t.Errorf("TargetUp(false) reported %d times; want 1", obs.downs.Load())
	}

	// Back on the same address.
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Skipf("cannot listen on %s again: %v", addr, err)
	}
	back := &http.Server{Handler: handler}
	go back.Serve(ln)
	t.Cleanup(func() { back.Close() })
	waitFor(t, "the restarted target to turn healthy", func() bool { return a.Status().Health == HealthHealthy })
	waitFor(t, "a pick of the recovered target", func() bool { return p.Pick(nil) == a })

	p.Close()
	n := obs.checks.Load()
	time.Sleep(100 * time.Millisecond) // 5 intervals: no probe may follow Close
	if m := obs.checks.Load(); m > n+1 {
		t.Errorf("%d probes after Close; want none (at most one in flight)", m-n)
	}
	p.Start() // after Close: does nothing
}

// TestActiveHealthExpectedStatus: the expected_status list decides, and a
// redirect is judged by its own status, not followed.
func TestActiveHealthExpectedStatus(t *testing.T) {
	t.Parallel()
	var status atomic.Int64
	status.Store(http.StatusServiceUnavailable)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s := int(status.Load()); s == http.StatusFound {
			http.Redirect(w, r, "/elsewhere", s)
		} else {
			w.WriteHeader(s)
		}
	}))
	t.Cleanup(srv.Close)
	p := newTestPool(t, config.Upstream{Targets: []config.Target{{URL: srv.URL}}, HealthCheck: fastCheck("/hc", "200,204")})
	a := p.Targets()[0]
	p.Start()
	waitFor(t, "503 to make the target unhealthy", func() bool { return a.Status().Health == HealthUnhealthy })
	if p.Pick(nil) != nil {
		t.Error("the only target is unhealthy: want no pick")
	}
	if lc := a.Status().LastCheck; lc.Status != 503 || !strings.Contains(lc.Error, "503") {
		t.Errorf("last check: %+v", lc)
	}
	status.Store(http.StatusFound)
	waitFor(t, "a 302 probe", func() bool { lc := a.Status().LastCheck; return lc != nil && lc.Status == 302 })
	if a.Status().Health != HealthUnhealthy {
		t.Error("302 is not in 200,204: want still unhealthy")
	}
	status.Store(http.StatusNoContent)
	waitFor(t, "204 to bring it back", func() bool { return a.Status().Health == HealthHealthy })
}

// TestActiveHealthTimeout: a target that accepts but never answers is
// unhealthy after the probe timeout, not stuck.
func TestActiveHealthTimeout(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) })
	hc := fastCheck("/", "200")
	hc.Timeout = config.Duration(50 * time.Millisecond)
	p := newTestPool(t, config.Upstream{Targets: []config.Target{{URL: srv.URL}}, HealthCheck: hc})
	p.Start()
	a := p.Targets()[0]
	waitFor(t, "a hung target to turn unhealthy", func() bool { return a.Status().Health == HealthUnhealthy })
	if lc := a.Status().LastCheck; !strings.Contains(lc.Error, "no answer within") {
		t.Errorf("last check error %q; want a timeout", lc.Error)
	}
}

// TestHealthChecksFollowSetTargets: a target added by discovery is probed,
// a removed one no longer is.
func TestHealthChecksFollowSetTargets(t *testing.T) {
	t.Parallel()
	var hits [2]atomic.Int64
	var srvs [2]*httptest.Server
	for i := range srvs {
		srvs[i] = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits[i].Add(1) }))
		t.Cleanup(srvs[i].Close)
	}
	p := newTestPool(t, config.Upstream{Targets: []config.Target{{URL: srvs[0].URL}}, HealthCheck: fastCheck("/", "200")})
	p.Start()
	waitFor(t, "probes of the first target", func() bool { return hits[0].Load() > 0 })
	if err := p.SetTargets([]Endpoint{{URL: srvs[1].URL}}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "probes of the added target", func() bool { return hits[1].Load() >= 2 })
	n := hits[0].Load()
	waitFor(t, "more probes of the added target", func() bool { return hits[1].Load() >= 6 })
	if m := hits[0].Load(); m > n+1 {
		t.Errorf("removed target probed %d more times", m-n)
	}
}

func TestParseStatusRanges(t *testing.T) {
	t.Parallel()
	r, err := parseStatusRanges("200-299, 304,418")
	if err != nil {
		t.Fatal(err)
	}
	for s, want := range map[int]bool{199: false, 200: true, 250: true, 299: true, 300: false, 304: true, 418: true, 500: false} {
		if r.contains(s) != want {
			t.Errorf("contains(%d) = %v; want %v", s, !want, want)
		}
	}
	for _, bad := range []string{"", "2xx", "300-200", "99", "200-600", "200,"} {
		if _, err := parseStatusRanges(bad); err == nil {
			t.Errorf("parseStatusRanges(%q): no error", bad)
		}
	}
}

func TestJitterBounds(t *testing.T) {
	t.Parallel()
	lo, hi := time.Hour, time.Duration(0)
	for range 2000 {
		d := jitter(10 * time.Second)
		lo, hi = min(lo, d), max(hi, d)
	}
	if lo < 9*time.Second || hi > 11*time.Second || hi-lo < time.Second {
		t.Errorf("jitter(10s) ranged %v..%v; want spread within 9s..11s", lo, hi)
	}
}

// TestMaxConnectionsBoundedWait: with max_connections 1 and one request
// holding the connection, a second request waits, and the wait ends with
// the request's context (the proxy's route timeout) rather than hanging.
func TestMaxConnectionsBoundedWait(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	entered := make(chan struct{}, 4)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		entered <- struct{}{}
		<-release
	}))
	t.Cleanup(srv.Close)
	p := newTestPool(t, config.Upstream{Targets: []config.Target{{URL: srv.URL}}, MaxConnections: 1})
	rt := p.RoundTripper()
	first := make(chan error, 1)
	go func() {
		req, _ := http.NewRequest(http.MethodGet, srv.URL+"/1", nil)
		res, err := rt.RoundTrip(req)
		if err == nil {
			res.Body.Close()
		}
		first <- err
	}()
	<-entered
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/2", nil)
	_, err := rt.RoundTrip(req)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("second request over max_connections: %v; want the context's deadline", err)
	}
	select {
	case <-entered:
		t.Fatal("the second request reached the server over max_connections")
	default:
	}
	close(release)
	if err := <-first; err != nil {
		t.Fatalf("first request: %v", err)
	}
}
