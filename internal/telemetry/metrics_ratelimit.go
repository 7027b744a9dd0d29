package telemetry

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// RateLimitRecorder counts one rate limit's decisions on one route:
// portunus_ratelimit_decisions_total{route,limit,decision}, decision
// allowed or limited. Its counters are resolved when the route is
// compiled, so Observe is one atomic add. A nil recorder records nothing.
type RateLimitRecorder struct {
	allowed, limited prometheus.Counter
}

// RateLimit returns the recorder for the limit named limit on route. It
// registers the family on first use, so a gateway without rate limits
// exports none. Call it when compiling, not per request. Route and limit
// names come from the config, so the label sets stay bounded.
func (m *Metrics) RateLimit(route, limit string) *RateLimitRecorder {
	if m == nil {
		return nil
	}
	vec := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "portunus_ratelimit_decisions_total",
		Help: "Rate limit decisions, by route, limit name and decision (allowed or limited).",
	}, []string{"route", "limit", "decision"})
	if err := m.Registry.Register(vec); err != nil {
		var are prometheus.AlreadyRegisteredError
		if !errors.As(err, &are) {
			return nil // cannot happen with a fixed, valid descriptor
		}
		existing, ok := are.ExistingCollector.(*prometheus.CounterVec)
		if !ok {
			return nil
		}
		vec = existing
	}
	return &RateLimitRecorder{
		allowed: vec.WithLabelValues(route, limit, "allowed"),
		limited: vec.WithLabelValues(route, limit, "limited"),
	}
}

// Observe counts one decision.
func (r *RateLimitRecorder) Observe(allowed bool) {
	if r == nil {
		return
	}
	if allowed {
		r.allowed.Inc()
	} else {
		r.limited.Inc()
	}
}
