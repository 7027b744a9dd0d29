package proxy_test

import (
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/portunus-gw/portunus/internal/config"
	"github.com/portunus-gw/portunus/internal/pipeline"
	"github.com/portunus-gw/portunus/internal/proxy"
)

// deadURL is an address nothing listens on: a listener opened and closed.
func deadURL(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return "http://" + addr
}

// counting answers status with body and counts the requests it got (and
// the bytes of their bodies).
func counting(t *testing.T, status int, body string) (url string, hits *atomic.Int64, bodies chan string) {
	t.Helper()
	hits = new(atomic.Int64)
	bodies = make(chan string, 256)
	srv := newUpstreamFunc(t, func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		hits.Add(1)
		select {
		case bodies <- string(b):
		default:
		}
		w.WriteHeader(status)
		io.WriteString(w, body)
	})
	return srv.URL, hits, bodies
}

func retries(attempts int, on ...string) *config.Retries {
	// A generous budget floor: these tests count attempts, not budgets.
	return &config.Retries{Attempts: attempts, On: on, MinPerSecond: 1000}
}

func TestRetryConnectFailureGoesToAnotherTarget(t *testing.T) {
	t.Parallel()
	good, hits, _ := counting(t, 200, "ok")
	pool := newPool(t, config.Upstream{Retries: retries(2)}, deadURL(t), good)
	front := startFront(t, proxy.New(proxy.Config{Pool: pool, Timeout: 10 * time.Second}), frontOpts{})
	const n = 20
	for i := range n {
		res, body := do(t, front, mustRequest(t, "GET", front.URL+"/x", nil))
		if res.StatusCode != 200 || body != "ok" {
			t.Fatalf("request %d: %d %q, want 200 ok (the dead target is retried elsewhere)", i, res.StatusCode, body)
		}
	}
	if got := hits.Load(); got != n {
		t.Fatalf("good target got %d requests, want %d", got, n)
	}
}

func TestRetryPostBodyAfterConnectFailure(t *testing.T) {
	t.Parallel()
	// A POST is not idempotent, but a refused connection never sent it:
	// the retry carries the whole body to the other target.
	good, _, bodies := counting(t, 201, "made")
	pool := newPool(t, config.Upstream{Retries: retries(1)}, deadURL(t), good)
	front := startFront(t, proxy.New(proxy.Config{Pool: pool}), frontOpts{})
	for i := range 6 {
		payload := strings.Repeat("p", 10000+i)
		res, body := do(t, front, mustRequest(t, "POST", front.URL+"/x", strings.NewReader(payload)))
		if res.StatusCode != 201 || body != "made" {
			t.Fatalf("request %d: %d %q", i, res.StatusCode, body)
		}
		if got := <-bodies; got != payload {
			t.Fatalf("request %d: upstream got %d body bytes, want %d", i, len(got), len(payload))
		}
	}
}

func TestRetryStatusIdempotentOnly(t *testing.T) {
	t.Parallel()
	bad, badHits, _ := counting(t, 503, "bad")
	good, goodHits, _ := counting(t, 200, "ok")
	pool := newPool(t, config.Upstream{Retries: retries(1, "503")}, bad, good)
	front := startFront(t, proxy.New(proxy.Config{Pool: pool}), frontOpts{})
	for i := range 10 {
		res, body := do(t, front, mustRequest(t, "GET", front.URL+"/x", nil))
		if res.StatusCode != 200 || body != "ok" {
			t.Fatalf("GET %d: %d %q, want the retried 200", i, res.StatusCode, body)
		}
	}
	if badHits.Load() == 0 || goodHits.Load() != 10 {
		t.Fatalf("bad %d good %d hits: the 503s were not retried", badHits.Load(), goodHits.Load())
	}
	// A POST that reached the target and got a 503 may have had effects:
	// it is not repeated, and the upstream's answer reaches the client.
	saw503 := false
	for range 10 {
		before := badHits.Load() + goodHits.Load()
		res, body := do(t, front, mustRequest(t, "POST", front.URL+"/x", strings.NewReader("x")))
		if after := badHits.Load() + goodHits.Load(); after != before+1 {
			t.Fatalf("a POST reached %d targets, want 1", after-before)
		}
		if res.StatusCode == 503 {
			saw503 = true
			if body != "bad" {
				t.Fatalf("POST 503 body %q, want the upstream's", body)
			}
		}
	}
	if !saw503 {
		t.Fatal("no POST went to the 503 target in 10 round-robin requests")
	}
}

func TestRetryExhaustedGivesLastAnswer(t *testing.T) {
	t.Parallel()
	a, aHits, _ := counting(t, 503, "a")
	b, bHits, _ := counting(t, 503, "b")
	pool := newPool(t, config.Upstream{Retries: retries(3, "503")}, a, b)
	front := startFront(t, proxy.New(proxy.Config{Pool: pool}), frontOpts{})
	res, body := do(t, front, mustRequest(t, "GET", front.URL+"/x", nil))
	if res.StatusCode != 503 || (body != "a" && body != "b") {
		t.Fatalf("%d %q, want the last upstream 503", res.StatusCode, body)
	}
	if got := aHits.Load() + bHits.Load(); got != 4 {
		t.Fatalf("%d attempts, want 1 + 3 retries", got)
	}
}

