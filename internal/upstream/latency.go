package upstream

import (
	"math/bits"
	"math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// Latency percentiles for hedge.after: pN. A pool that a route hedges by
// percentile keeps a windowed histogram of its successful attempts'
// response-header latencies (Report feeds it); each route asks for its
// percentile through a LatencyQuantile handle.
//
// The histogram is log-linear: 16 buckets per power of two of the
// latency in units of 1.024 µs (a shift of the nanoseconds, no
// division), so any value is placed within 1/16 (6.25 %) of its true
// size, from 1 µs up to about 36 minutes (larger values fall in the last
// bucket). Recording is one atomic add into one of several shards
// (picked at random, so cores rarely write the same cache line) of the
// current window; it takes no lock and allocates nothing.
//
// Two windows rotate: samples go into the current one; the percentile is
// read over the current and the previous one, so it always reflects
// between one and two windows of traffic (10-20 s by default) and
// follows a change of the upstream within two windows. The percentiles
// are recomputed at most every latencyRefresh, by whichever reader finds
// them stale (a TryLock: nobody waits), and published through atomics
// that readers load; the windows rotate then, or when a recorder finds
// the current one over (tick).

const (
	// latencySubBits: 2^latencySubBits buckets per power of two.
	latencySubBits = 4
	latencySub     = 1 << latencySubBits
	// latencyUnitShift: a sample is counted in units of 2^10 ns.
	latencyUnitShift = 10
	// latencyMaxExp: values of 2^(latencyMaxExp+1) units and more (about
	// 36 minutes) share the last bucket.
	latencyMaxExp = 30
	// latencyBuckets is the number of buckets of one histogram.
	latencyBuckets = (latencyMaxExp-latencySubBits+1)*latencySub + latencySub

	// DefaultLatencyWindow is the length of one of the two windows.
	DefaultLatencyWindow = 10 * time.Second
	// latencyRefresh bounds how often percentiles are recomputed.
	latencyRefresh = 100 * time.Millisecond
	// LatencyMinSamples is the fewest samples (over both windows) a
	// percentile is computed from; below it the percentile is unknown
	// (0). High percentiles need more: see MinSamplesFor.
	LatencyMinSamples = 100
	// latencyMaxShards bounds the shards (and memory: one shard is two
	// histograms of 3.5 KiB).
	latencyMaxShards = 16
)

// MinSamplesFor is the number of samples the q-quantile (0 < q < 1) needs
// before it is trusted: at least LatencyMinSamples, and enough that about
// five samples lie above it (p99: 500, p99.9: 5000), so that one outlier
// cannot move it far.
func MinSamplesFor(q float64) uint64 {
	n := uint64(LatencyMinSamples)
	if q > 0 && q < 1 {
		// Rounded to the nearest integer first: 5/(1-0.95) is
		// 100.00000000000009 in floating point.
		if m := uint64(5/(1-q) + 0.5); m > n {
			n = m
		}
	}
	return n
}

// latencyBucket returns the bucket of a latency.
func latencyBucket(d time.Duration) int {
	if d <= 0 {
		return 0
	}
	v := uint64(d) >> latencyUnitShift
	if v < latencySub {
		return int(v)
	}
	exp := bits.Len64(v) - 1 // v is in [2^exp, 2^(exp+1))
	if exp > latencyMaxExp {
		return latencyBuckets - 1
	}
	shift := exp - latencySubBits
	return shift*latencySub + int(v>>shift)
}

// latencyBucketBounds returns the range of latencies bucket i holds:
// [lo, lo+width).
func latencyBucketBounds(i int) (lo, width time.Duration) {
	if i < 2*latencySub {
		return time.Duration(i) << latencyUnitShift, 1 << latencyUnitShift
	}
	shift := i/latencySub - 1
	m := uint64(i%latencySub + latencySub)
	return time.Duration(m<<shift) << latencyUnitShift, time.Duration(1<<shift) << latencyUnitShift
}

// latencyHist is one window's counts in one shard.
type latencyHist [latencyBuckets]atomic.Uint64

// latencyShard is one shard: both windows.
type latencyShard struct {
	h [2]latencyHist
}

// LatencyStats is a pool's windowed latency histogram. Safe for
// concurrent use; Record and LatencyQuantile.Value take no lock and
// allocate nothing.
type LatencyStats struct {
	clock  func() int64 // monotonic nanoseconds
	window int64
	mask   uint32
	shards []latencyShard
	// cur is the window (0 or 1) samples go into.
	cur atomic.Uint32
	// rotated is when cur last changed; computed when the percentiles
	// were last recomputed (clock nanoseconds).
	rotated  atomic.Int64
	computed atomic.Int64
	tracked  atomic.Pointer[[]*LatencyQuantile]

	// mu serializes refresh (TryLock: readers never wait) and Track.
	mu      sync.Mutex
	scratch [latencyBuckets]uint64
}

// LatencyQuantile is one percentile of a LatencyStats, kept current for
// the routes that hedge by it.
type LatencyQuantile struct {
	s   *LatencyStats
	q   float64
	min uint64
	v   atomic.Int64 // nanoseconds; 0 = not enough samples
}

// newLatencyStats returns empty stats with windows of length window and
// the given number of shards (rounded up to a power of two, at most
// latencyMaxShards; 0 = one per CPU).
func newLatencyStats(window time.Duration, shards int, clock func() int64) *LatencyStats {
	if window <= 0 {
		window = DefaultLatencyWindow
	}
	if shards <= 0 {
		shards = runtime.GOMAXPROCS(0)
	}
	n := 1
	for n < shards && n < latencyMaxShards {
		n <<= 1
	}
	s := &LatencyStats{clock: clock, window: int64(window), mask: uint32(n - 1), shards: make([]latencyShard, n)}
	now := clock()
	s.rotated.Store(now)
	s.computed.Store(now)
	empty := []*LatencyQuantile{}
	s.tracked.Store(&empty)
	return s
}

// Record counts one latency in the current window.
func (s *LatencyStats) Record(d time.Duration) {
	sh := &s.shards[rand.Uint32()&s.mask]
	if sh.h[s.cur.Load()&1][latencyBucket(d)].Add(1)%latencyTick == 0 {
		s.tick()
	}
}

// latencyTick: a bucket whose count reaches a multiple of it makes the
// recording goroutine check whether the window is over (tick).
const latencyTick = 256

// tick rotates the windows when the current one is over. Readers rotate
// too (refresh), but a pool that many requests record into and few read
// from (other routes, requests that are never hedged) must not pile up
// samples older than two windows, nor lose the recent ones when a rare
// reader finds both windows overdue. Triggered by the counts themselves,
// it costs recording nothing in between.
func (s *LatencyStats) tick() {
	if now := s.clock(); now-s.rotated.Load() >= s.window && s.mu.TryLock() {
		s.rotateLocked(now)
		s.mu.Unlock()
	}
}

// Track returns the handle of the q-quantile (0 < q < 1; 0.95 = p95),
// the same one for the same q. Call it when building, not per request.
func (s *LatencyStats) Track(q float64) *LatencyQuantile {
	s.mu.Lock()
	defer s.mu.Unlock()
	old := *s.tracked.Load()
	for _, lq := range old {
		if lq.q == q {
			return lq
		}
	}
	lq := &LatencyQuantile{s: s, q: q, min: MinSamplesFor(q)}
	lq.v.Store(int64(s.quantileLocked(q, lq.min)))
	next := append(append(make([]*LatencyQuantile, 0, len(old)+1), old...), lq)
	s.tracked.Store(&next)
	return lq
}

// Value returns the quantile over the last one to two windows; 0 while
// there are fewer samples than MinSamplesFor(q).
func (lq *LatencyQuantile) Value() time.Duration {
	s := lq.s
	if now := s.clock(); now-s.computed.Load() >= int64(latencyRefresh) {
		s.refresh(now)
	}
	return time.Duration(lq.v.Load())
}

// Quantile returns the q-quantile as Value would, recomputed now (for
// tests and the admin API; not for the request path).
func (s *LatencyStats) Quantile(q float64) time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rotateLocked(s.clock())
	return s.quantileLocked(q, MinSamplesFor(q))
}

