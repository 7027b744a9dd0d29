package proxy_test

import (
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/portunus-gw/portunus/internal/config"
	"github.com/portunus-gw/portunus/internal/pipeline"
	"github.com/portunus-gw/portunus/internal/proxy"
)

func sideHandler(name string) pipeline.Handler {
	return func(w http.ResponseWriter, r *http.Request, s *pipeline.State) { s.Upstream = name }
}

func newSplit(t *testing.T, sticky string, weights ...int) *proxy.Split {
	t.Helper()
	var sides []proxy.SplitSide
	for i, w := range weights {
		name := fmt.Sprintf("side%d", i)
		sides = append(sides, proxy.SplitSide{Name: name, Weight: w, Handler: sideHandler(name)})
	}
	sp, err := proxy.NewSplit(sides, sticky)
	if err != nil {
		t.Fatal(err)
	}
	return sp
}

// within checks that got is within tol (absolute share) of want.
func within(t *testing.T, what string, got, total int, want, tol float64) {
	t.Helper()
	share := float64(got) / float64(total)
	if math.Abs(share-want) > tol {
		t.Errorf("%s: share %.3f, want %.3f ± %.3f", what, share, want, tol)
	}
}

func TestSplitWeightsRandom(t *testing.T) {
	t.Parallel()
	sp := newSplit(t, "", 90, 10)
	r := httptest.NewRequest("GET", "/", nil)
	const n = 20000
	counts := [2]int{}
	for range n {
		counts[sp.Choose(r, &pipeline.State{})]++
	}
	// 20000 draws at p=0.1: sd ≈ 0.0021; 0.01 is almost 5 sd.
	within(t, "canary", counts[1], n, 0.10, 0.01)
}

func TestSplitStickyConsumer(t *testing.T) {
	t.Parallel()
	sp := newSplit(t, "consumer", 70, 30)
	r := httptest.NewRequest("GET", "/", nil)
	const n = 20000
	counts := [2]int{}
	for i := range n {
		s := &pipeline.State{Consumer: fmt.Sprintf("consumer-%d", i)}
		side := sp.Choose(r, s)
		counts[side]++
		for range 3 {
			if again := sp.Choose(r, &pipeline.State{Consumer: s.Consumer}); again != side {
				t.Fatalf("consumer %s went to side %d then %d", s.Consumer, side, again)
			}
		}
	}
	within(t, "sticky side 1", counts[1], n, 0.30, 0.02)
}

func TestSplitStickyHeaderFallsBackToIP(t *testing.T) {
	t.Parallel()
	sp := newSplit(t, "header:X-User", 50, 50)
	ipSides := map[int]int{}
	const n = 4000
	for i := range n {
		ip := netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)})
		r := httptest.NewRequest("GET", "/", nil)
		side := sp.Choose(r, &pipeline.State{ClientIP: ip})
		ipSides[side]++
		// Same IP, no header: same side.
		if again := sp.Choose(httptest.NewRequest("GET", "/", nil), &pipeline.State{ClientIP: ip}); again != side {
			t.Fatalf("ip %s not sticky", ip)
		}
		// With the header, the header decides, whatever the IP.
		r.Header.Set("X-User", fmt.Sprintf("user-%d", i%10))
		byHeader := sp.Choose(r, &pipeline.State{ClientIP: ip})
		r2 := httptest.NewRequest("GET", "/", nil)
		r2.Header.Set("x-user", fmt.Sprintf("user-%d", i%10))
		if other := sp.Choose(r2, &pipeline.State{ClientIP: netip.MustParseAddr("192.0.2.9")}); other != byHeader {
			t.Fatalf("header value user-%d went to %d and %d", i%10, byHeader, other)
		}
	}
	within(t, "ip fallback", ipSides[1], n, 0.5, 0.05)
}

func TestSplitRejectsBadConfig(t *testing.T) {
	t.Parallel()
	h := sideHandler("x")
	for _, c := range []struct {
		sides  []proxy.SplitSide
		sticky string
	}{
		{[]proxy.SplitSide{{Name: "a", Weight: 0, Handler: h}}, ""},
		{[]proxy.SplitSide{{Name: "a", Weight: -1, Handler: h}, {Name: "b", Weight: 2, Handler: h}}, ""},
		{[]proxy.SplitSide{{Name: "a", Weight: 1, Handler: h}}, "cookie:x"},
		{[]proxy.SplitSide{{Name: "a", Weight: 1, Handler: h}}, "header:"},
	} {
		if _, err := proxy.NewSplit(c.sides, c.sticky); err == nil {
			t.Errorf("%+v %q: no error", c.sides, c.sticky)
		}
	}
}