func TestNoRetriesKeepsErrorMapping(t *testing.T) {
	t.Parallel()
	pool := newPool(t, config.Upstream{}, deadURL(t))
	front := startFront(t, proxy.New(proxy.Config{Pool: pool}), frontOpts{})
	res, body := do(t, front, mustRequest(t, "GET", front.URL+"/x", nil))
	if res.StatusCode != 502 || !strings.Contains(body, "upstream-unavailable") {
		t.Fatalf("%d %s, want 502 upstream-unavailable", res.StatusCode, body)
	}
}

func TestRetryRespectsBudget(t *testing.T) {
	t.Parallel()
	a, aHits, _ := counting(t, 503, "a")
	b, bHits, _ := counting(t, 503, "b")
	// 1 retry per second over the 10 s window, 0% of traffic: at most 10
	// retries however many requests fail.
	pool := newPool(t, config.Upstream{Retries: &config.Retries{Attempts: 2, On: []string{"503"}, MinPerSecond: 1, BudgetPercent: 1}}, a, b)
	front := startFront(t, proxy.New(proxy.Config{Pool: pool}), frontOpts{})
	const n = 40
	for range n {
		res, _ := do(t, front, mustRequest(t, "GET", front.URL+"/x", nil))
		if res.StatusCode != 503 {
			t.Fatalf("status %d", res.StatusCode)
		}
	}
	extra := aHits.Load() + bHits.Load() - n
	if extra <= 0 || extra > 20 {
		t.Fatalf("%d retries for %d failing requests; want some, bounded by the budget", extra, n)
	}
}

func TestRetryTimeoutAnswers504(t *testing.T) {
	t.Parallel()
	// Both targets hang: the route deadline (retries included) ends the
	// request with 504, not a hang.
	hang := func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(waitLimit):
		}
	}
	a := newUpstreamFunc(t, hang)
	b := newUpstreamFunc(t, hang)
	pool := newPool(t, config.Upstream{Retries: retries(2), Timeouts: config.UpstreamTimeouts{ResponseHeader: config.Duration(100 * time.Millisecond)}}, a.URL, b.URL)
	front := startFront(t, proxy.New(proxy.Config{Pool: pool, Timeout: 2 * time.Second}), frontOpts{})
	res, body := do(t, front, mustRequest(t, "GET", front.URL+"/x", nil))
	if res.StatusCode != 504 {
		t.Fatalf("%d %s, want 504", res.StatusCode, body)
	}
}

func TestHedgeAnswersFromFastTarget(t *testing.T) {
	t.Parallel()
	cancelled := make(chan struct{}, 64)
	slow := newUpstreamFunc(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
			cancelled <- struct{}{}
		case <-time.After(waitLimit):
			io.WriteString(w, "slow")
		}
	})
	fast := newUpstreamFunc(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "fast") })
	pool := newPool(t, config.Upstream{Retries: &config.Retries{MinPerSecond: 1000}}, slow.URL, fast.URL)
	states := make(chan pipeline.State, 64)
	front := startFront(t, proxy.New(proxy.Config{Pool: pool, HedgeAfter: 20 * time.Millisecond, HedgeMax: 1}), frontOpts{states: states})
	const n = 10
	for i := range n {
		res, body := do(t, front, mustRequest(t, "GET", front.URL+"/x", nil))
		if res.StatusCode != 200 || body != "fast" {
			t.Fatalf("request %d: %d %q, want the fast answer", i, res.StatusCode, body)
		}
		if s := <-states; s.Target != fast.URL {
			t.Fatalf("request %d: State.Target %q, want the fast one", i, s.Target)
		}
	}
	// Round robin sent about half the first attempts to the slow target;
	// every one of them was cancelled once the hedge won.
	select {
	case <-cancelled:
	case <-timeAfter():
		t.Fatal("the slow target never saw its request cancelled")
	}
}

func TestHedgeSkipsRequestsWithBody(t *testing.T) {
	t.Parallel()
	var hits atomic.Int64
	slow := newUpstreamFunc(t, func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		time.Sleep(100 * time.Millisecond)
		io.WriteString(w, "one")
	})
	pool := newPool(t, config.Upstream{Retries: &config.Retries{MinPerSecond: 1000}}, slow.URL, slow.URL+"/")
	front := startFront(t, proxy.New(proxy.Config{Pool: pool, HedgeAfter: time.Millisecond, HedgeMax: 3}), frontOpts{})
	res, body := do(t, front, mustRequest(t, "PUT", front.URL+"/x", strings.NewReader("data")))
	if res.StatusCode != 200 || body != "one" || hits.Load() != 1 {
		t.Fatalf("%d %q after %d attempts; a request with a body is never hedged", res.StatusCode, body, hits.Load())
	}
}
