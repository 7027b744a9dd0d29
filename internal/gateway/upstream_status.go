package gateway

import (
	"time"

	"github.com/portunus-gw/portunus/internal/upstream"
)

// CheckStatus is a target's last active health probe in GET
// /api/v1/upstreams.
type CheckStatus struct {
	Time       time.Time `json:"time"`
	OK         bool      `json:"ok"`
	Status     int       `json:"status,omitempty"`
	Error      string    `json:"error,omitempty"`
	DurationMS float64   `json:"duration_ms"`
}

func targetStatus(t *upstream.Target) TargetStatus {
	st := t.Status()
	ts := TargetStatus{
		URL: t.String(), Weight: t.Weight, InFlight: st.InFlight,
		Health: st.Health, Breaker: st.Breaker,
		LatencyMS:           ms(st.Latency),
		ConsecutiveFailures: st.ConsecutiveFailures,
		Ejections:           st.Ejections,
	}
	if !st.EjectedUntil.IsZero() {
		u := st.EjectedUntil.UTC().Truncate(time.Millisecond)
		ts.EjectedUntil = &u
	}
	if c := st.LastCheck; c != nil {
		ts.LastCheck = &CheckStatus{Time: c.Time.UTC(), OK: c.OK, Status: c.Status, Error: c.Error, DurationMS: ms(c.Duration)}
	}
	return ts
}

// ms is d in milliseconds, rounded to microseconds.
func ms(d time.Duration) float64 {
	return float64(d.Round(time.Microsecond)) / float64(time.Millisecond)
}
