package gateway

import (
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// TestMirrorOutcomesReported: a route's mirror counts its copies in
// portunus_mirror_requests_total, by route, shadow upstream and outcome.
func TestMirrorOutcomesReported(t *testing.T) {
	t.Parallel()
	up := newUpstream(t, "up")
	shadow := newUpstream(t, "shadow")
	g := startGateway(t, `
listeners: [{ address: "127.0.0.1:0" }]
observability: { access_log: { path: "off" } }
upstreams:
  - { name: up, targets: [{ url: "`+up.URL+`" }] }
  - { name: shadow, targets: [{ url: "`+shadow.URL+`" }] }
routes:
  - { name: svc, match: { path_prefix: /p }, upstream: up, mirror: { upstream: shadow, percent: 100 } }
`)
	for range 3 {
		resp := g.do("GET", "/p", nil, "")
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("status %d", resp.StatusCode)
		}
	}
	metrics := func() string {
		w := httptest.NewRecorder()
		g.rt.Metrics().Handler().ServeHTTP(w, httptest.NewRequest("GET", "/metrics", nil))
		b, _ := io.ReadAll(w.Body)
		return string(b)
	}
	// Copies are sent in the background: wait for them to be counted.
	want := `portunus_mirror_requests_total{outcome="sent",route="svc",upstream="shadow"} 3`
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(metrics(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("metrics lack %s:\n%s", want, grepLines(metrics(), "portunus_mirror"))
		}
		time.Sleep(10 * time.Millisecond)
	}
	if text := metrics(); !strings.Contains(text, `portunus_mirror_requests_total{outcome="dropped",route="svc",upstream="shadow"} 0`) {
		t.Errorf("the dropped series is not there from the start:\n%s", grepLines(text, "portunus_mirror"))
	}
}
