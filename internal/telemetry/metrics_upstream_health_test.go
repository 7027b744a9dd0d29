package telemetry

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// exerciseUpstreamHealth gives every upstream health family a child, for
// the golden list.
func exerciseUpstreamHealth(r *UpstreamHealthRecorder) {
	r.TargetUp("http://t", true)
	r.HealthCheck("http://t", true)
	r.Ejected("http://t")
	r.BreakerState("http://t", 0)
	r.Retry("timeout")
	r.Hedge()
}

func TestUpstreamHealthRecorder(t *testing.T) {
	t.Parallel()
	m := NewMetrics()
	a := m.UpstreamHealth("a")
	b := m.UpstreamHealth("b") // second pool: families shared, not re-registered
	if a == nil || b == nil {
		t.Fatal("UpstreamHealth returned nil")
	}
	a.TargetUp("http://x", false)
	a.HealthCheck("http://x", false)
	a.HealthCheck("http://x", false)
	a.HealthCheck("http://x", true)
	a.Ejected("http://x")
	a.BreakerState("http://x", 2)
	a.Retry("timeout")
	a.Retry("timeout")
	b.Retry("status")
	b.Hedge()

	want := `
# HELP portunus_upstream_health_checks_total Active health probes, by upstream, target and result (success or failure).
# TYPE portunus_upstream_health_checks_total counter
portunus_upstream_health_checks_total{result="failure",target="http://x",upstream="a"} 2
portunus_upstream_health_checks_total{result="success",target="http://x",upstream="a"} 1
# HELP portunus_upstream_retries_total Retried upstream attempts, by upstream and reason (connect_failure, reset, timeout, status).
# TYPE portunus_upstream_retries_total counter
portunus_upstream_retries_total{reason="status",upstream="b"} 1
portunus_upstream_retries_total{reason="timeout",upstream="a"} 2
# HELP portunus_upstream_target_up 1 while the target passes its active health checks (or has none), else 0.
# TYPE portunus_upstream_target_up gauge
portunus_upstream_target_up{target="http://x",upstream="a"} 0
# HELP portunus_upstream_breaker_state Circuit breaker state per target: 0 closed, 1 open, 2 half-open.
# TYPE portunus_upstream_breaker_state gauge
portunus_upstream_breaker_state{target="http://x",upstream="a"} 2
# HELP portunus_upstream_hedges_total Hedged upstream attempts, by upstream.
# TYPE portunus_upstream_hedges_total counter
portunus_upstream_hedges_total{upstream="a"} 0
portunus_upstream_hedges_total{upstream="b"} 1
# HELP portunus_upstream_ejections_total Passive health ejections, by upstream and target.
# TYPE portunus_upstream_ejections_total counter
portunus_upstream_ejections_total{target="http://x",upstream="a"} 1
`
	if err := testutil.GatherAndCompare(m.Registry, strings.NewReader(want),
		"portunus_upstream_health_checks_total", "portunus_upstream_retries_total", "portunus_upstream_target_up",
		"portunus_upstream_breaker_state", "portunus_upstream_hedges_total", "portunus_upstream_ejections_total"); err != nil {
		t.Error(err)
	}

	// A target that leaves the pool loses its gauges, keeps its counters.
	a.Forget("http://x")
	if n, err := testutil.GatherAndCount(m.Registry, "portunus_upstream_target_up"); err != nil || n != 0 {
		t.Errorf("after Forget: %d target_up series (%v); want 0", n, err)
	}
	if n, err := testutil.GatherAndCount(m.Registry, "portunus_upstream_ejections_total"); err != nil || n != 1 {
		t.Errorf("after Forget: %d ejection series (%v); want 1", n, err)
	}

	var nilRec *UpstreamHealthRecorder // metrics off
	nilRec.TargetUp("t", true)
	nilRec.Retry("x")
	nilRec.Forget("t")
	if (*Metrics)(nil).UpstreamHealth("a") != nil {
		t.Error("nil Metrics gave a recorder")
	}
}
