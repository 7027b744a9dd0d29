package telemetry

import "github.com/prometheus/client_golang/prometheus"

// MirrorRecorder counts one route's request mirroring in
// portunus_mirror_requests_total{route,upstream,outcome}, outcome being
// sent, failed, dropped or skipped as in the admin API's mirror stats.
// The family is process-wide, so counts survive reloads. A nil recorder
// records nothing.
type MirrorRecorder struct {
	sent, failed, dropped, skipped prometheus.Counter
}

// Mirror returns the recorder of the mirror on route, copying to the
// shadow upstream. Call it when compiling, not per request.
func (m *Metrics) Mirror(route, upstream string) *MirrorRecorder {
	if m == nil {
		return nil
	}
	vec := registerOrGet(m, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "portunus_mirror_requests_total",
		Help: "Requests copied to a shadow upstream, by route, shadow upstream and outcome: sent, failed (the shadow could not be reached or timed out; also counted as sent when it was), dropped (too many copies in flight) or skipped (body too large or of unknown length).",
	}, []string{"route", "upstream", "outcome"}))
	if vec == nil {
		return nil
	}
	return &MirrorRecorder{
		sent:    vec.WithLabelValues(route, upstream, "sent"),
		failed:  vec.WithLabelValues(route, upstream, "failed"),
		dropped: vec.WithLabelValues(route, upstream, "dropped"),
		skipped: vec.WithLabelValues(route, upstream, "skipped"),
	}
}

// Mirrored counts one outcome (proxy.MirrorObserver).
func (r *MirrorRecorder) Mirrored(outcome string) {
	if r == nil {
		return
	}
	switch outcome {
	case "sent":
		r.sent.Inc()
	case "failed":
		r.failed.Inc()
	case "dropped":
		r.dropped.Inc()
	case "skipped":
		r.skipped.Inc()
	}
}
