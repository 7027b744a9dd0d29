package proxy_test

import (
	"io"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/portunus-gw/portunus/internal/config"
	"github.com/portunus-gw/portunus/internal/proxy"
	"github.com/portunus-gw/portunus/internal/telemetry"
	"github.com/portunus-gw/portunus/internal/upstream"
)

// hedgePool builds a round-robin pool over urls whose health events go
// to a metrics registry, so tests read portunus_upstream_hedges_total.
func hedgePool(t *testing.T, retries *config.Retries, urls ...string) (*upstream.Pool, *telemetry.Metrics) {
	t.Helper()
	m := telemetry.NewMetrics()
	cfg := config.Upstream{Name: "up", Retries: retries}
	for _, u := range urls {
		cfg.Targets = append(cfg.Targets, config.Target{URL: u})
	}
	p, err := upstream.NewPool(cfg, upstream.WithObserver(m.UpstreamHealth("up")))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p, m
}

// hedgesTotal reads portunus_upstream_hedges_total{upstream="up"}.
func hedgesTotal(t *testing.T, m *telemetry.Metrics) float64 {
	t.Helper()
	fams, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if f.GetName() != "portunus_upstream_hedges_total" {
			continue
		}
		for _, s := range f.GetMetric() {
			for _, l := range s.GetLabel() {
				if l.GetName() == "upstream" && l.GetValue() == "up" {
					return s.GetCounter().GetValue()
				}
			}
		}
	}
	t.Fatal("portunus_upstream_hedges_total{upstream=\"up\"} is not exported")
	return 0
}

// switchable answers name at once, or, once slow is set, waits for the
// request to be cancelled (counted) or for delay, then answers "slow".
type switchable struct {
	url       string
	slow      atomic.Bool
	hits      atomic.Int64
	cancelled chan struct{}
}

func newSwitchable(t *testing.T, name string, delay time.Duration) *switchable {
	t.Helper()
	s := &switchable{cancelled: make(chan struct{}, 1024)}
	s.url = newUpstreamFunc(t, func(w http.ResponseWriter, r *http.Request) {
		s.hits.Add(1)
		if !s.slow.Load() {
			io.WriteString(w, name)
			return
		}
		select {
		case <-r.Context().Done():
			s.cancelled <- struct{}{}
		case <-time.After(delay):
			io.WriteString(w, "slow")
		}
	}).URL
	return s
}

// get sends n GET requests one after another and returns their bodies;
// every one must answer 200.
func getN(t *testing.T, url string, n int, front func() (*http.Response, string)) []string {
	t.Helper()
	bodies := make([]string, 0, n)
	for i := range n {
		res, body := front()
		if res.StatusCode != 200 {
			t.Fatalf("%s request %d: %d %q", url, i, res.StatusCode, body)
		}
		bodies = append(bodies, body)
	}
	return bodies
}

