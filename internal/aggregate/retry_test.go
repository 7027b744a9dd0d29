package aggregate

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/portunus-gw/portunus/internal/config"
	"github.com/portunus-gw/portunus/internal/upstream"
)

// retryPool builds a pool named name over urls with the retries block rc.
func retryPool(t *testing.T, name string, rc *config.Retries, urls ...string) *upstream.Pool {
	t.Helper()
	cfg := config.Upstream{Name: name, Retries: rc}
	for _, u := range urls {
		cfg.Targets = append(cfg.Targets, config.Target{URL: u})
	}
	pool, err := upstream.NewPool(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pool.Close() })
	return pool
}

// realServer starts an upstream server closed at cleanup.
func realServer(t *testing.T, h http.HandlerFunc) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(func() {
		srv.CloseClientConnections()
		srv.Close()
	})
	return srv
}

// refusedURL is the URL of a server that was closed: dialing it is
// refused.
func refusedURL(t *testing.T) string {
	t.Helper()
	srv := httptest.NewServer(http.NotFoundHandler())
	u := srv.URL
	srv.Close()
	return u
}

// counting answers with h and counts the calls it got.
func counting(n *atomic.Int64, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		h(w, r)
	}
}

func unavailable(w http.ResponseWriter, r *http.Request) {
	w.WriteHeader(http.StatusServiceUnavailable)
}

// A backend whose first target fails is answered through a retry on the
// other target: each way the retries policy names (connection refused,
// an answer status), and only with a retries policy.
func TestRetryGoesToAnotherTarget(t *testing.T) {
	t.Parallel()
	var good, bad atomic.Int64
	ok := realServer(t, counting(&good, jsonAnswer(`{"id":1}`)))
	failing := realServer(t, counting(&bad, unavailable))
	cases := []struct {
		desc    string
		retries *config.Retries
		first   string
	}{
		{"connection refused", &config.Retries{Attempts: 1}, refusedURL(t)},
		{"503", &config.Retries{Attempts: 1, On: []string{"503"}}, failing.URL},
	}
	for _, tc := range cases {
		good.Store(0)
		bad.Store(0)
		// Round robin over two targets: some calls start on the failing
		// target (without retries, half of them: see below); every call
		// must still succeed.
		pool := retryPool(t, "users", tc.retries, tc.first, ok.URL)
		p := plan(t, config.Aggregate{Backends: []config.AggregateBackend{{Upstream: "users", Path: "/u", As: "user"}}},
			map[string]*upstream.Pool{"users": pool})
		for k := range 4 {
			w := serve(p, context.Background(), "GET", "/")
			if w.Code != 200 {
				t.Fatalf("%s: call %d: status %d (%s); want 200 through a retry", tc.desc, k, w.Code, w.Body)
			}
			if got := decodeBody(t, w)["user"]; got == nil {
				t.Fatalf("%s: call %d: body %s lacks user", tc.desc, k, w.Body)
			}
		}
		if good.Load() != 4 {
			t.Errorf("%s: the good target got %d calls; want 4", tc.desc, good.Load())
		}
		if tc.first == failing.URL && bad.Load() == 0 {
			t.Errorf("%s: the failing target got no call; want round robin to start some calls there", tc.desc)
		}
	}

	// Without a retries block, the calls that start on the refused
	// target fail.
	pool := retryPool(t, "users", nil, refusedURL(t), ok.URL)
	p := plan(t, config.Aggregate{Backends: []config.AggregateBackend{{Upstream: "users", Path: "/u", As: "user"}}},
		map[string]*upstream.Pool{"users": pool})
	failed := 0
	for range 4 {
		if w := serve(p, context.Background(), "GET", "/"); w.Code == http.StatusBadGateway {
			failed++
		}
	}
	if failed != 2 {
		t.Errorf("without retries %d of 4 calls failed; want 2", failed)
	}
}

// Statuses the policy does not name, and conditions it does not list, are
// not retried.
func TestRetryFollowsThePolicy(t *testing.T) {
	t.Parallel()
	var n atomic.Int64
	srv := realServer(t, counting(&n, func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusInternalServerError) }))
	pool := retryPool(t, "users", &config.Retries{Attempts: 2, On: []string{"503", "connect_failure"}}, srv.URL)
	p := plan(t, config.Aggregate{Backends: []config.AggregateBackend{{Upstream: "users", Path: "/u", As: "user"}}},
		map[string]*upstream.Pool{"users": pool})
	w := serve(p, context.Background(), "GET", "/")
	if w.Code != http.StatusBadGateway || !strings.Contains(w.Body.String(), "answered 500") {
		t.Errorf("status %d body %s; want 502 naming the 500", w.Code, w.Body)
	}
	if n.Load() != 1 {
		t.Errorf("the backend got %d calls; want 1 (500 is not in retries.on)", n.Load())
	}
}

