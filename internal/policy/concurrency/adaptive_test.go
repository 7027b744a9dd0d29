package concurrency

import (
	"context"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/portunus-gw/portunus/internal/config"
	"github.com/portunus-gw/portunus/internal/pipeline"
)

// fakeClock is a manual clock; its ticker never fires (tests call adjust).
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func (c *fakeClock) Ticker(time.Duration) (<-chan time.Time, func()) { return nil, func() {} }

// driver runs synthetic traffic through a limiter on a fake clock.
type driver struct {
	t  *testing.T
	l  *Limiter
	fc *fakeClock
}

func newDriver(t *testing.T, maxLimit int) *driver {
	t.Helper()
	fc := &fakeClock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	l, err := newLimiter(config.Concurrency{Max: maxLimit, Adaptive: true}, "r", options{clock: fc, noLoop: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	return &driver{t: t, l: l, fc: fc}
}

// round admits k requests together, lets lat pass and completes them.
func (d *driver) round(k int, lat time.Duration) {
	d.t.Helper()
	start := d.fc.Now()
	for range k {
		if got := d.l.acquire(context.Background(), consumerKey{}); got != admitted {
			d.t.Fatalf("acquire %d of %d: outcome %d; want admitted", k, d.l.Limit(), got)
		}
	}
	d.fc.advance(lat)
	for range k {
		d.l.release(consumerKey{}, start)
	}
}

// saturate runs full rounds at lat until at least n samples exist.
func (d *driver) saturate(n int, lat time.Duration) {
	for done := 0; done < n; {
		k := d.l.Limit()
		d.round(k, lat)
		done += k
	}
}

func (d *driver) adjust() int {
	d.fc.advance(sampleWindow)
	d.l.ctl.adjust(d.l)
	return d.l.Limit()
}

func TestAdaptiveControllerSteps(t *testing.T) {
	t.Parallel()
	d := newDriver(t, 20)
	ms := time.Millisecond
	if got := d.l.Limit(); got != probeLimit {
		t.Fatalf("initial limit = %d; want the probe limit %d", got, probeLimit)
	}
	// Too few samples: the probe goes on.
	d.round(3, 10*ms)
	if got := d.adjust(); got != probeLimit {
		t.Fatalf("limit = %d after 3 probe samples; want %d", got, probeLimit)
	}
	d.saturate(probeSamples, 10*ms)
	if got := d.adjust(); got != probeLimit || d.l.ctl.probing {
		t.Fatalf("limit = %d, probing %v after the probe; want %d, false", got, d.l.ctl.probing, probeLimit)
	}
	if got := d.l.ctl.baseline; got != 10*ms {
		t.Fatalf("baseline = %v; want 10ms", got)
	}
	steps := []struct {
		name string
		k    int // concurrent requests per round; 0: the whole limit
		lat  time.Duration
		want int
	}{
		{"slow start doubles", 0, 10 * ms, 6},
		{"slow start doubles again", 0, 14 * ms, 12},
		{"latency past tolerance backs off", 0, 30 * ms, 9},
		{"then additive increase", 0, 11 * ms, 10},
		{"additive again", 0, 10 * ms, 11},
		{"app-limited: no growth", 2, 10 * ms, 11},
		{"back off again", 0, 16 * ms, 8},
	}
	for _, s := range steps {
		for n := 0; n < minSamples; {
			k := s.k
			if k == 0 {
				k = d.l.Limit()
			}
			d.round(k, s.lat)
			n += k
		}
		if got := d.adjust(); got != s.want {
			t.Fatalf("%s: limit = %d; want %d", s.name, got, s.want)
		}
	}
	// The next probe pins the limit; Close mid-probe restores it.
	d.fc.advance(probeInterval * 2)
	if got := d.adjust(); got != probeLimit || !d.l.ctl.probing {
		t.Fatalf("limit = %d, probing %v when the probe is due; want %d, true", got, d.l.ctl.probing, probeLimit)
	}
	_ = d.l.Close()
	if got := d.l.Limit(); got != 8 {
		t.Fatalf("limit = %d after Close mid-probe; want 8 restored", got)
	}
}

func TestAdaptiveBounds(t *testing.T) {
	t.Parallel()
	ms := time.Millisecond
	t.Run("never above max", func(t *testing.T) {
		t.Parallel()
		d := newDriver(t, 4)
		d.saturate(probeSamples, 5*ms)
		d.adjust()
		for range 5 {
			d.saturate(minSamples, 5*ms)
			if got := d.adjust(); got > 4 {
				t.Fatalf("limit = %d; want <= max 4", got)
			}
		}
		if got := d.l.Limit(); got != 4 {
			t.Fatalf("limit = %d; want 4 (reached max)", got)
		}
	})
	t.Run("never below one", func(t *testing.T) {
		t.Parallel()
		d := newDriver(t, 10)
		d.saturate(probeSamples, 5*ms)
		d.adjust()
		lat := 5 * ms
		for range 10 {
			lat *= 2
			d.saturate(minSamples, lat)
			if got := d.adjust(); got < 1 {
				t.Fatalf("limit = %d; want >= 1", got)
			}
		}
		if got := d.l.Limit(); got != 1 {
			t.Fatalf("limit = %d; want 1 under ever-growing latency", got)
		}
	})
	t.Run("slow probe ends after its max duration", func(t *testing.T) {
		t.Parallel()
		d := newDriver(t, 10)
		d.round(1, 50*ms)
		d.fc.advance(probeMaxDuration)
		d.adjust()
		if d.l.ctl.probing {
			t.Fatal("still probing after probeMaxDuration with a sample; want the probe over")
		}
		if got := d.l.ctl.baseline; got != 50*ms {
			t.Fatalf("baseline = %v; want 50ms", got)
		}
	})
	t.Run("stale samples are ignored", func(t *testing.T) {
		t.Parallel()
		d := newDriver(t, 10)
		old := d.fc.Now()
		d.fc.advance(time.Second)
		d.l.mu.Lock()
		d.l.setLimit(d.l.limit, d.fc.Now())
		d.l.mu.Unlock()
		if d.l.acquire(context.Background(), consumerKey{}) != admitted {
			t.Fatal("acquire refused")
		}
		d.l.release(consumerKey{}, old)
		d.l.mu.Lock()
		n := len(d.l.ctl.samples)
		d.l.mu.Unlock()
		if n != 0 {
			t.Fatalf("samples = %d; want 0 (admitted before the last change)", n)
		}
	})
}

// TestAdaptiveConvergesNearKnee runs 40 clients for a few seconds against
// an in-process upstream whose latency is 10ms up to 8 concurrent requests
// and grows by 10ms per request beyond. The limit must settle near the
// knee, and the upstream must never see more than max.
func TestAdaptiveConvergesNearKnee(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("runs for seconds")
	}
	const (
		maxLimit = 32
		knee     = 8
		clients  = 40
	)
	l := mustNew(t, config.Concurrency{Max: maxLimit, Queue: 64, QueueTimeout: config.Duration(2 * time.Second), Adaptive: true})
	var cur, peak, late atomic.Int64
	var settled atomic.Bool
	upstream := func(w http.ResponseWriter, r *http.Request, s *pipeline.State) {
		n := cur.Add(1)
		defer cur.Add(-1)
		for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
		}
		if settled.Load() {
			for p := late.Load(); n > p && !late.CompareAndSwap(p, n); p = late.Load() {
			}
		}
		lat := 10 * time.Millisecond
		if n > knee {
			lat += time.Duration(n-knee) * 10 * time.Millisecond
		}
		time.Sleep(lat)
		w.WriteHeader(http.StatusOK)
	}
	h := l.Middleware()(upstream)

	stop := make(chan struct{})
	var ok, refused atomic.Int64
	var wg sync.WaitGroup
	for range clients {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				rec := httptest.NewRecorder()
				h(rec, httptest.NewRequest(http.MethodGet, "/", nil), &pipeline.State{})
				if rec.Code == http.StatusOK {
					ok.Add(1)
				} else {
					refused.Add(1)
				}
			}
		})
	}
	time.Sleep(2 * time.Second) // warm-up: probe, slow start, first back-offs
	settled.Store(true)
	var limits []int
	for range 40 {
		time.Sleep(50 * time.Millisecond)
		limits = append(limits, l.Limit())
	}
	close(stop)
	wg.Wait()

	slices.Sort(limits)
	median := limits[len(limits)/2]
	t.Logf("limits %v; median %d; upstream peak %d (settled %d); ok %d refused %d", limits, median, peak.Load(), late.Load(), ok.Load(), refused.Load())
	if median < 4 || median > 16 {
		t.Errorf("median limit = %d; want within 4..16 (knee %d)", median, knee)
	}
	if got := peak.Load(); got > maxLimit {
		t.Errorf("upstream peak concurrency = %d; want <= max %d", got, maxLimit)
	}
	if got := late.Load(); got > 2*knee {
		t.Errorf("upstream peak concurrency once settled = %d; want <= %d (no collapse)", got, 2*knee)
	}
	if ok.Load() == 0 {
		t.Error("no request succeeded")
	}
}
