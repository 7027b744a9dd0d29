package upstreams

import (
	"fmt"
	"io"
	"net/http"
	"sync/atomic"
	"testing"
	"time"
)

// matrixConfig: one upstream of two targets (a healthy one and the one
// under test) with retries and passive health, one route.
func matrixConfig(good, bad, extraRoute string) string {
	return fmt.Sprintf(`
listeners: [{ address: "127.0.0.1:0" }]
observability: { access_log: { path: "off" } }
upstreams:
  - name: svc
    targets: [{ url: %q }, { url: %q }]
    timeouts: { connect: 500ms, response_header: 300ms }
    retries: { attempts: 2, on: [connect_failure, reset, timeout, "502", "503", "504"], min_per_second: 1000 }
    passive_health: { consecutive_failures: 3, ejection_time: 1s, max_ejected_percent: 50 }
routes:
  - name: svc
    match: { path_prefix: /svc }
    upstream: svc
    timeout: 5s
%s`, good, bad, extraRoute)
}

const (
	workers  = 8
	requests = 160
)

// TestFaultMatrix: for each way a target can fail, idempotent traffic
// under concurrent load sees no failure while the other target is
// healthy, and the failing target is ejected (it gets far fewer requests
// than its round-robin half).
func TestFaultMatrix(t *testing.T) {
	t.Parallel()
	rows := []struct {
		name string
		bad  func(t *testing.T) *target
		// counted: the bad target can count the requests reaching it.
		counted bool
	}{
		{"killed", killedTarget, false},
		{"hung", hungTarget, true},
		{"reset", resetTarget, true},
		{"5xx", func(t *testing.T) *target {
			var st atomic.Int64
			st.Store(503)
			return statusTarget(t, &st)
		}, true},
	}
	for _, row := range rows {
		t.Run(row.name, func(t *testing.T) {
			t.Parallel()
			good := healthy(t, "good")
			bad := row.bad(t)
			base := startGateway(t, matrixConfig(good.url, bad.url, ""))
			failed, ex := load(t, base, workers, requests)
			if failed != 0 {
				t.Fatalf("%d of %d idempotent requests failed (e.g. %s); want 0 while a healthy target exists", failed, requests, ex)
			}
			// Every request reached the healthy target (more than once
			// only when, on a loaded machine, it was itself too slow
			// for the 300ms response_header timeout and was retried).
			if got := good.hits.Load(); got < requests {
				t.Errorf("healthy target answered %d requests, want all %d", got, requests)
			}
			if row.counted {
				// Round robin alone would send about half the first
				// attempts (80) to the bad target; ejected after 3
				// consecutive failures, it sees only a few per ejection
				// period.
				if got := bad.hits.Load(); got == 0 || got > requests/4 {
					t.Errorf("bad target got %d of %d requests: want some, then ejection", got, requests)
				}
			}
		})
	}
}

// TestSlowTargetHedged: a slow target (answers after 2 s) on a route
// with hedging: every client gets an answer, from the fast target, long
// before the slow one would have answered.
func TestSlowTargetHedged(t *testing.T) {
	t.Parallel()
	const slowDelay = 2 * time.Second
	fast := healthy(t, "fast")
	slow := slowTarget(t, slowDelay)
	base := startGateway(t, fmt.Sprintf(`
listeners: [{ address: "127.0.0.1:0" }]
observability: { access_log: { path: "off" } }
upstreams:
  - name: svc
    targets: [{ url: %q }, { url: %q }]
    retries: { attempts: 1, min_per_second: 1000 }
routes:
  - name: svc
    match: { path_prefix: /svc }
    upstream: svc
    hedge: { after: 30ms, max: 1 }
`, slow.url, fast.url))
	failed, ex, longest := loadTimed(t, base, workers, 80)
	if failed != 0 {
		t.Fatalf("%d requests failed (e.g. %s)", failed, ex)
	}
	// Not a speed assertion: the slow target holds every request for
	// 2 s, so a request that waited for it took at least that long.
	if longest >= slowDelay {
		t.Fatalf("a request took %v: it waited for the slow target", longest)
	}
	if slow.hits.Load() == 0 {
		t.Fatal("the slow target got no first attempt: nothing was hedged")
	}
}

// TestEjectedTargetComesBack: a target answering 503 is ejected; once it
// answers 200 again and its ejection ends, it gets traffic again.
func TestEjectedTargetComesBack(t *testing.T) {
	t.Parallel()
	good := healthy(t, "good")
	var st atomic.Int64
	st.Store(503)
	bad := statusTarget(t, &st)
	base := startGateway(t, matrixConfig(good.url, bad.url, ""))
	if failed, ex := load(t, base, workers, 60); failed != 0 {
		t.Fatalf("%d failed (e.g. %s)", failed, ex)
	}
	ejectedAt := bad.hits.Load()
	st.Store(200)
	client := &http.Client{Timeout: waitLimit}
	defer client.CloseIdleConnections()
	poll(t, "the healed target to get traffic again", func() bool {
		res, err := client.Get(base + "/svc/item")
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		if res.StatusCode != 200 {
			t.Fatalf("status %d", res.StatusCode)
		}
		return bad.hits.Load() > ejectedAt+3
	})
}
