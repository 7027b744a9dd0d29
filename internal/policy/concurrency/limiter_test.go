package concurrency

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/portunus-gw/portunus/internal/config"
	"github.com/portunus-gw/portunus/internal/pipeline"
	"github.com/portunus-gw/portunus/internal/proxy"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// waitFor polls cond until it holds; the deadline is only a guard against
// a hang, never an assertion about speed.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func mustNew(t *testing.T, c config.Concurrency) *Limiter {
	t.Helper()
	l, err := New(c, "test")
	if err != nil {
		t.Fatalf("New(%+v): %v", c, err)
	}
	t.Cleanup(func() { _ = l.Close() })
	return l
}

// gate is a handler that reports each entering request's id and blocks
// until released; release lets one in-flight request (any) finish.
type gate struct {
	entered chan string
	release chan struct{}
	byID    map[string]chan struct{} // ids released by their own channel; read-only
}

func newGate() *gate {
	return &gate{entered: make(chan string, 64), release: make(chan struct{})}
}

func (g *gate) handler(w http.ResponseWriter, r *http.Request, s *pipeline.State) {
	id := r.Header.Get("X-Id")
	g.entered <- id
	if c, ok := g.byID[id]; ok {
		<-c
	} else {
		<-g.release
	}
	w.WriteHeader(http.StatusOK)
}

// result is one finished request.
type result struct {
	id   string
	code int
	rec  *httptest.ResponseRecorder
}

// fire runs one request through h in a goroutine.
func fire(ctx context.Context, h pipeline.Handler, id, consumer string, out chan<- result) {
	go func() {
		r := httptest.NewRequest(http.MethodGet, "/x", nil).WithContext(ctx)
		r.Header.Set("X-Id", id)
		rec := httptest.NewRecorder()
		h(rec, r, &pipeline.State{Consumer: consumer, ClientIP: netip.MustParseAddr("192.0.2.1"), RequestID: "rid-" + id})
		out <- result{id: id, code: rec.Code, rec: rec}
	}()
}

func TestNewRejectsInvalid(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		c    config.Concurrency
	}{
		{"zero max", config.Concurrency{Max: 0}},
		{"negative queue", config.Concurrency{Max: 1, Queue: -1}},
		{"share above one", config.Concurrency{Max: 1, PerConsumerShare: 1.5}},
		{"negative share", config.Concurrency{Max: 1, PerConsumerShare: -0.1}},
		{"negative timeout", config.Concurrency{Max: 1, QueueTimeout: config.Duration(-time.Second)}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if l, err := New(tc.c, "r"); err == nil {
				_ = l.Close()
				t.Fatalf("New(%+v) = nil error; want one", tc.c)
			}
		})
	}
}

