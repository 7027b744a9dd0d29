package telemetry

import (
	"errors"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// UpstreamHealthRecorder records one upstream pool's health events:
//
//   - portunus_upstream_target_up{upstream,target}: 1 while the target
//     passes its active health checks (or has none), 0 after it failed
//     unhealthy_threshold probes in a row.
//   - portunus_upstream_health_checks_total{upstream,target,result}:
//     active probes, result success or failure.
//   - portunus_upstream_ejections_total{upstream,target}: passive-health
//     ejections.
//   - portunus_upstream_breaker_state{upstream,target}: 0 closed, 1 open,
//     2 half-open.
//   - portunus_upstream_retries_total{upstream,reason} and
//     portunus_upstream_hedges_total{upstream}: retries and hedged
//     attempts the proxy made.
//
// It implements upstream.Observer. Events are rare (a probe every few
// seconds, a state change) except retries and hedges, whose counters are
// resolved once per reason. A nil recorder records nothing.
type UpstreamHealthRecorder struct {
	name                     string
	up, breaker              *prometheus.GaugeVec
	checks, ejections, retry *prometheus.CounterVec
	hedges                   prometheus.Counter
	retryMu                  sync.Mutex
	retryBy                  map[string]prometheus.Counter
}

// UpstreamHealth returns the health recorder of the upstream named name,
// registering the families on first use. Call it when compiling, not per
// request.
func (m *Metrics) UpstreamHealth(name string) *UpstreamHealthRecorder {
	if m == nil {
		return nil
	}
	up := registerUpstreamHealth(m, prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "portunus_upstream_target_up",
		Help: "1 while the target passes its active health checks (or has none), else 0.",
	}, []string{"upstream", "target"}))
	checks := registerUpstreamHealth(m, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "portunus_upstream_health_checks_total",
		Help: "Active health probes, by upstream, target and result (success or failure).",
	}, []string{"upstream", "target", "result"}))
	ejections := registerUpstreamHealth(m, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "portunus_upstream_ejections_total",
		Help: "Passive health ejections, by upstream and target.",
	}, []string{"upstream", "target"}))
	breaker := registerUpstreamHealth(m, prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "portunus_upstream_breaker_state",
		Help: "Circuit breaker state per target: 0 closed, 1 open, 2 half-open.",
	}, []string{"upstream", "target"}))
	retry := registerUpstreamHealth(m, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "portunus_upstream_retries_total",
		Help: "Retried upstream attempts, by upstream and reason (connect_failure, reset, timeout, status).",
	}, []string{"upstream", "reason"}))
	hedges := registerUpstreamHealth(m, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "portunus_upstream_hedges_total",
		Help: "Hedged upstream attempts, by upstream.",
	}, []string{"upstream"}))
	if up == nil || checks == nil || ejections == nil || breaker == nil || retry == nil || hedges == nil {
		return nil // cannot happen with fixed, valid descriptors
	}
	return &UpstreamHealthRecorder{
		name: name, up: up, checks: checks, ejections: ejections, breaker: breaker,
		retry: retry, hedges: hedges.WithLabelValues(name), retryBy: map[string]prometheus.Counter{},
	}
}

// registerUpstreamHealth registers c, or returns the collector of the
// same family registered before (one per process, shared by every pool).
func registerUpstreamHealth[T prometheus.Collector](m *Metrics, c T) T {
	if err := m.Registry.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(T); ok {
				return existing
			}
		}
		var zero T
		return zero
	}
	return c
}

// TargetUp sets portunus_upstream_target_up.
func (r *UpstreamHealthRecorder) TargetUp(target string, up bool) {
	if r == nil {
		return
	}
	v := 0.0
	if up {
		v = 1
	}
	r.up.WithLabelValues(r.name, target).Set(v)
}

// HealthCheck counts one probe.
func (r *UpstreamHealthRecorder) HealthCheck(target string, ok bool) {
	if r == nil {
		return
	}
	result := "failure"
	if ok {
		result = "success"
	}
	r.checks.WithLabelValues(r.name, target, result).Inc()
}

// Ejected counts one ejection.
func (r *UpstreamHealthRecorder) Ejected(target string) {
	if r == nil {
		return
	}
	r.ejections.WithLabelValues(r.name, target).Inc()
}

// BreakerState sets portunus_upstream_breaker_state.
func (r *UpstreamHealthRecorder) BreakerState(target string, state int) {
	if r == nil {
		return
	}
	r.breaker.WithLabelValues(r.name, target).Set(float64(state))
}

// Retry counts one retry. Reasons come from the proxy's fixed set, so the
// label values stay bounded.
func (r *UpstreamHealthRecorder) Retry(reason string) {
	if r == nil {
		return
	}
	r.retryMu.Lock()
	c := r.retryBy[reason]
	if c == nil {
		c = r.retry.WithLabelValues(r.name, reason)
		r.retryBy[reason] = c
	}
	r.retryMu.Unlock()
	c.Inc()
}

// Hedge counts one hedged attempt.
func (r *UpstreamHealthRecorder) Hedge() {
	if r == nil {
		return
	}
	r.hedges.Inc()
}

// Forget drops the gauges of a target that left the pool (discovery, or a
// reload that dropped the pool), so a dashboard does not show it as down
// forever. Counters stay: they are totals.
func (r *UpstreamHealthRecorder) Forget(target string) {
	if r == nil {
		return
	}
	r.up.DeleteLabelValues(r.name, target)
	r.breaker.DeleteLabelValues(r.name, target)
}
