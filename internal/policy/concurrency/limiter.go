package concurrency

import (
	"context"
	"fmt"
	"net/http"
	"net/netip"
	"sync"
	"time"

	"github.com/portunus-gw/portunus/internal/config"
	"github.com/portunus-gw/portunus/internal/pipeline"
	"github.com/portunus-gw/portunus/internal/problem"
	"github.com/portunus-gw/portunus/internal/proxy"
)

// defaultQueueTimeout applies when the config leaves queue_timeout at zero
// (config defaults normally fill it in).
const defaultQueueTimeout = time.Second

// consumerKey identifies who holds a slot for per_consumer_share: the
// consumer name, or the client address when anonymous. netip.Addr is
// comparable, so building a key allocates nothing.
type consumerKey struct {
	name string
	ip   netip.Addr
}

// usage is one consumer's share of the limiter: slots held and places
// queued. An entry exists only while one of them is non-zero.
type usage struct {
	inflight, queued int
}

// waiter is one queued request, linked in FIFO order.
type waiter struct {
	key        consumerKey
	ready      chan struct{} // receives once when granted; buffered so granting never blocks
	granted    bool          // set under Limiter.mu
	prev, next *waiter
}

// outcome is what acquire decided.
type outcome int

const (
	admitted outcome = iota
	refused          // no slot within the queue bounds or the timeout
	gone             // the client went away while queued
)

// Limiter is one route's concurrency limiter. It is carried across
// reloads while its config is unchanged, so in-flight counts and the
// adaptive limit survive; Close releases it.
type Limiter struct {
	route        string
	max          int
	queueCap     int
	queueTimeout time.Duration
	share        float64 // 0: no per-consumer bookkeeping
	queueShare   int     // places one consumer may hold in the queue (share > 0)

	mu         sync.Mutex
	limit      int // current limit: max, or the adaptive limit (1..max)
	inflight   int
	queued     int
	head, tail *waiter
	consumers  map[consumerKey]usage // share > 0 only
	ctl        *controller           // adaptive only; its fields are guarded by mu too

	closeOnce sync.Once
}

// options are the knobs tests turn; New uses the defaults.
type options struct {
	clock    clock
	interval time.Duration // adaptive sample window
	noLoop   bool          // do not start the controller goroutine (tests drive adjust)
}

// New builds the limiter for route.
func New(c config.Concurrency, route string) (*Limiter, error) {
	return newLimiter(c, route, options{})
}

func newLimiter(c config.Concurrency, route string, o options) (*Limiter, error) {
	switch {
	case c.Max < 1:
		return nil, errorf("max must be at least 1 (got %d)", c.Max)
	case c.Queue < 0:
		return nil, errorf("queue must not be negative (got %d)", c.Queue)
	case c.PerConsumerShare < 0 || c.PerConsumerShare > 1:
		return nil, errorf("per_consumer_share must be between 0 and 1 (got %g)", c.PerConsumerShare)
	case c.QueueTimeout < 0:
		return nil, errorf("queue_timeout must not be negative")
	}
	l := &Limiter{
		route:        route,
		max:          c.Max,
		limit:        c.Max,
		queueCap:     c.Queue,
		queueTimeout: time.Duration(c.QueueTimeout),
		share:        c.PerConsumerShare,
	}
	if l.queueTimeout == 0 {
		l.queueTimeout = defaultQueueTimeout
	}
	if l.share > 0 {
		l.queueShare = max(1, int(l.share*float64(l.queueCap)))
		l.consumers = make(map[consumerKey]usage, min(c.Max+c.Queue, 1024))
	}
	if c.Adaptive {
		if o.clock == nil {
			o.clock = realClock{}
		}
		if o.interval <= 0 {
			o.interval = sampleWindow
		}
		l.ctl = newController(o.clock, o.interval, c.Max)
		l.limit = l.ctl.startProbe(l.limit, true)
		if !o.noLoop {
			l.ctl.run(l)
		}
	}
	return l, nil
}

// Middleware returns the limiting middleware.
func (l *Limiter) Middleware() pipeline.Middleware {
	return func(next pipeline.Handler) pipeline.Handler {
		return func(w http.ResponseWriter, r *http.Request, s *pipeline.State) {
			key := l.keyOf(s)
			switch l.acquire(r.Context(), key) {
			case refused:
				s.ErrorCode = string(problem.UpstreamUnavailable)
				w.Header().Set("Retry-After", "1")
				problem.Write(w, r, problem.Problem{
					Code:      problem.UpstreamUnavailable,
					Status:    http.StatusServiceUnavailable,
					Detail:    "concurrency limit reached",
					RequestID: s.RequestID,
				})
				return
			case gone:
				// Nobody is left to read an answer; record it like the proxy does.
				s.ErrorCode = proxy.CodeClientClosed
				w.WriteHeader(proxy.StatusClientClosedRequest)
				return
			}
			var start time.Time
			if l.ctl != nil {
				start = l.ctl.clock.Now()
			}
			// Deferred so a panicking handler (http.ErrAbortHandler from an
			// aborted stream) still gives its slot back.
			defer l.release(key, start)
			next(w, r, s)
		}
	}
}

// Close stops background work (the adaptive controller). The limiter keeps
// working afterwards with a frozen limit, since requests of the snapshot
// that used it may still be in flight.
func (l *Limiter) Close() error {
	if l.ctl != nil {
		l.closeOnce.Do(func() { l.ctl.stop(l) })
	}
	return nil
}

