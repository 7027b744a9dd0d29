package upstream

import "time"

// Health values of TargetStatus.Health.
const (
	HealthHealthy   = "healthy"   // passed its last active checks
	HealthUnhealthy = "unhealthy" // failed unhealthy_threshold probes in a row
	HealthEjected   = "ejected"   // out for a while after consecutive failures
	HealthUnknown   = "unknown"   // no probe finished yet, or no active checks: in rotation
)

// TargetStatus is a snapshot of one target's state, for the admin API.
type TargetStatus struct {
	// Health is healthy, unhealthy, ejected or unknown. A target is picked
	// when healthy or unknown (and its breaker admits requests).
	Health string
	// Breaker is closed, open or half_open (closed without a breaker).
	Breaker string
	// InFlight is the number of requests not yet finished.
	InFlight int64
	// Latency is the moving average of answer latency (0: no sample).
	Latency time.Duration
	// ConsecutiveFailures counts failed attempts since the last success
	// (passive health).
	ConsecutiveFailures int64
	// Ejections counts passive ejections of this target.
	Ejections int64
	// EjectedUntil is when the current ejection ends (zero when not
	// ejected).
	EjectedUntil time.Time
	// LastCheck is the last active probe (nil: none yet).
	LastCheck *CheckResult
}

// Status returns the target's current state.
func (t *Target) Status() TargetStatus {
	st := TargetStatus{
		Health:              HealthUnknown,
		Breaker:             BreakerState(t.br.state.Load()).String(),
		InFlight:            t.InFlight(),
		Latency:             time.Duration(t.latency()),
		ConsecutiveFailures: t.consecFail.Load(),
		Ejections:           t.ejections.Load(),
		LastCheck:           t.lastCheck.Load(),
	}
	now := t.h.now()
	switch {
	case t.isEjected(now):
		st.Health = HealthEjected
		st.EjectedUntil = time.Now().Add(time.Duration(t.ejectedUntil.Load() - now))
	case t.down.Load()&downActive != 0:
		st.Health = HealthUnhealthy
	case st.LastCheck != nil:
		st.Health = HealthHealthy
	}
	return st
}