func TestStaticCapQueueAndRefusal(t *testing.T) {
	t.Parallel()
	l := mustNew(t, config.Concurrency{Max: 3, Queue: 3, QueueTimeout: config.Duration(time.Minute)})
	g := newGate()
	h := l.Middleware()(g.handler)
	out := make(chan result, 16)

	for _, id := range []string{"a", "b", "c"} {
		fire(context.Background(), h, id, "", out)
	}
	for range 3 {
		<-g.entered
	}
	if got := l.InFlight(); got != 3 {
		t.Fatalf("in flight = %d; want 3", got)
	}
	// Queue three, one at a time, so their arrival order is known.
	for i, id := range []string{"q1", "q2", "q3"} {
		fire(context.Background(), h, id, "", out)
		waitFor(t, "queue to grow", func() bool { return l.Queued() == i+1 })
	}
	// The queue is full: the next one is refused at once.
	fire(context.Background(), h, "refused", "", out)
	res := <-out
	if res.id != "refused" || res.code != http.StatusServiceUnavailable {
		t.Fatalf("got %s %d; want refused 503", res.id, res.code)
	}
	if got := res.rec.Header().Get("Retry-After"); got != "1" {
		t.Errorf("Retry-After = %q; want 1", got)
	}
	if got := res.rec.Header().Get("Content-Type"); got != "application/problem+json" {
		t.Errorf("Content-Type = %q; want application/problem+json", got)
	}
	body := res.rec.Body.String()
	for _, want := range []string{"urn:portunus:problem:upstream-unavailable", "concurrency limit reached", "rid-refused"} {
		if !strings.Contains(body, want) {
			t.Errorf("body %s lacks %q", body, want)
		}
	}
	select {
	case id := <-g.entered:
		t.Fatalf("%s entered while every slot was held", id)
	default:
	}
	if got := l.InFlight(); got != 3 {
		t.Fatalf("in flight = %d; want 3", got)
	}

	// Each finished request lets the queue's head in: FIFO.
	for _, want := range []string{"q1", "q2", "q3"} {
		g.release <- struct{}{}
		<-out
		if got := <-g.entered; got != want {
			t.Fatalf("admitted %s; want %s (FIFO)", got, want)
		}
		if got := l.InFlight(); got != 3 {
			t.Fatalf("in flight = %d; want 3", got)
		}
	}
	for range 3 {
		g.release <- struct{}{}
		if res := <-out; res.code != http.StatusOK {
			t.Errorf("%s: status %d; want 200", res.id, res.code)
		}
	}
	if got, q := l.InFlight(), l.Queued(); got != 0 || q != 0 {
		t.Fatalf("in flight %d, queued %d; want 0, 0", got, q)
	}
}

func TestNoQueueRefusesAtOnce(t *testing.T) {
	t.Parallel()
	l := mustNew(t, config.Concurrency{Max: 1})
	g := newGate()
	h := l.Middleware()(g.handler)
	out := make(chan result, 4)
	fire(context.Background(), h, "a", "", out)
	<-g.entered
	fire(context.Background(), h, "b", "", out)
	if res := <-out; res.id != "b" || res.code != http.StatusServiceUnavailable {
		t.Fatalf("got %s %d; want b 503", res.id, res.code)
	}
	g.release <- struct{}{}
	if res := <-out; res.code != http.StatusOK {
		t.Fatalf("a: status %d; want 200", res.code)
	}
}

func TestQueueTimeoutRefuses(t *testing.T) {
	t.Parallel()
	l := mustNew(t, config.Concurrency{Max: 1, Queue: 1, QueueTimeout: config.Duration(20 * time.Millisecond)})
	g := newGate()
	h := l.Middleware()(g.handler)
	out := make(chan result, 4)
	fire(context.Background(), h, "a", "", out)
	<-g.entered
	fire(context.Background(), h, "b", "", out)
	res := <-out
	if res.id != "b" || res.code != http.StatusServiceUnavailable {
		t.Fatalf("got %s %d; want b 503 after the queue timeout", res.id, res.code)
	}
	if got := l.Queued(); got != 0 {
		t.Errorf("queued = %d; want 0 after the timeout", got)
	}
	g.release <- struct{}{}
	<-out
}

func TestCancelledWaiterLeavesQueue(t *testing.T) {
	t.Parallel()
	l := mustNew(t, config.Concurrency{Max: 1, Queue: 2, QueueTimeout: config.Duration(time.Minute)})
	g := newGate()
	h := l.Middleware()(g.handler)
	out := make(chan result, 4)
	fire(context.Background(), h, "a", "", out)
	<-g.entered
	ctx, cancel := context.WithCancel(context.Background())
	fire(ctx, h, "gone", "", out)
	fire(context.Background(), h, "stays", "", out)
	waitFor(t, "two waiters", func() bool { return l.Queued() == 2 })
	cancel()
	res := <-out
	if res.id != "gone" || res.code != proxy.StatusClientClosedRequest {
		t.Fatalf("got %s %d; want gone %d", res.id, res.code, proxy.StatusClientClosedRequest)
	}
	if got := l.Queued(); got != 1 {
		t.Fatalf("queued = %d; want 1 once the client went away", got)
	}
	g.release <- struct{}{}
	<-out
	if got := <-g.entered; got != "stays" {
		t.Fatalf("admitted %s; want stays", got)
	}
	g.release <- struct{}{}
	<-out
}