// refresh rotates the windows when due and recomputes every tracked
// quantile. Only one caller does it; the others go on with the values
// published before.
func (s *LatencyStats) refresh(now int64) {
	if !s.mu.TryLock() {
		return
	}
	defer s.mu.Unlock()
	if now-s.computed.Load() < int64(latencyRefresh) {
		return // another reader just did it
	}
	s.rotateLocked(now)
	s.merge()
	for _, lq := range *s.tracked.Load() {
		lq.v.Store(int64(s.quantileOfScratch(lq.q, lq.min)))
	}
	s.computed.Store(now)
}

// rotateLocked starts a new window when the current one is over: the
// previous window is cleared and becomes the current one. After two
// windows or more without a rotation, both are cleared.
func (s *LatencyStats) rotateLocked(now int64) {
	since := now - s.rotated.Load()
	if since < s.window {
		return
	}
	cur := s.cur.Load() & 1
	next := cur ^ 1
	s.clear(next)
	s.cur.Store(next)
	if since >= 2*s.window {
		// Everything in the old current window is stale too. A record
		// that loaded cur before the swap may still land there: one
		// sample, harmless.
		s.clear(cur)
	}
	s.rotated.Store(now)
}

func (s *LatencyStats) clear(w uint32) {
	for i := range s.shards {
		h := &s.shards[i].h[w]
		for j := range h {
			h[j].Store(0)
		}
	}
}

