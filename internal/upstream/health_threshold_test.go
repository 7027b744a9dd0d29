package upstream

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/portunus-gw/portunus/internal/config"
)

// TestActiveHealthThresholds: the test answers every probe itself, one at
// a time, so the verdict after each is known exactly. With
// unhealthy_threshold 2 one failed probe leaves the target in rotation,
// a success in between starts the count over, two failures in a row take
// it out; with healthy_threshold 2 one passing probe does not bring it
// back, two do.
func TestActiveHealthThresholds(t *testing.T) {
	t.Parallel()
	arrived := make(chan struct{})
	answer := make(chan int)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case arrived <- struct{}{}:
		case <-r.Context().Done():
			return
		}
		select {
		case st := <-answer:
			w.WriteHeader(st)
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(srv.Close)
	p := newTestPool(t, config.Upstream{
		Targets: []config.Target{{URL: srv.URL}},
		HealthCheck: &config.HealthCheck{Path: "/healthz", Interval: config.Duration(5 * time.Millisecond),
			// Far longer than the test takes to answer a probe: the
			// verdict comes from the answers, never from a timeout.
			Timeout:          config.Duration(time.Minute),
			HealthyThreshold: 2, UnhealthyThreshold: 2, ExpectedStatus: "200-299"},
	})
	a := p.Targets()[0]
	if st := a.Status(); st.Health != HealthUnknown || p.Pick(nil) != a {
		t.Fatalf("before any probe: %+v; want unknown and in rotation", st)
	}
	p.Start()
	// Probes of a target are sequential: when probe n+1 reaches the
	// server, probe n has been fully recorded.
	next := func() {
		t.Helper()
		select {
		case <-arrived:
		case <-time.After(10 * time.Second):
			t.Fatal("no probe came")
		}
	}
	steps := []struct {
		status     int
		inRotation bool
	}{
		{500, true},  // 1 failure: still in
		{200, true},  // the failure count starts over
		{500, true},  // 1 failure in a row again
		{500, false}, // 2 in a row: out
		{200, false}, // 1 pass: still out
		{500, false}, // the pass count starts over
		{200, false}, // 1 pass in a row
		{200, true},  // 2 in a row: back
	}
	next()
	for i, step := range steps {
		answer <- step.status
		next()
		st := a.Status()
		if ok := step.status == 200; st.LastCheck == nil || st.LastCheck.OK != ok || st.LastCheck.Status != step.status {
			t.Fatalf("probe %d: last check %+v; want status %d", i+1, st.LastCheck, step.status)
		}
		picked := p.Pick(nil) == a
		if picked != step.inRotation || (st.Health == HealthUnhealthy) == step.inRotation {
			t.Fatalf("probe %d (%d): health %s, picked %v; want in rotation = %v", i+1, step.status, st.Health, picked, step.inRotation)
		}
	}
}