// TestCancelOverRealSocket: a client that hangs up while queued behind a
// real server leaves the queue, asserted by queue length.
func TestCancelOverRealSocket(t *testing.T) {
	t.Parallel()
	l := mustNew(t, config.Concurrency{Max: 1, Queue: 4, QueueTimeout: config.Duration(time.Minute)})
	g := newGate()
	h := l.Middleware()(g.handler)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h(w, r, &pipeline.State{})
	}))
	defer srv.Close()
	client := srv.Client()

	done := make(chan error, 2)
	get := func(ctx context.Context, id string) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL, nil)
		req.Header.Set("X-Id", id)
		resp, err := client.Do(req)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		done <- err
	}
	go get(context.Background(), "holder")
	<-g.entered
	ctx, cancel := context.WithCancel(context.Background())
	go get(ctx, "waiter")
	waitFor(t, "the waiter to queue", func() bool { return l.Queued() == 1 })
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("waiter: err = %v; want context.Canceled", err)
	}
	waitFor(t, "the queue to empty", func() bool { return l.Queued() == 0 })
	g.release <- struct{}{}
	if err := <-done; err != nil {
		t.Errorf("holder: %v", err)
	}
	waitFor(t, "the slot to free", func() bool { return l.InFlight() == 0 })
	client.CloseIdleConnections()
}