// Limit returns the current limit (max unless adaptive).
func (l *Limiter) Limit() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.limit
}

// InFlight returns the number of requests holding a slot.
func (l *Limiter) InFlight() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.inflight
}

// Queued returns the number of requests waiting for a slot.
func (l *Limiter) Queued() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.queued
}

func (l *Limiter) keyOf(s *pipeline.State) consumerKey {
	if l.share == 0 {
		return consumerKey{}
	}
	if s.Consumer != "" {
		return consumerKey{name: s.Consumer}
	}
	return consumerKey{ip: s.ClientIP}
}

// consumerCap is how many slots one consumer may hold under limit.
func (l *Limiter) consumerCap() int {
	return max(1, int(l.share*float64(l.limit)))
}

// eligible says key may take a free slot now. Called with mu held.
func (l *Limiter) eligible(key consumerKey) bool {
	return l.share == 0 || l.consumers[key].inflight < l.consumerCap()
}

// take gives key a slot. Called with mu held.
func (l *Limiter) take(key consumerKey) {
	l.inflight++
	if l.share > 0 {
		u := l.consumers[key]
		u.inflight++
		l.consumers[key] = u
	}
	if l.ctl != nil && l.inflight > l.ctl.peak {
		l.ctl.peak = l.inflight
	}
}

// acquire admits the request, queues it, or refuses it.
//
// Invariant (kept by dispatch after every release and limit change): while
// a slot is free, no queued waiter is eligible for it. So a newcomer that
// finds a free slot and is within its share jumps no eligible waiter.
func (l *Limiter) acquire(ctx context.Context, key consumerKey) outcome {
	l.mu.Lock()
	var u usage // key's usage (share > 0), looked up once on the fast path
	if l.share > 0 {
		u = l.consumers[key]
	}
	if l.inflight < l.limit && (l.share == 0 || u.inflight < l.consumerCap()) {
		l.inflight++
		if l.share > 0 {
			u.inflight++
			l.consumers[key] = u
		}
		if l.ctl != nil && l.inflight > l.ctl.peak {
			l.ctl.peak = l.inflight
		}
		l.mu.Unlock()
		return admitted
	}
	if l.queued >= l.queueCap || (l.share > 0 && u.queued >= l.queueShare) {
		l.mu.Unlock()
		return refused
	}
	w := &waiter{key: key, ready: make(chan struct{}, 1)}
	l.push(w)
	l.mu.Unlock()

	timer := time.NewTimer(l.queueTimeout)
	defer timer.Stop()
	var why outcome
	select {
	case <-w.ready:
		return admitted
	case <-timer.C:
		why = refused
	case <-ctx.Done():
		why = gone
	}
	l.mu.Lock()
	if w.granted {
		// Granted while we were giving up: the slot is ours.
		l.mu.Unlock()
		if why == gone {
			l.release(key, time.Time{})
			return gone
		}
		return admitted
	}
	l.unlink(w)
	// Leaving may unblock nothing (we held no slot), so no dispatch.
	l.mu.Unlock()
	return why
}

// release gives key's slot back, records the latency sample of a request
// admitted at start (adaptive only; zero start records nothing) and hands
// free slots to eligible waiters.
func (l *Limiter) release(key consumerKey, start time.Time) {
	var now time.Time
	if l.ctl != nil && !start.IsZero() {
		now = l.ctl.clock.Now()
	}
	l.mu.Lock()
	l.inflight--
	if l.share > 0 {
		u := l.consumers[key]
		u.inflight--
		l.setUsage(key, u)
	}
	if !now.IsZero() {
		l.ctl.record(start, now.Sub(start))
	}
	l.dispatch()
	l.mu.Unlock()
}

// dispatch grants free slots to queued waiters in FIFO order, skipping
// those whose consumer is over its share. Called with mu held. Without
// fairness the head is always eligible, so this is O(granted).
func (l *Limiter) dispatch() {
	for w := l.head; w != nil && l.inflight < l.limit; {
		next := w.next
		if l.eligible(w.key) {
			l.unlink(w)
			l.take(w.key)
			w.granted = true
			w.ready <- struct{}{}
		}
		w = next
	}
}

// push appends w to the queue. Called with mu held.
func (l *Limiter) push(w *waiter) {
	w.prev = l.tail
	if l.tail != nil {
		l.tail.next = w
	} else {
		l.head = w
	}
	l.tail = w
	l.queued++
	if l.share > 0 {
		u := l.consumers[w.key]
		u.queued++
		l.consumers[w.key] = u
	}
}

// unlink removes w from the queue. Called with mu held.
func (l *Limiter) unlink(w *waiter) {
	if w.prev != nil {
		w.prev.next = w.next
	} else {
		l.head = w.next
	}
	if w.next != nil {
		w.next.prev = w.prev
	} else {
		l.tail = w.prev
	}
	w.prev, w.next = nil, nil
	l.queued--
	if l.share > 0 {
		u := l.consumers[w.key]
		u.queued--
		l.setUsage(w.key, u)
	}
}

// setUsage stores u, dropping the entry when it is empty so the map only
// holds consumers with work in the limiter.
func (l *Limiter) setUsage(key consumerKey, u usage) {
	if u.inflight == 0 && u.queued == 0 {
		delete(l.consumers, key)
		return
	}
	l.consumers[key] = u
}

func errorf(format string, a ...any) error { return fmt.Errorf(format, a...) }