// Retries draw from the pool's retry budget: once it is spent, calls get
// no more retries. With min_per_second 1 and budget_percent 1 the
// ten-second window allows 10 retries for the few calls made here.
func TestRetryBudgetCapsRetries(t *testing.T) {
	t.Parallel()
	var n atomic.Int64
	srv := realServer(t, counting(&n, unavailable))
	pool := retryPool(t, "users", &config.Retries{Attempts: 3, On: []string{"503"}, BudgetPercent: 1, MinPerSecond: 1}, srv.URL)
	p := plan(t, config.Aggregate{Backends: []config.AggregateBackend{{Upstream: "users", Path: "/u", As: "user"}}},
		map[string]*upstream.Pool{"users": pool})
	const calls = 8
	for k := range calls {
		w := serve(p, context.Background(), "GET", "/")
		if w.Code != http.StatusBadGateway {
			t.Fatalf("call %d: status %d; want 502", k, w.Code)
		}
		if k == 0 && !strings.Contains(w.Body.String(), "after 4 attempts") {
			t.Errorf("first call's detail %s; want it to say after 4 attempts", w.Body)
		}
	}
	// Without the budget: 8 × 4 = 32 attempts. With it: 8 first
	// attempts and 10 retries.
	if got := n.Load(); got != calls+10 {
		t.Errorf("the backend got %d attempts; want %d (%d calls + a budget of 10 retries)", got, calls+10, calls)
	}
}

// A retry whose backoff would end after the fan-out deadline is not made:
// the failure is reported at once. The plan's clock jumps 400ms per
// reading against a 1s timeout, so the deadline has passed on that clock
// when the 503 is in.
func TestRetryNeverBacksOffPastTheDeadline(t *testing.T) {
	t.Parallel()
	var n atomic.Int64
	srv := realServer(t, counting(&n, unavailable))
	pool := retryPool(t, "users", &config.Retries{Attempts: 3, On: []string{"503"}}, srv.URL)
	base := time.Now()
	var ticks atomic.Int64
	p, err := Compile(&config.Aggregate{Timeout: config.Duration(time.Second), Backends: []config.AggregateBackend{{Upstream: "users", Path: "/u", As: "user"}}},
		Options{Pools: map[string]*upstream.Pool{"users": pool}, Now: func() time.Time {
			return base.Add(time.Duration(ticks.Add(1)) * 400 * time.Millisecond)
		}})
	if err != nil {
		t.Fatal(err)
	}
	w := serve(p, context.Background(), "GET", "/")
	if w.Code != http.StatusBadGateway || !strings.Contains(w.Body.String(), "answered 503") {
		t.Errorf("status %d body %s; want 502 answered 503", w.Code, w.Body)
	}
	if n.Load() != 1 {
		t.Errorf("the backend got %d attempts; want 1 (no time left for a retry)", n.Load())
	}
}

// A retry runs under the fan-out deadline: when it passes, the retried
// attempt is cancelled (the backend sees it), the call ends with 504, and
// no goroutine is left (TestMain's goleak check).
func TestRetryNeverOutlivesTheDeadline(t *testing.T) {
	t.Parallel()
	var n atomic.Int64
	cancelled := make(chan string, 4)
	hang := waitCancelled(cancelled, "retry")
	srv := realServer(t, func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1) == 1 {
			unavailable(w, r)
			return
		}
		hang(w, r)
	})
	pool := retryPool(t, "users", &config.Retries{Attempts: 3, On: []string{"503"}}, srv.URL)
	p := plan(t, config.Aggregate{Timeout: config.Duration(time.Second), Backends: []config.AggregateBackend{{Upstream: "users", Path: "/u", As: "user"}}},
		map[string]*upstream.Pool{"users": pool})
	w := serve(p, context.Background(), "GET", "/")
	if w.Code != http.StatusGatewayTimeout || !strings.Contains(w.Body.String(), "user") {
		t.Errorf("status %d body %s; want 504 naming user", w.Code, w.Body)
	}
	select {
	case <-cancelled:
	case <-time.After(10 * time.Second):
		t.Fatal("the retried attempt was never cancelled")
	}
	if n.Load() != 2 {
		t.Errorf("the backend got %d attempts; want 2 (the 503, then the retry the deadline cut)", n.Load())
	}
}
