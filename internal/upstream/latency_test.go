package upstream

import (
	"math"
	"sync"
	"testing"
	"time"

	"github.com/portunus-gw/portunus/internal/config"
)

func TestLatencyBuckets(t *testing.T) {
	t.Parallel()
	// Every bucket's bounds map back to the bucket, buckets are
	// contiguous and ordered, and none is wider than 1/16 of its lower
	// bound (beyond the linear start).
	var next time.Duration
	for i := range latencyBuckets {
		lo, width := latencyBucketBounds(i)
		if lo != next {
			t.Fatalf("bucket %d starts at %v; want %v (contiguous)", i, lo, next)
		}
		if got := latencyBucket(lo); got != i {
			t.Fatalf("latencyBucket(%v) = %d; want %d", lo, got, i)
		}
		if got := latencyBucket(lo + width - 1); got != i {
			t.Fatalf("latencyBucket(%v) = %d; want %d (top of the bucket)", lo+width-1, got, i)
		}
		if i >= latencySub && float64(width) > float64(lo)/latencySub+1 {
			t.Fatalf("bucket %d: width %v > 1/16 of %v", i, width, lo)
		}
		next = lo + width
	}
	if got := latencyBucket(-time.Second); got != 0 {
		t.Errorf("negative latency in bucket %d; want 0", got)
	}
	if got := latencyBucket(48 * time.Hour); got != latencyBuckets-1 {
		t.Errorf("48h in bucket %d; want the last (%d)", got, latencyBuckets-1)
	}
}

func TestMinSamplesFor(t *testing.T) {
	t.Parallel()
	for q, want := range map[float64]uint64{0.5: 100, 0.9: 100, 0.95: 100, 0.99: 500, 0.999: 5000} {
		if got := MinSamplesFor(q); got != want {
			t.Errorf("MinSamplesFor(%v) = %d; want %d", q, got, want)
		}
	}
}

// within reports whether got is within frac (relative) of want.
func within(got, want time.Duration, frac float64) bool {
	return math.Abs(float64(got-want)) <= frac*float64(want)
}

func TestLatencyQuantiles(t *testing.T) {
	t.Parallel()
	clk := &fakeClock{}
	s := newLatencyStats(10*time.Second, 4, clk.now)
	// 1 ms, 2 ms, ... 1000 ms, each five times (p99.9 needs 5000).
	for range 5 {
		for i := 1; i <= 1000; i++ {
			s.Record(time.Duration(i) * time.Millisecond)
		}
	}
	for _, tc := range []struct {
		q    float64
		want time.Duration
	}{
		{0.5, 500 * time.Millisecond},
		{0.9, 900 * time.Millisecond},
		{0.95, 950 * time.Millisecond},
		{0.99, 990 * time.Millisecond},
		{0.999, 999 * time.Millisecond},
	} {
		// Bucket width bounds the error at 1/16; interpolation does
		// much better on a smooth distribution.
		if got := s.Quantile(tc.q); !within(got, tc.want, 0.0625) {
			t.Errorf("q%v = %v; want %v ± 6.25%%", tc.q, got, tc.want)
		}
	}
	// A two-valued distribution: 90 % at 1 ms, 10 % at 100 ms.
	s2 := newLatencyStats(10*time.Second, 1, clk.now)
	for i := range 1000 {
		d := time.Millisecond
		if i%10 == 0 {
			d = 100 * time.Millisecond
		}
		s2.Record(d)
	}
	if got := s2.Quantile(0.5); !within(got, time.Millisecond, 0.0625) {
		t.Errorf("p50 = %v; want about 1ms", got)
	}
	if got := s2.Quantile(0.95); !within(got, 100*time.Millisecond, 0.0625) {
		t.Errorf("p95 = %v; want about 100ms", got)
	}
}

func TestLatencyMinSamples(t *testing.T) {
	t.Parallel()
	clk := &fakeClock{}
	s := newLatencyStats(10*time.Second, 2, clk.now)
	p95, p99 := s.Track(0.95), s.Track(0.99)
	if s.Track(0.95) != p95 {
		t.Error("Track(0.95) twice returned two handles")
	}
	for range 99 {
		s.Record(10 * time.Millisecond)
	}
	clk.advance(latencyRefresh)
	if got := p95.Value(); got != 0 {
		t.Fatalf("p95 after 99 samples = %v; want 0 (unknown)", got)
	}
	s.Record(10 * time.Millisecond)
	if got := p95.Value(); got != 0 {
		t.Fatalf("p95 = %v before the refresh interval passed; want the published 0", got)
	}
	clk.advance(latencyRefresh)
	if got := p95.Value(); !within(got, 10*time.Millisecond, 0.0625) {
		t.Fatalf("p95 after 100 samples = %v; want about 10ms", got)
	}
	if got := p99.Value(); got != 0 {
		t.Fatalf("p99 after 100 samples = %v; want 0 (needs %d)", got, MinSamplesFor(0.99))
	}
}

