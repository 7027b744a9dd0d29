package upstream

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/portunus-gw/portunus/internal/config"
)

// BreakerState is a circuit breaker's state.
type BreakerState uint32

const (
	BreakerClosed   BreakerState = iota // requests flow; outcomes are counted
	BreakerOpen                         // no requests until open_for has passed
	BreakerHalfOpen                     // a bounded number of trial requests
)

func (s BreakerState) String() string {
	switch s {
	case BreakerOpen:
		return "open"
	case BreakerHalfOpen:
		return "half_open"
	}
	return "closed"
}

// Breaker window: the failure ratio is measured over the last
// breakerBuckets seconds, so a burst of failures an hour ago does not
// count and a new outage opens the breaker within seconds.
const (
	breakerBuckets = 10
	breakerBucket  = int64(time.Second)
)

type breakerConfig struct {
	ratio    float64
	minReq   int64
	openFor  int64 // nanos
	halfOpen int64
}

func newBreakerConfig(c *config.CircuitBreaker) *breakerConfig {
	if c == nil {
		return nil
	}
	bc := &breakerConfig{ratio: c.FailureRatio, minReq: int64(c.MinRequests), openFor: int64(c.OpenFor.D()), halfOpen: int64(c.HalfOpenRequests)}
	// Un-defaulted configs (tests, explain) still get the contract's values.
	if bc.ratio <= 0 {
		bc.ratio = 0.5
	}
	if bc.minReq <= 0 {
		bc.minReq = 20
	}
	if bc.openFor <= 0 {
		bc.openFor = int64(10 * time.Second)
	}
	if bc.halfOpen <= 0 {
		bc.halfOpen = 3
	}
	return bc
}

type breakerBucketCount struct {
	sec         int64
	total, fail int64
}

// breaker is one target's circuit breaker. Outcomes are recorded under
// the target's own mutex (Report); picks read only atomics (state,
// openUntil, trials), so a pick never waits for a Report.
type breaker struct {
	cfg       *breakerConfig // nil: no breaker
	state     atomic.Uint32  // BreakerState
	openUntil atomic.Int64   // clock nanos
	trials    atomic.Int64   // half-open trial requests taken and not yet reported
	trialAt   atomic.Int64   // clock nanos of the last trial taken

	mu       sync.Mutex
	trialOK  int64
	buckets  [breakerBuckets]breakerBucketCount
	openings atomic.Int64
}

func (b *breaker) init(cfg *breakerConfig) { b.cfg = cfg }

// mayAdmit reports, without changing anything, whether a request could
// be sent now.
func (b *breaker) mayAdmit(now int64) bool {
	switch BreakerState(b.state.Load()) {
	case BreakerOpen:
		return now >= b.openUntil.Load()
	case BreakerHalfOpen:
		return b.trials.Load() < b.cfg.halfOpen || b.trialsStale(now)
	}
	return true
}

// trialsStale: the trials taken have not all been reported within
// open_for. An attempt that is never reported (a caller bug, a panic)
// must not hold the breaker half-open forever.
func (b *breaker) trialsStale(now int64) bool {
	return now-b.trialAt.Load() >= b.cfg.openFor
}

// admit takes a trial slot for a request about to be sent (moving an open
// breaker whose time is up to half-open). False: no slot left.
func (b *breaker) admit(t *Target, now int64) bool {
	if b.cfg == nil {
		return true
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	switch BreakerState(b.state.Load()) {
	case BreakerClosed:
		return true
	case BreakerOpen:
		if now < b.openUntil.Load() {
			return false
		}
		b.setState(t, BreakerHalfOpen)
		b.trials.Store(0)
		b.trialOK = 0
	}
	if b.trials.Load() >= b.cfg.halfOpen {
		if !b.trialsStale(now) {
			return false
		}
		b.trials.Store(0)
	}
	b.trials.Add(1)
	b.trialAt.Store(now)
	return true
}

// release frees a trial slot of an attempt that ended without saying
// anything about the target (OutcomeIgnored).
func (b *breaker) release() {
	if b.cfg == nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if BreakerState(b.state.Load()) == BreakerHalfOpen && b.trials.Load() > 0 {
		b.trials.Add(-1)
	}
}

// record counts one reported outcome and moves the state machine.
func (b *breaker) record(t *Target, failed bool, now int64) {
	if b.cfg == nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	switch BreakerState(b.state.Load()) {
	case BreakerOpen:
		// A late answer to a request sent before the breaker opened
		// says nothing new.
		return
	case BreakerHalfOpen:
		if b.trials.Load() == 0 {
			return // not a trial: sent before the breaker opened
		}
		b.trials.Add(-1)
		if failed {
			b.open(t, now)
			return
		}
		b.trialOK++
		if b.trialOK >= b.cfg.halfOpen {
			b.buckets = [breakerBuckets]breakerBucketCount{}
			b.setState(t, BreakerClosed)
		}
		return
	}
	sec := now / breakerBucket
	bk := &b.buckets[sec%breakerBuckets]
	if bk.sec != sec {
		*bk = breakerBucketCount{sec: sec}
	}
	bk.total++
	if failed {
		bk.fail++
	} else {
		return // a success never opens the breaker
	}
	var total, fail int64
	for i := range b.buckets {
		if c := &b.buckets[i]; c.sec > sec-breakerBuckets {
			total += c.total
			fail += c.fail
		}
	}
	if total >= b.cfg.minReq && float64(fail) >= b.cfg.ratio*float64(total) {
		b.open(t, now)
	}
}

func (b *breaker) open(t *Target, now int64) {
	b.openUntil.Store(now + b.cfg.openFor)
	b.trials.Store(0)
	b.trialOK = 0
	b.openings.Add(1)
	b.setState(t, BreakerOpen)
}

// setState changes the state and the target's down bit together; the
// caller holds b.mu.
func (b *breaker) setState(t *Target, s BreakerState) {
	if BreakerState(b.state.Swap(uint32(s))) == s {
		return
	}
	if s == BreakerClosed {
		t.down.And(^downBreaker)
	} else {
		t.down.Or(downBreaker)
	}
	t.h.obs.BreakerState(t.str, int(s))
}
