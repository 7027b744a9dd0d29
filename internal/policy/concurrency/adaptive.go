package concurrency

import (
	"math/rand/v2"
	"slices"
	"time"
)

// The adaptive controller: AIMD on the median latency of completed
// requests against a periodically probed baseline (the shape of Envoy's
// adaptive concurrency filter, with TCP's slow start and AIMD in place of
// its gradient).
//
//  1. Baseline. At start and then every probeInterval (±25% jitter, so
//     instances sharing an upstream do not probe together) the limit is
//     pinned to probeLimit until probeSamples requests admitted during the
//     probe have completed; the median of their latencies is the baseline:
//     what the upstream does when it is not loaded. A probe that has not
//     gathered its samples after probeMaxDuration ends with whatever it
//     has (at least one). Between probes, a window median below the
//     baseline lowers it.
//  2. Windows. Every sampleWindow the controller looks at the latencies of
//     requests admitted since the last limit change (older ones measured
//     another limit); fewer than minSamples and the window is extended.
//  3. Decision on the window's median m, baseline b:
//     m > tolerance × b      → limit = floor(limit × backoff) (at least -1, at least 1);
//     otherwise, if the limit was reached in the window (peak in-flight ≥
//     limit; an idle route must not inflate its limit):
//     slow start              → limit × 2 (until the first decrease),
//     afterwards              → limit + 1;
//     always within 1..max.
//
// A latency is measured from admission to the end of the handler, so time
// spent queued in front of the limiter does not count. If the upstream
// stops answering altogether no sample arrives and the limit stays where it
// is; the in-flight count is still bounded by it.
const (
	sampleWindow     = 100 * time.Millisecond
	minSamples       = 8
	tolerance        = 1.5
	backoff          = 0.8
	probeLimit       = 3
	probeSamples     = 16
	probeMaxDuration = 2 * time.Second
	probeInterval    = 30 * time.Second
	// baselineFloor keeps latencies too small to measure reliably (a
	// cached answer, a loopback upstream) from making the tolerance band
	// vanishingly thin.
	baselineFloor = 100 * time.Microsecond
	// maxSamples bounds the per-window sample buffer; later samples of a
	// window are dropped (the window is then long enough anyway).
	maxSamples = 1024
)

// clock is the controller's time source; tests inject one.
type clock interface {
	Now() time.Time
	Ticker(d time.Duration) (<-chan time.Time, func())
}

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

func (realClock) Ticker(d time.Duration) (<-chan time.Time, func()) {
	t := time.NewTicker(d)
	return t.C, t.Stop
}

// controller holds the adaptive state. Every field but clock, interval,
// stopCh and done is guarded by the Limiter's mu.
type controller struct {
	clock    clock
	interval time.Duration
	max      int

	samples    []time.Duration // latencies of the current window
	spare      []time.Duration // the other buffer, swapped in while a window is evaluated
	lastChange time.Time       // samples of requests admitted earlier are ignored
	peak       int             // highest in-flight count seen in the window
	baseline   time.Duration
	slowStart  bool

	probing    bool
	probeStart time.Time
	probeSaved int // the limit to restore when the probe ends
	nextProbe  time.Time

	stopCh chan struct{}
	done   chan struct{}
}

func newController(c clock, interval time.Duration, maxLimit int) *controller {
	return &controller{
		clock:     c,
		interval:  interval,
		max:       maxLimit,
		samples:   make([]time.Duration, 0, maxSamples),
		spare:     make([]time.Duration, 0, maxSamples),
		slowStart: true,
	}
}

// startProbe begins measuring the baseline and returns the limit to apply.
// first is the probe at start, after which slow start begins from the
// probe limit. Called with mu held (or before the limiter is shared).
func (c *controller) startProbe(current int, first bool) int {
	now := c.clock.Now()
	c.probing = true
	c.probeStart = now
	c.probeSaved = current
	pl := min(c.max, probeLimit)
	if first {
		c.probeSaved = pl
	}
	c.lastChange = now
	c.samples = c.samples[:0]
	return pl
}

// record adds one latency sample. Called with mu held.
func (c *controller) record(start time.Time, d time.Duration) {
	if start.Before(c.lastChange) || len(c.samples) == cap(c.samples) {
		return
	}
	c.samples = append(c.samples, d)
}

// run starts the controller goroutine; stop ends it.
func (c *controller) run(l *Limiter) {
	c.stopCh = make(chan struct{})
	c.done = make(chan struct{})
	tick, stopTick := c.clock.Ticker(c.interval)
	go func() {
		defer close(c.done)
		defer stopTick()
		for {
			select {
			case <-c.stopCh:
				return
			case <-tick:
				c.adjust(l)
			}
		}
	}()
}

// stop ends the goroutine and, if a probe was running, restores the limit
// it had pinned: a frozen limiter must not stay at the probe limit.
func (c *controller) stop(l *Limiter) {
	if c.stopCh != nil {
		close(c.stopCh)
		<-c.done
	}
	l.mu.Lock()
	if c.probing {
		c.probing = false
		l.setLimit(c.probeSaved, c.clock.Now())
	}
	l.mu.Unlock()
}

// adjust evaluates one window and moves the limit.
func (c *controller) adjust(l *Limiter) {
	now := c.clock.Now()
	l.mu.Lock()
	if !c.probing && !now.Before(c.nextProbe) {
		l.setLimit(c.startProbe(l.limit, false), now)
		l.mu.Unlock()
		return
	}
	need := minSamples
	if c.probing {
		need = probeSamples
		if now.Sub(c.probeStart) >= probeMaxDuration {
			need = 1
		}
	}
	if len(c.samples) < need {
		l.mu.Unlock()
		return
	}
	// Evaluate outside the lock: sorting must not stall admissions.
	batch := c.samples
	c.samples, c.spare = c.spare, nil
	limit, peak := l.limit, c.peak
	c.peak = l.inflight
	l.mu.Unlock()

	slices.Sort(batch)
	median := batch[len(batch)/2]

	l.mu.Lock()
	c.spare = batch[:0]
	var next int
	if c.probing {
		c.probing = false
		c.baseline = median
		c.nextProbe = now.Add(jitter(probeInterval))
		next = c.probeSaved
	} else {
		c.baseline = min(c.baseline, median)
		next = c.decide(limit, peak, median)
	}
	if next != l.limit {
		l.setLimit(next, now)
	}
	l.mu.Unlock()
}

// decide is step 3 of the algorithm. Called with mu held.
func (c *controller) decide(limit, peak int, median time.Duration) int {
	if float64(median) > tolerance*float64(max(c.baseline, baselineFloor)) {
		c.slowStart = false
		return max(1, min(limit-1, int(float64(limit)*backoff)))
	}
	if peak < limit {
		return limit
	}
	if c.slowStart {
		return min(c.max, limit*2)
	}
	return min(c.max, limit+1)
}

// setLimit applies a new limit: samples measured under the old one are
// dropped and freed slots go to waiters. Called with mu held.
func (l *Limiter) setLimit(n int, now time.Time) {
	l.limit = n
	c := l.ctl
	c.lastChange = now
	c.samples = c.samples[:0]
	c.peak = l.inflight
	l.dispatch()
}

// jitter returns d ± 25%.
func jitter(d time.Duration) time.Duration {
	return d*3/4 + rand.N(d/2)
}
