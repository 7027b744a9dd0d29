package upstream

import (
	"sync"
	"time"
)

// Observer receives a pool's health events, for metrics. Every call is
// made off the request's fast path (a probe finished, a state changed) or
// is a counter (retries, hedges). The target is its URL string.
// internal/telemetry's UpstreamHealthRecorder implements it.
type Observer interface {
	// TargetUp reports the active health verdict: up or not.
	TargetUp(target string, up bool)
	// HealthCheck counts one active probe and its result.
	HealthCheck(target string, ok bool)
	// Ejected counts one passive-health ejection.
	Ejected(target string)
	// BreakerState reports the breaker's state: 0 closed, 1 open,
	// 2 half-open (BreakerState values).
	BreakerState(target string, state int)
	// Retry counts one retry, by reason (connect_failure, reset,
	// timeout, status).
	Retry(reason string)
	// Hedge counts one hedged attempt.
	Hedge()
	// Forget drops a target's series: it left the pool.
	Forget(target string)
}

type nopObserver struct{}

func (nopObserver) TargetUp(string, bool)    {}
func (nopObserver) HealthCheck(string, bool) {}
func (nopObserver) Ejected(string)           {}
func (nopObserver) BreakerState(string, int) {}
func (nopObserver) Retry(string)             {}
func (nopObserver) Hedge()                   {}
func (nopObserver) Forget(string)            {}

// Option configures NewPool.
type Option func(*poolOptions)

type poolOptions struct {
	obs   Observer
	clock func() int64
}

// WithObserver sends the pool's health events to o (nil: none).
func WithObserver(o Observer) Option {
	return func(po *poolOptions) {
		if o != nil {
			po.obs = o
		}
	}
}

// withClock replaces the monotonic clock (nanoseconds) in tests, so
// ejections and breaker timeouts are stepped, not waited for.
func withClock(now func() int64) Option {
	return func(po *poolOptions) { po.clock = now }
}

var epoch = time.Now()

// monoNow is nanoseconds on the monotonic clock since process start.
func monoNow() int64 { return int64(time.Since(epoch)) }

// poolHealth is what a pool's targets share: the health settings, the
// clock and the observer.
type poolHealth struct {
	name    string
	clock   func() int64
	obs     Observer
	active  *activeConfig
	passive *passiveConfig
	breaker *breakerConfig
	// ejectMu serializes ejection decisions, so two targets failing at
	// once cannot both pass the max_ejected_percent check. Only the
	// failure that reaches the threshold takes it; picks never do.
	ejectMu sync.Mutex
	pool    *Pool
}

func (h *poolHealth) now() int64 { return h.clock() }