func TestLatencyWindowsFollowChange(t *testing.T) {
	t.Parallel()
	clk := &fakeClock{}
	const window = 10 * time.Second
	s := newLatencyStats(window, 2, clk.now)
	p50 := s.Track(0.5)
	for range 200 {
		s.Record(10 * time.Millisecond)
	}
	clk.advance(latencyRefresh)
	if got := p50.Value(); !within(got, 10*time.Millisecond, 0.0625) {
		t.Fatalf("p50 = %v; want about 10ms", got)
	}
	// The upstream slows down: one window later the old samples are
	// still half of what is read, two windows later they are gone.
	clk.advance(window)
	p50.Value() // rotates: the 10 ms samples are now the previous window
	for range 300 {
		s.Record(80 * time.Millisecond)
	}
	clk.advance(latencyRefresh)
	if got := p50.Value(); !within(got, 80*time.Millisecond, 0.0625) {
		t.Fatalf("p50 with 200 old and 300 new samples = %v; want about 80ms", got)
	}
	clk.advance(window)
	p50.Value() // rotates again: the 10 ms window is cleared
	for range 150 {
		s.Record(80 * time.Millisecond)
	}
	if got := s.Quantile(0.01); !within(got, 80*time.Millisecond, 0.0625) {
		t.Fatalf("p1 = %v; want about 80ms (the 10ms samples left with their window)", got)
	}
	// Idle for two windows: nothing is left, the percentile is unknown.
	clk.advance(2 * window)
	if got := p50.Value(); got != 0 {
		t.Fatalf("p50 after two idle windows = %v; want 0", got)
	}
}

func TestLatencyRotatesOnRecord(t *testing.T) {
	t.Parallel()
	clk := &fakeClock{}
	s := newLatencyStats(time.Second, 1, clk.now)
	for range 100 {
		s.Record(10 * time.Millisecond)
	}
	// Nobody reads, samples keep coming: the counts themselves rotate
	// the windows, so the 10 ms samples leave after two windows while
	// the recent ones stay.
	for range 2 {
		clk.advance(1500 * time.Millisecond)
		for range latencyTick {
			s.Record(80 * time.Millisecond)
		}
	}
	if got := s.Quantile(0.01); !within(got, 80*time.Millisecond, 0.0625) {
		t.Fatalf("p1 = %v; want about 80ms (the old samples rotated out, the recent ones kept)", got)
	}
}

func TestLatencyConcurrent(t *testing.T) {
	t.Parallel()
	clk := &fakeClock{}
	s := newLatencyStats(time.Second, 8, clk.now)
	q := s.Track(0.9)
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := range 2000 {
				s.Record(time.Duration(1+(i+w)%10) * time.Millisecond)
				if i%100 == 0 {
					clk.advance(latencyRefresh / 10)
					q.Value()
				}
			}
		})
	}
	wg.Wait()
	// 16000 samples minus at most those in a window cleared by the
	// rotations the readers caused (the clock advanced 1.6 s in all).
	if got := s.Quantile(0.9); got < 8*time.Millisecond || got > 11*time.Millisecond {
		t.Errorf("p90 = %v; want about 9-10ms", got)
	}
}

func TestPoolRecordsSuccessLatency(t *testing.T) {
	t.Parallel()
	p := newTestPool(t, config.Upstream{Targets: targetsOf(1)})
	tg := p.Targets()[0]
	// Not enabled: nothing kept.
	p.Report(tg, OutcomeSuccess, time.Millisecond)
	if p.LatencyStats() != nil {
		t.Fatal("LatencyStats is set before EnableLatencyStats")
	}
	s := p.EnableLatencyStats()
	if p.EnableLatencyStats() != s || p.LatencyStats() != s {
		t.Fatal("EnableLatencyStats returned another histogram the second time")
	}
	for range 100 {
		p.Report(tg, OutcomeSuccess, 5*time.Millisecond)
		p.Report(tg, OutcomeFailure, time.Second)
		p.Report(tg, OutcomeIgnored, time.Second)
	}
	if got := s.Quantile(0.95); !within(got, 5*time.Millisecond, 0.0625) {
		t.Fatalf("p95 = %v; want about 5ms: failures and ignored attempts do not count", got)
	}
}

func BenchmarkLatencyRecordAndRead(b *testing.B) {
	s := newLatencyStats(DefaultLatencyWindow, 0, monoNow)
	q := s.Track(0.95)
	for i := range 1000 {
		s.Record(time.Duration(i) * time.Microsecond)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		d := time.Duration(0)
		for pb.Next() {
			d += 37 * time.Microsecond
			s.Record(d % (50 * time.Millisecond))
			if q.Value() < 0 {
				b.Fatal("negative quantile")
			}
		}
	})
}
