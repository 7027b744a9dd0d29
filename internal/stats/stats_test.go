package stats

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeClock is a settable clock for the ring.
type fakeClock struct{ sec atomic.Int64 }

func (c *fakeClock) now() time.Time { return time.Unix(c.sec.Load(), 0) }

func newTestRing(start int64) (*Ring, *fakeClock) {
	c := &fakeClock{}
	c.sec.Store(start)
	return New(c.now), c
}

func TestBucketOf(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		d    time.Duration
		want int
	}{
		{"zero", 0, 0},
		{"at base", bucketBase, 0},
		{"just over base", bucketBase + 1, 1},
		{"twice base", 2 * bucketBase, 1},
		{"1ms", time.Millisecond, 5},          // 50µs<<5 = 1.6ms
		{"100ms", 100 * time.Millisecond, 11}, // 50µs<<11 = 102.4ms
		{"huge", time.Hour, Buckets - 1},
		{"negative", -time.Second, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := bucketOf(tc.d); got != tc.want {
				t.Errorf("bucketOf(%v) = %d; want %d", tc.d, got, tc.want)
			}
			if b := bucketOf(tc.d); tc.d > 0 && b < Buckets-1 && tc.d > bucketUpper(b) {
				t.Errorf("bucketOf(%v) = %d whose upper bound %v is below it", tc.d, b, bucketUpper(b))
			}
		})
	}
}

func TestQueryCountsAndErrorRate(t *testing.T) {
	t.Parallel()
	const start = 1_700_000_000
	r, clk := newTestRing(start)
	rec := r.Route("users")
	// 10 requests in each of 3 seconds, 2 of them errors per second.
	for s := int64(0); s < 3; s++ {
		for i := 0; i < 10; i++ {
			rec.Record(start+s, 3*time.Millisecond, i < 2)
		}
	}
	clk.sec.Store(start + 2)
	res := r.Query(10*time.Second, time.Second)
	if len(res.Routes) != 1 || res.Routes[0].Name != "users" {
		t.Fatalf("routes = %+v; want one series users", res.Routes)
	}
	s := res.Routes[0]
	if got, want := len(s.Points), 10; got != want {
		t.Fatalf("points = %d; want %d", got, want)
	}
	if got := s.Points[9]; got.Time != start+2 || got.Requests != 10 || got.Errors != 2 || got.RPS != 10 || got.ErrorRate != 0.2 {
		t.Errorf("last point = %+v; want t=%d 10 requests, 2 errors, rps 10, error rate 0.2", got, start+2)
	}
	if got := s.Points[6]; got.Requests != 0 || got.P50 != 0 {
		t.Errorf("point before traffic = %+v; want empty", got)
	}
	if got := s.Totals; got.Requests != 30 || got.Errors != 6 || got.ErrorRate != 0.2 || got.RPS != 3 {
		t.Errorf("totals = %+v; want 30 requests, 6 errors, rate 0.2, rps 3", got)
	}
	// 3ms falls in (1.6ms, 3.2ms]: every percentile is inside it.
	for _, p := range []float64{s.Totals.P50, s.Totals.P90, s.Totals.P99} {
		if p <= 1.6 || p > 3.2 {
			t.Errorf("percentile %v ms; want within (1.6, 3.2]", p)
		}
	}
}