// merge sums both windows of every shard into s.scratch.
func (s *LatencyStats) merge() {
	s.scratch = [latencyBuckets]uint64{}
	for i := range s.shards {
		sh := &s.shards[i]
		for w := range sh.h {
			h := &sh.h[w]
			for j := range h {
				s.scratch[j] += h[j].Load()
			}
		}
	}
}

func (s *LatencyStats) quantileLocked(q float64, min uint64) time.Duration {
	s.merge()
	return s.quantileOfScratch(q, min)
}

// quantileOfScratch returns the q-quantile of the counts in s.scratch:
// the value below which a share q of the samples fall, interpolated
// linearly inside its bucket; 0 with fewer than min samples.
func (s *LatencyStats) quantileOfScratch(q float64, min uint64) time.Duration {
	var total uint64
	for _, c := range s.scratch {
		total += c
	}
	if total == 0 || total < min {
		return 0
	}
	return quantileOf(&s.scratch, total, q)
}

// quantileOf returns the q-quantile of counts (total samples, > 0): the
// rank-th smallest sample, rank = ceil(q × total), placed inside its
// bucket by linear interpolation.
func quantileOf(counts *[latencyBuckets]uint64, total uint64, q float64) time.Duration {
	rank := uint64(q*float64(total) + 0.999999)
	rank = min(max(rank, 1), total)
	var seen uint64
	for i, c := range counts {
		if c == 0 {
			continue
		}
		if seen+c >= rank {
			lo, width := latencyBucketBounds(i)
			v := lo + time.Duration(float64(width)*float64(rank-seen)/float64(c))
			return max(v, 1)
		}
		seen += c
	}
	lo, width := latencyBucketBounds(latencyBuckets - 1)
	return lo + width
}

// EnableLatencyStats returns the pool's latency histogram, creating it
// on first use: from then on Report records every successful attempt's
// latency in it. Pools no route hedges by percentile never create one,
// and pay nothing.
func (p *Pool) EnableLatencyStats() *LatencyStats {
	if s := p.latency.Load(); s != nil {
		return s
	}
	clock := monoNow
	if p.health != nil && p.health.clock != nil {
		clock = p.health.clock
	}
	s := newLatencyStats(DefaultLatencyWindow, 0, clock)
	if p.latency.CompareAndSwap(nil, s) {
		return s
	}
	return p.latency.Load()
}

// LatencyStats returns the pool's latency histogram; nil until
// EnableLatencyStats.
func (p *Pool) LatencyStats() *LatencyStats { return p.latency.Load() }
