package proxy_test

import (
	"io"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/portunus-gw/portunus/internal/config"
	"github.com/portunus-gw/portunus/internal/proxy"
	"github.com/portunus-gw/portunus/internal/upstream"
)

// hedgeAfterBalance is the fixed hedge.after of these tests: the slow
// target never answers within it (it waits to be cancelled).
const hedgeAfterBalance = 20 * time.Millisecond

// arrivals records, per request (X-Seq), which upstream saw it first:
// that one got the request's own attempt, since a hedge is only sent
// hedge.after later.
type arrivals struct {
	mu    sync.Mutex
	first map[string]string
}

func (a *arrivals) saw(seq, name string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if _, ok := a.first[seq]; !ok {
		a.first[seq] = name
	}
}

func (a *arrivals) primary(seq int) string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.first[strconv.Itoa(seq)]
}

// balanceUpstreams starts a slow target (answers only when the request
// is cancelled, or after waitLimit) and a fast one, both recording into
// the returned arrivals.
func balanceUpstreams(t *testing.T) (slowURL, fastURL string, arr *arrivals) {
	t.Helper()
	arr = &arrivals{first: map[string]string{}}
	slowURL = newUpstreamFunc(t, func(w http.ResponseWriter, r *http.Request) {
		arr.saw(r.Header.Get("X-Seq"), "slow")
		select {
		case <-r.Context().Done():
		case <-time.After(waitLimit):
			io.WriteString(w, "slow")
		}
	}).URL
	fastURL = newUpstreamFunc(t, func(w http.ResponseWriter, r *http.Request) {
		arr.saw(r.Header.Get("X-Seq"), "fast")
		io.WriteString(w, "fast")
	}).URL
	return slowURL, fastURL, arr
}

// balancePool builds a pool with the given balancer over urls, with a
// retry budget large enough for every hedge of the test.
func balancePool(t *testing.T, balancer string, urls ...string) *upstream.Pool {
	t.Helper()
	return newPool(t, config.Upstream{Balancer: balancer, Retries: &config.Retries{MinPerSecond: 1000}}, urls...)
}

// runHedged sends n hedged GETs one after another, each numbered in
// X-Seq; every client must get the fast target's answer.
func runHedged(t *testing.T, pool *upstream.Pool, n int) {
	t.Helper()
	front := startFront(t, proxy.New(proxy.Config{Pool: pool, HedgeAfter: hedgeAfterBalance, HedgeMax: 1}), frontOpts{})
	for i := range n {
		req := mustRequest(t, "GET", front.URL+"/x", nil)
		req.Header.Set("X-Seq", strconv.Itoa(i))
		res, body := do(t, front, req)
		if res.StatusCode != 200 || body != "fast" {
			t.Fatalf("request %d: %d %q; want 200 \"fast\" (the hedge to the fast target wins)", i, res.StatusCode, body)
		}
	}
}

// waitIdle waits until no target of pool counts a request in flight: the
// cancelled losers were ended too.
func waitIdle(t *testing.T, pool *upstream.Pool) {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for {
		busy := false
		for _, tg := range pool.Targets() {
			if tg.InFlight() != 0 {
				busy = true
			}
		}
		if !busy {
			return
		}
		if time.Now().After(deadline) {
			for _, tg := range pool.Targets() {
				t.Errorf("%s: %d in flight after every request ended; want 0", tg, tg.InFlight())
			}
			t.FailNow()
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestHedgeKeepsRoundRobin: with round robin over a slow and a fast
// target, the requests' own attempts alternate between them exactly,
// although every one that went to the slow target was hedged to the
// fast one: the hedge's pick does not take a turn of the rotation.
// (Before, it did, and every request went to the slow target first.)
func TestHedgeKeepsRoundRobin(t *testing.T) {
	t.Parallel()
	slow, fast, arr := balanceUpstreams(t)
	pool := balancePool(t, "round_robin", slow, fast)
	const n = 40
	runHedged(t, pool, n)

	counts := map[string]int{}
	prev := ""
	for i := range n {
		p := arr.primary(i)
		if p == "" {
			t.Fatalf("request %d reached no upstream", i)
		}
		if p == prev {
			t.Errorf("requests %d and %d both went to %s first; want strict alternation", i-1, i, p)
		}
		prev = p
		counts[p]++
	}
	if counts["slow"] != n/2 || counts["fast"] != n/2 {
		t.Errorf("first attempts: %d slow, %d fast; want %d each", counts["slow"], counts["fast"], n/2)
	}
	waitIdle(t, pool)
}

// TestHedgeTeachesP2C: with p2c_ewma, an attempt on the slow target that
// loses the hedge race reports the time it waited as a lower bound of
// the target's latency, so the slow target stops looking unmeasured
// (cheapest) and is rarely picked first. (Before, losers were ignored,
// the slow target never got a sample, and it won every comparison.)
func TestHedgeTeachesP2C(t *testing.T) {
	t.Parallel()
	slow, fast, arr := balanceUpstreams(t)
	pool := balancePool(t, "p2c_ewma", slow, fast)
	const n = 200
	runHedged(t, pool, n)

	slowFirst := 0
	for i := range n {
		switch arr.primary(i) {
		case "slow":
			slowFirst++
		case "":
			t.Fatalf("request %d reached no upstream", i)
		}
	}
	// Once measured, the slow target is picked only when both of p2c's
	// draws land on it: about 1 in 16.
	if slowFirst*4 >= n {
		t.Errorf("slow target picked first for %d of %d requests; want < 25%%", slowFirst, n)
	}
	t.Logf("slow target picked first for %d of %d requests", slowFirst, n)
	waitIdle(t, pool)
	checked := false
	for _, tg := range pool.Targets() {
		if "http://"+tg.Host != slow || slowFirst == 0 {
			continue
		}
		checked = true
		st := tg.Status()
		if st.Latency < hedgeAfterBalance {
			t.Errorf("slow target's latency average %v; want at least hedge.after (%v): its lost attempts waited that long", st.Latency, hedgeAfterBalance)
		}
		if st.ConsecutiveFailures != 0 {
			t.Errorf("slow target has %d consecutive failures; lost hedge races are not failures", st.ConsecutiveFailures)
		}
	}
	if slowFirst > 0 && !checked {
		t.Errorf("no target of the pool is %s", slow)
	}
}