func TestQuerySteps(t *testing.T) {
	t.Parallel()
	const start = 1_700_000_000
	r, clk := newTestRing(start)
	rec := r.Upstream("api")
	for s := int64(0); s < 60; s++ {
		rec.Record(start+s, time.Millisecond, false)
	}
	clk.sec.Store(start + 59)
	tests := []struct {
		name   string
		window time.Duration
		step   time.Duration
		points int
		last   uint64
	}{
		{"1s", time.Minute, time.Second, 60, 1},
		{"5s", time.Minute, 5 * time.Second, 12, 5},
		{"10s", time.Minute, 10 * time.Second, 6, 10},
		{"60s", 15 * time.Minute, time.Minute, 15, 60},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := r.Query(tc.window, tc.step).Upstreams[0]
			if got := len(s.Points); got != tc.points {
				t.Fatalf("points = %d; want %d", got, tc.points)
			}
			if got := s.Points[len(s.Points)-1].Requests; got != tc.last {
				t.Errorf("last step requests = %d; want %d", got, tc.last)
			}
			if got := s.Totals.Requests; got != 60 {
				t.Errorf("total = %d; want 60", got)
			}
		})
	}
}

func TestRingForgetsOldSeconds(t *testing.T) {
	t.Parallel()
	const start = 1_700_000_000
	r, clk := newTestRing(start)
	rec := r.Route("a")
	rec.Record(start, time.Millisecond, true)
	// The same slot, one ring later: the old second is reset.
	rec.Record(start+Slots, time.Millisecond, false)
	clk.sec.Store(start + Slots)
	s := r.Query(MaxWindow, time.Second).Routes[0]
	if s.Totals.Requests != 1 || s.Totals.Errors != 0 {
		t.Errorf("totals = %+v; want only the new request", s.Totals)
	}
	// A late sample for a second the slot has moved past is dropped.
	rec.Record(start, time.Millisecond, true)
	if s := r.Query(MaxWindow, time.Second).Routes[0]; s.Totals.Requests != 1 {
		t.Errorf("after a stale sample, totals = %+v; want 1 request", s.Totals)
	}
	// Past 15 minutes, nothing is shown.
	clk.sec.Store(start + Slots + 901)
	if s := r.Query(MaxWindow, time.Second).Routes[0]; s.Totals.Requests != 0 {
		t.Errorf("16 minutes later, totals = %+v; want 0", s.Totals)
	}
}

func TestSeriesCap(t *testing.T) {
	t.Parallel()
	r, _ := newTestRing(1)
	for i := 0; i < MaxRoutes; i++ {
		if rec := r.Route(string(rune('a'+i%26)) + string(rune('0'+i/26))); rec.Name() == Other {
			t.Fatalf("route %d aggregated; want tracked", i)
		}
	}
	extra1, extra2 := r.Route("extra-1"), r.Route("extra-2")
	if extra1.Name() != Other || extra1 != extra2 {
		t.Errorf("past the cap: %q, same=%v; want both %q and shared", extra1.Name(), extra1 == extra2, Other)
	}
	if got := len(*r.routes.Load()); got != MaxRoutes+1 {
		t.Errorf("tracked = %d; want %d", got, MaxRoutes+1)
	}
	if r.Route("a0") != r.Route("a0") {
		t.Error("Route returned different recorders for one name")
	}
}

func TestPercentiles(t *testing.T) {
	t.Parallel()
	r, _ := newTestRing(100)
	rec := r.Route("p")
	// 90 fast (≤50µs), 10 slow (~100ms).
	for i := 0; i < 90; i++ {
		rec.Record(100, 10*time.Microsecond, false)
	}
	for i := 0; i < 10; i++ {
		rec.Record(100, 100*time.Millisecond, false)
	}
	s := r.Query(time.Second, time.Second).Routes[0].Totals
	if s.P50 > 0.05 {
		t.Errorf("p50 = %v ms; want ≤ 0.05", s.P50)
	}
	if s.P99 < 51.2 || s.P99 > 102.4 {
		t.Errorf("p99 = %v ms; want within the 100ms bucket (51.2, 102.4]", s.P99)
	}
}

