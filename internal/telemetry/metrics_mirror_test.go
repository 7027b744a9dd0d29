package telemetry

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestMirrorRecorder(t *testing.T) {
	t.Parallel()
	m := NewMetrics()
	a := m.Mirror("svc", "shadow")
	b := m.Mirror("other", "shadow") // second route: the family is shared
	if a == nil || b == nil {
		t.Fatal("Mirror returned nil")
	}
	a.Mirrored("sent")
	a.Mirrored("sent")
	a.Mirrored("failed")
	a.Mirrored("unknown") // not an outcome: ignored, no new series
	b.Mirrored("dropped")
	b.Mirrored("skipped")
	want := `
# HELP portunus_mirror_requests_total Requests copied to a shadow upstream, by route, shadow upstream and outcome: sent, failed (the shadow could not be reached or timed out; also counted as sent when it was), dropped (too many copies in flight) or skipped (body too large or of unknown length).
# TYPE portunus_mirror_requests_total counter
portunus_mirror_requests_total{outcome="dropped",route="other",upstream="shadow"} 1
portunus_mirror_requests_total{outcome="dropped",route="svc",upstream="shadow"} 0
portunus_mirror_requests_total{outcome="failed",route="other",upstream="shadow"} 0
portunus_mirror_requests_total{outcome="failed",route="svc",upstream="shadow"} 1
portunus_mirror_requests_total{outcome="sent",route="other",upstream="shadow"} 0
portunus_mirror_requests_total{outcome="sent",route="svc",upstream="shadow"} 2
portunus_mirror_requests_total{outcome="skipped",route="other",upstream="shadow"} 1
portunus_mirror_requests_total{outcome="skipped",route="svc",upstream="shadow"} 0
`
	if err := testutil.GatherAndCompare(m.Registry, strings.NewReader(want), "portunus_mirror_requests_total"); err != nil {
		t.Error(err)
	}
	var nilRec *MirrorRecorder
	nilRec.Mirrored("sent") // a nil recorder records nothing, without panicking
	var nilMetrics *Metrics
	if nilMetrics.Mirror("r", "u") != nil {
		t.Error("nil Metrics gave a recorder")
	}
}