func TestSplitServesThroughRealPools(t *testing.T) {
	t.Parallel()
	stable, stableHits, _ := counting(t, 200, "stable")
	canary, canaryHits, _ := counting(t, 200, "canary")
	sp, err := proxy.NewSplit([]proxy.SplitSide{
		{Name: "stable", Weight: 3, Handler: proxy.New(proxy.Config{Pool: newPool(t, config.Upstream{Name: "stable"}, stable)})},
		{Name: "canary", Weight: 1, Handler: proxy.New(proxy.Config{Pool: newPool(t, config.Upstream{Name: "canary"}, canary)})},
	}, "header:X-User")
	if err != nil {
		t.Fatal(err)
	}
	states := make(chan pipeline.State, 1)
	front := startFront(t, sp.Serve, frontOpts{states: states})
	for i := range 200 {
		req := mustRequest(t, "GET", front.URL+"/", nil)
		req.Header.Set("X-User", fmt.Sprintf("u%d", i))
		res, body := do(t, front, req)
		st := <-states
		if res.StatusCode != 200 || body != st.Upstream {
			t.Fatalf("answer %q from State.Upstream %q", body, st.Upstream)
		}
	}
	if stableHits.Load() == 0 || canaryHits.Load() == 0 || stableHits.Load() < canaryHits.Load() {
		t.Fatalf("stable %d canary %d", stableHits.Load(), canaryHits.Load())
	}
}

func TestMirrorDoesNotDelayClient(t *testing.T) {
	t.Parallel()
	const shadowDelay = 2 * time.Second
	got := make(chan string, 64)
	shadow := newUpstreamFunc(t, func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got <- r.Method + " " + r.URL.Path + " " + string(b) + " " + r.Header.Get(proxy.MirrorHeader)
		select {
		case <-time.After(shadowDelay):
		case <-r.Context().Done():
		}
		w.WriteHeader(500)
	})
	main, _, _ := counting(t, 200, "main")
	m := proxy.NewMirror(proxy.MirrorConfig{Proxy: proxy.Config{Pool: newPool(t, config.Upstream{Name: "shadow"}, shadow.URL)}, Percent: 100})
	h := proxy.New(proxy.Config{Pool: newPool(t, config.Upstream{Name: "main"}, main)})
	front := startFront(t, h, frontOpts{mws: []pipeline.Middleware{m.Middleware()}})
	const n = 8
	for i := range n {
		start := time.Now()
		var body io.Reader
		method := "GET"
		if i%2 == 1 {
			method, body = "POST", strings.NewReader(fmt.Sprintf("b%d", i))
		}
		res, b := do(t, front, mustRequest(t, method, front.URL+fmt.Sprintf("/p%d", i), body))
		// Not a timing assertion on the gateway's speed: the shadow
		// holds every copy for 2 s, so an answer that waited for it
		// would take at least that long.
		if took := time.Since(start); took >= shadowDelay {
			t.Fatalf("request %d took %v: the client waited for the shadow", i, took)
		}
		if res.StatusCode != 200 || b != "main" {
			t.Fatalf("request %d: %d %q: the shadow's answer leaked", i, res.StatusCode, b)
		}
	}
	seen := map[string]bool{}
	for range n {
		select {
		case s := <-got:
			seen[s] = true
		case <-timeAfter():
			t.Fatalf("shadow got %d of %d copies", len(seen), n)
		}
	}
	for i := range n {
		want := fmt.Sprintf("GET /p%d  1", i)
		if i%2 == 1 {
			want = fmt.Sprintf("POST /p%d b%d 1", i, i)
		}
		if !seen[want] {
			t.Errorf("shadow never got %q (got %v)", want, seen)
		}
	}
	// Let the copies finish before the pools close (goleak).
	deadline := time.Now().Add(waitLimit)
	for m.Stats().Sent != n && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
}

func TestMirrorBoundsInFlight(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	var reached atomic.Int64
	shadow := newUpstreamFunc(t, func(w http.ResponseWriter, r *http.Request) {
		reached.Add(1)
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	main, _, _ := counting(t, 200, "main")
	obs := &outcomes{n: map[string]int{}}
	m := proxy.NewMirror(proxy.MirrorConfig{Proxy: proxy.Config{Pool: newPool(t, config.Upstream{Name: "shadow"}, shadow.URL)}, Percent: 100, MaxInFlight: 2, Observer: obs})
	front := startFront(t, proxy.New(proxy.Config{Pool: newPool(t, config.Upstream{Name: "main"}, main)}), frontOpts{mws: []pipeline.Middleware{m.Middleware()}})
	for range 10 {
		if res, _ := do(t, front, mustRequest(t, "GET", front.URL+"/", nil)); res.StatusCode != 200 {
			t.Fatalf("status %d", res.StatusCode)
		}
	}
	st := m.Stats()
	// Two copies hold the two slots (the shadow does not answer until
	// released); the other eight are dropped, not queued.
	if st.Dropped != 8 {
		t.Fatalf("stats %+v: want 8 dropped", st)
	}
	// The observer (metrics) hears what the stats count.
	if got := obs.get("dropped"); got != 8 {
		t.Errorf("observer heard %d dropped; want 8", got)
	}
	close(release)
	deadline := time.Now().Add(waitLimit)
	for (reached.Load() < 2 || m.Stats().Sent < 2) && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if sent := m.Stats().Sent; obs.get("sent") != int(sent) {
		t.Errorf("observer heard %d sent; stats say %d", obs.get("sent"), sent)
	}
}

// outcomes is a proxy.MirrorObserver that counts what it hears.
type outcomes struct {
	mu sync.Mutex
	n  map[string]int
}

func (o *outcomes) Mirrored(outcome string) {
	o.mu.Lock()
	o.n[outcome]++
	o.mu.Unlock()
}

func (o *outcomes) get(outcome string) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.n[outcome]
}