func TestConcurrentRecord(t *testing.T) {
	t.Parallel()
	const start = 1_700_000_000
	r, clk := newTestRing(start)
	rec := r.Route("hot")
	var wg sync.WaitGroup
	const workers, per = 8, 2000
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < per; i++ {
				// Spread over 4 seconds so slots are claimed concurrently.
				rec.Record(start+int64(i%4), time.Millisecond, i%10 == 0)
			}
		}()
	}
	wg.Wait()
	clk.sec.Store(start + 3)
	s := r.Query(time.Minute, time.Second).Routes[0].Totals
	if s.Requests != workers*per || s.Errors != workers*per/10 {
		t.Errorf("totals = %d requests, %d errors; want %d, %d", s.Requests, s.Errors, workers*per, workers*per/10)
	}
}

func TestValidStep(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		step time.Duration
		want bool
	}{{time.Second, true}, {5 * time.Second, true}, {10 * time.Second, true}, {time.Minute, true}, {2 * time.Second, false}, {0, false}} {
		if got := ValidStep(tc.step); got != tc.want {
			t.Errorf("ValidStep(%v) = %v; want %v", tc.step, got, tc.want)
		}
	}
}

func BenchmarkRecord(b *testing.B) {
	r := New(nil)
	rec := r.Route("bench")
	sec := time.Now().Unix()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			rec.Record(sec, time.Duration(i)*time.Microsecond, i%50 == 0)
			i++
		}
	})
}

func BenchmarkQuery(b *testing.B) {
	r := New(nil)
	sec := time.Now().Unix()
	for i := 0; i < 20; i++ {
		rec := r.Route(string(rune('a' + i)))
		for s := int64(0); s < 900; s++ {
			rec.Record(sec-s, time.Millisecond, false)
		}
	}
	b.ReportAllocs()
	for b.Loop() {
		_ = r.Query(MaxWindow, time.Second)
	}
}

func TestQueryAllMergesHistograms(t *testing.T) {
	t.Parallel()
	const start = 1_700_000_000
	r, clk := newTestRing(start)
	fast, slow := r.Route("fast"), r.Route("slow")
	// 98 fast requests and 2 slow ones in one second: the merged p99 must
	// reach the slow bucket and the merged p50 stay in the fast one, which
	// no average of the two routes' own percentiles would give.
	for i := 0; i < 98; i++ {
		fast.Record(start, time.Millisecond, false)
	}
	slow.Record(start, 500*time.Millisecond, true)
	slow.Record(start, 500*time.Millisecond, false)
	r.Upstream("up").Record(start, time.Second, true)
	clk.sec.Store(start)
	all := r.Query(5*time.Second, time.Second).All
	if all.Name != AllRoutes || len(all.Points) != 5 {
		t.Fatalf("all = %q with %d points; want %q with 5", all.Name, len(all.Points), AllRoutes)
	}
	p := all.Points[4]
	if p.Requests != 100 || p.Errors != 1 || p.ErrorRate != 0.01 {
		t.Errorf("last point = %+v; want 100 requests, 1 error (upstream series not counted)", p)
	}
	if p.P50 <= 0.8 || p.P50 > 1.6 {
		t.Errorf("p50 = %v ms; want in the 1ms bucket (0.8, 1.6]", p.P50)
	}
	if p.P99 <= 409.6 || p.P99 > 819.2 {
		t.Errorf("p99 = %v ms; want in the 500ms bucket (409.6, 819.2]", p.P99)
	}
	if all.Totals.Requests != 100 {
		t.Errorf("totals = %+v; want 100 requests", all.Totals)
	}
}

// BenchmarkQueryDashboard is the dashboard's poll: 5 minutes in 5-second
// steps, 20 busy routes, with the merged series.
func BenchmarkQueryDashboard(b *testing.B) {
	r := New(nil)
	sec := time.Now().Unix()
	for i := 0; i < 20; i++ {
		rec := r.Route(string(rune('a' + i)))
		for s := int64(0); s < 300; s++ {
			rec.Record(sec-s, time.Millisecond, false)
		}
	}
	b.ReportAllocs()
	for b.Loop() {
		_ = r.Query(5*time.Minute, 5*time.Second)
	}
}