func TestPanicReleasesSlot(t *testing.T) {
	t.Parallel()
	l := mustNew(t, config.Concurrency{Max: 1})
	h := l.Middleware()(func(http.ResponseWriter, *http.Request, *pipeline.State) { panic(http.ErrAbortHandler) })
	func() {
		defer func() {
			if v := recover(); v != http.ErrAbortHandler {
				t.Errorf("recovered %v; want http.ErrAbortHandler", v)
			}
		}()
		h(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/", nil), &pipeline.State{})
	}()
	if got := l.InFlight(); got != 0 {
		t.Fatalf("in flight = %d after a panic; want 0", got)
	}
}

func TestFairnessNoisyConsumer(t *testing.T) {
	t.Parallel()
	l := mustNew(t, config.Concurrency{Max: 4, Queue: 8, QueueTimeout: config.Duration(time.Minute), PerConsumerShare: 0.5})
	g := newGate()
	g.byID = map[string]chan struct{}{"noisy": make(chan struct{}), "quiet1": make(chan struct{}), "quiet2": make(chan struct{}), "quiet3": make(chan struct{})}
	h := l.Middleware()(g.handler)
	out := make(chan result, 64)

	// 20 parallel requests from one consumer: 2 slots (0.5 × 4), 4 queue
	// places (0.5 × 8), the rest refused, although slots are free.
	const noisy = 20
	for range noisy {
		fire(context.Background(), h, "noisy", "noisy", out)
	}
	for range noisy - 2 - 4 {
		if res := <-out; res.code != http.StatusServiceUnavailable {
			t.Fatalf("noisy: status %d; want 503", res.code)
		}
	}
	<-g.entered
	<-g.entered
	waitFor(t, "noisy waiters", func() bool { return l.Queued() == 4 })
	if got := l.InFlight(); got != 2 {
		t.Fatalf("in flight = %d; want 2 (the noisy consumer's share)", got)
	}

	// The quiet consumer gets the free slots at once.
	fire(context.Background(), h, "quiet1", "quiet", out)
	fire(context.Background(), h, "quiet2", "quiet", out)
	for range 2 {
		if got := <-g.entered; got != "quiet1" && got != "quiet2" {
			t.Fatalf("admitted %s; want the quiet consumer", got)
		}
	}
	// A third quiet request queues behind the noisy waiters; when a quiet
	// request finishes it is served first, since they are over their share.
	fire(context.Background(), h, "quiet3", "quiet", out)
	waitFor(t, "quiet3 to queue", func() bool { return l.Queued() == 5 })
	close(g.byID["quiet1"])
	if res := <-out; res.id != "quiet1" {
		t.Fatalf("finished %s; want quiet1", res.id)
	}
	if got := <-g.entered; got != "quiet3" {
		t.Fatalf("admitted %s; want quiet3 ahead of the noisy waiters", got)
	}
	if got := l.Queued(); got != 4 {
		t.Fatalf("queued = %d; want the 4 noisy waiters", got)
	}
	// Drain everything.
	close(g.byID["noisy"])
	close(g.byID["quiet2"])
	close(g.byID["quiet3"])
	for range 2 + 4 + 2 {
		<-out
	}
	waitFor(t, "drain", func() bool { return l.InFlight() == 0 && l.Queued() == 0 })
	l.mu.Lock()
	n := len(l.consumers)
	l.mu.Unlock()
	if n != 0 {
		t.Fatalf("consumer entries = %d after draining; want 0 (bounded memory)", n)
	}
}

func TestFairnessKeysAnonymousByIP(t *testing.T) {
	t.Parallel()
	l := mustNew(t, config.Concurrency{Max: 2, PerConsumerShare: 0.5})
	g := newGate()
	h := l.Middleware()(g.handler)
	run := func(ip string) int {
		rec := make(chan int, 1)
		go func() {
			w := httptest.NewRecorder()
			h(w, httptest.NewRequest(http.MethodGet, "/", nil), &pipeline.State{ClientIP: netip.MustParseAddr(ip)})
			rec <- w.Code
		}()
		select {
		case <-g.entered:
			return 0 // admitted; finishes on release
		case code := <-rec:
			return code
		}
	}
	if got := run("192.0.2.1"); got != 0 {
		t.Fatalf("first client: status %d; want admitted", got)
	}
	if got := run("192.0.2.1"); got != http.StatusServiceUnavailable {
		t.Fatalf("same client again: status %d; want 503 (over its share)", got)
	}
	if got := run("192.0.2.2"); got != 0 {
		t.Fatalf("another client: status %d; want admitted", got)
	}
	g.release <- struct{}{}
	g.release <- struct{}{}
	waitFor(t, "drain", func() bool { return l.InFlight() == 0 })
}

// TestConcurrentChurn hammers acquire/release/cancel from many goroutines
// and checks the bookkeeping ends balanced and the cap was never exceeded.
func TestConcurrentChurn(t *testing.T) {
	t.Parallel()
	const limit = 5
	l := mustNew(t, config.Concurrency{Max: limit, Queue: 10, QueueTimeout: config.Duration(5 * time.Millisecond), PerConsumerShare: 0.6})
	var mu sync.Mutex
	cur, peak := 0, 0
	h := l.Middleware()(func(w http.ResponseWriter, r *http.Request, s *pipeline.State) {
		mu.Lock()
		cur++
		peak = max(peak, cur)
		mu.Unlock()
		time.Sleep(time.Millisecond)
		mu.Lock()
		cur--
		mu.Unlock()
	})
	var wg sync.WaitGroup
	for i := range 40 {
		wg.Go(func() {
			for j := range 50 {
				ctx, cancel := context.WithCancel(context.Background())
				if j%7 == 0 {
					cancel()
				}
				r := httptest.NewRequest(http.MethodGet, "/", nil).WithContext(ctx)
				h(httptest.NewRecorder(), r, &pipeline.State{Consumer: string(rune('a' + i%4))})
				cancel()
			}
		})
	}
	wg.Wait()
	if peak > limit {
		t.Errorf("peak in flight = %d; want <= %d", peak, limit)
	}
	if got, q := l.InFlight(), l.Queued(); got != 0 || q != 0 {
		t.Errorf("in flight %d, queued %d; want 0, 0", got, q)
	}
	l.mu.Lock()
	n := len(l.consumers)
	l.mu.Unlock()
	if n != 0 {
		t.Errorf("consumer entries = %d; want 0", n)
	}
}