// waitPercentile waits until the pool publishes a known q-quantile (the
// one the route hedges by): hedging is then on.
func waitPercentile(t *testing.T, pool *upstream.Pool, q float64) time.Duration {
	t.Helper()
	lq := pool.LatencyStats().Track(q)
	deadline := time.Now().Add(waitLimit)
	for {
		if v := lq.Value(); v > 0 {
			return v
		}
		if time.Now().After(deadline) {
			t.Fatalf("p%v never became known", q*100)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestHedgeAfterPercentile: a route hedging after p95 learns the pool's
// latency from its answers; once one target turns slow (far beyond p95),
// requests whose first attempt went there are hedged to the other
// target, whose fast answer wins, and the slow attempts are cancelled.
func TestHedgeAfterPercentile(t *testing.T) {
	t.Parallel()
	fast := newSwitchable(t, "fast", 0)
	flaky := newSwitchable(t, "flaky", waitLimit)
	pool, m := hedgePool(t, &config.Retries{MinPerSecond: 1000}, flaky.url, fast.url)
	front := startFront(t, proxy.New(proxy.Config{Pool: pool, HedgePercentile: 95, HedgeMax: 1}), frontOpts{})
	get := func() (*http.Response, string) { return do(t, front, mustRequest(t, "GET", front.URL+"/x", nil)) }

	getN(t, front.URL, 150, get)
	p95 := waitPercentile(t, pool, 0.95)

	before := hedgesTotal(t, m)
	flaky.slow.Store(true)
	hitsBefore := flaky.hits.Load()
	for i, body := range getN(t, front.URL, 10, get) {
		if body != "fast" {
			t.Fatalf("request %d answered %q; want the fast target's answer (p95 = %v)", i, body, p95)
		}
	}
	// Round robin sent about half of the first attempts to the slow
	// target: each was hedged, and cancelled when the hedge won.
	hedged := flaky.hits.Load() - hitsBefore
	if hedged == 0 {
		t.Fatal("no request went to the slow target first")
	}
	if got := hedgesTotal(t, m) - before; got < float64(hedged) {
		t.Errorf("portunus_upstream_hedges_total grew by %v; want at least %d (one per slow first attempt)", got, hedged)
	}
	for range hedged {
		select {
		case <-flaky.cancelled:
		case <-timeAfter():
			t.Fatal("a slow attempt was never cancelled")
		}
	}
}

// TestHedgePercentileWaitsForSamples: until the pool has seen enough
// answers (100 for p95), a percentile is unknown and nothing is hedged,
// however slow a target is; the 100th answer makes it known.
func TestHedgePercentileWaitsForSamples(t *testing.T) {
	t.Parallel()
	const slowDelay = 30 * time.Millisecond
	fast := newSwitchable(t, "fast", 0)
	slow := newSwitchable(t, "unused", slowDelay)
	slow.slow.Store(true)
	pool, m := hedgePool(t, &config.Retries{MinPerSecond: 1000}, slow.url, fast.url)
	front := startFront(t, proxy.New(proxy.Config{Pool: pool, HedgePercentile: 95, HedgeMax: 1}), frontOpts{})
	get := func() (*http.Response, string) { return do(t, front, mustRequest(t, "GET", front.URL+"/x", nil)) }

	slowAnswers := 0
	for _, body := range getN(t, front.URL, int(upstream.MinSamplesFor(0.95))-1, get) {
		if body == "slow" {
			slowAnswers++
		}
	}
	if got := hedgesTotal(t, m); got != 0 {
		t.Fatalf("%v hedges with fewer samples than p95 needs; want 0", got)
	}
	if slowAnswers == 0 {
		t.Fatal("the slow target answered nothing: its requests were hedged")
	}
	if v := pool.LatencyStats().Track(0.95).Value(); v != 0 {
		t.Fatalf("p95 is %v with %d samples; want unknown (0)", v, upstream.MinSamplesFor(0.95)-1)
	}
	getN(t, front.URL, 1, get)
	// Half the samples took at least slowDelay: p95 is one of them
	// (within a histogram bucket, 1/16).
	if p95 := waitPercentile(t, pool, 0.95); p95 < slowDelay*15/16 {
		t.Errorf("p95 = %v; want at least about %v", p95, slowDelay)
	}
}

// TestPercentileHedgeRefusedWithoutBudget: hedges draw from the retry
// budget; once it is spent a slow first attempt is waited for, not
// hedged, and portunus_upstream_hedges_total stays flat.
func TestPercentileHedgeRefusedWithoutBudget(t *testing.T) {
	t.Parallel()
	fast := newSwitchable(t, "fast", 0)
	slow := newSwitchable(t, "slow-later", 100*time.Millisecond)
	// The smallest budget: 10 retries or hedges per 10 s.
	pool, m := hedgePool(t, &config.Retries{MinPerSecond: 1, BudgetPercent: 1}, slow.url, fast.url)
	front := startFront(t, proxy.New(proxy.Config{Pool: pool, HedgePercentile: 95, HedgeMax: 1}), frontOpts{})
	get := func() (*http.Response, string) { return do(t, front, mustRequest(t, "GET", front.URL+"/x", nil)) }

	getN(t, front.URL, 120, get)
	waitPercentile(t, pool, 0.95) // hedging is on
	spent := 0
	for pool.Budget().Withdraw() {
		spent++
	}
	if spent > 10 {
		t.Fatalf("withdrew %d from a budget of 10", spent)
	}
	before := hedgesTotal(t, m)
	slow.slow.Store(true)
	slowAnswers := 0
	for _, body := range getN(t, front.URL, 10, get) {
		if body == "slow" {
			slowAnswers++
		}
	}
	if slowAnswers == 0 {
		t.Fatal("no request went to the slow target first")
	}
	if got := hedgesTotal(t, m); got != before {
		t.Fatalf("portunus_upstream_hedges_total went from %v to %v with the budget spent; want it flat", before, got)
	}
}
