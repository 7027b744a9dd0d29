package upstream

import (
	"math"
	"net/url"
	"sync"
	"sync/atomic"
	"time"
)

// Target is one instance of an upstream. Its address and weight are
// immutable; everything that changes (in-flight count, health, breaker,
// latency) lives in its state, which service discovery hands on to the
// Target that replaces it when only the weight changed.
type Target struct {
	// URL is scheme + host; URL.Path is the prefix prepended to forwarded
	// paths ("" or "/x").
	URL *url.URL
	// Weight is the target's share of traffic relative to the others.
	Weight int
	// Host is URL.Host, precomputed: the address connections go to.
	Host string
	// Authority is what requests to the target carry as their Host
	// header (unless preserve_host) and, for https, as the TLS server
	// name: Host for a configured target, the configured host name and
	// port for an address found by discovery.
	Authority string
	// PathPrefix is URL's escaped path with no trailing '/' ("" for none).
	PathPrefix string

	str string
	*targetState
}

// Reasons a target is not picked, as bits of targetState.down. A pick
// reads the word once: zero means usable, with no clock read and no lock.
const (
	downActive  uint32 = 1 << iota // failed its active health checks
	downEjected                    // ejected by passive health until ejectedUntil
	downBreaker                    // breaker open or half-open
)

// targetState is the mutable part of a target. Every field is atomic or
// guarded by the target's own mutexes: no lock is shared between targets.
type targetState struct {
	h *poolHealth

	// inFlight counts requests sent to this target and not yet finished.
	inFlight atomic.Int64
	down     atomic.Uint32
	// ewmaNanos is the latency moving average, float64 bits, nanoseconds.
	ewmaNanos atomic.Uint64

	// Active health (health.go).
	activeMu   sync.Mutex
	activeOK   int // consecutive passing probes
	activeFail int // consecutive failing probes
	lastCheck  atomic.Pointer[CheckResult]

	// Passive health (passive.go).
	consecFail   atomic.Int64
	ejectedUntil atomic.Int64 // clock nanos; the last ejection's end
	penalty      atomic.Int64 // ejections not yet forgiven: the multiplier
	ejections    atomic.Int64 // ejections ever

	br breaker
}

func newTargetState(h *poolHealth) *targetState {
	st := &targetState{h: h}
	st.br.init(h.breaker)
	return st
}

// Begin counts a request to this target as in flight; End must follow.
func (t *Target) Begin() { t.inFlight.Add(1) }

// End counts a request to this target as finished.
func (t *Target) End() { t.inFlight.Add(-1) }

// InFlight is the number of requests to this target not yet finished.
func (t *Target) InFlight() int64 { return t.inFlight.Load() }

// String returns the target URL as configured (normalized), precomputed so
// recording it per request costs nothing.
func (t *Target) String() string { return t.str }

// usable reports whether the balancer may pick t. It does not take a
// half-open trial slot (admit does, for the target finally chosen).
func (t *Target) usable() bool {
	d := t.down.Load()
	if d == 0 {
		return true
	}
	return t.usableSlow(d)
}

func (t *Target) usableSlow(d uint32) bool {
	if d&downActive != 0 {
		return false
	}
	now := t.h.now()
	if d&downEjected != 0 {
		if now < t.ejectedUntil.Load() {
			return false
		}
		// The ejection is over: clear it here, on the first look after
		// it ends, rather than with a timer per ejection.
		t.down.And(^downEjected)
	}
	if d&downBreaker != 0 {
		return t.br.mayAdmit(now)
	}
	return true
}

// admit is called for the target a pick chose: in half-open it takes a
// trial slot, and reports false when another request took the last one.
func (t *Target) admit() bool {
	if t.down.Load()&downBreaker == 0 {
		return true
	}
	return t.br.admit(t, t.h.now())
}

// ewmaAlpha weighs a new latency sample against the moving average: 0.2
// follows a change within about ten requests without jumping on one
// outlier.
const ewmaAlpha = 0.2

// failurePenalty is the latency a failed attempt counts as, so that a
// target failing fast (connection refused in microseconds) looks slow to
// p2c_ewma instead of attracting all traffic.
const failurePenalty = time.Second

func (t *Target) observeLatency(d time.Duration, failed bool) {
	x := float64(d)
	if failed && x < float64(failurePenalty) {
		x = float64(failurePenalty)
	}
	for {
		old := t.ewmaNanos.Load()
		cur := math.Float64frombits(old)
		next := x
		if old != 0 {
			next = cur + ewmaAlpha*(x-cur)
		}
		if t.ewmaNanos.CompareAndSwap(old, math.Float64bits(next)) {
			return
		}
	}
}

// observeAtLeast feeds the moving average a sample known only as a lower
// bound (an attempt cancelled after d): it moves the average up when d is
// above it, and leaves it alone otherwise, since the true latency may be
// anywhere above d. With no sample yet, d is the first one.
func (t *Target) observeAtLeast(d time.Duration) {
	x := float64(d)
	if x <= 0 {
		return
	}
	for {
		old := t.ewmaNanos.Load()
		cur := math.Float64frombits(old)
		if old != 0 && x <= cur {
			return
		}
		next := x
		if old != 0 {
			next = cur + ewmaAlpha*(x-cur)
		}
		if t.ewmaNanos.CompareAndSwap(old, math.Float64bits(next)) {
			return
		}
	}
}

// latency is the latency moving average in nanoseconds (0: no sample yet).
func (t *Target) latency() float64 { return math.Float64frombits(t.ewmaNanos.Load()) }
