package ratelimit

import (
	"context"
	"log/slog"
	"net/http"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/portunus-gw/portunus/internal/config"
	"github.com/portunus-gw/portunus/internal/pipeline"
	"github.com/portunus-gw/portunus/internal/policy/override"
	"github.com/portunus-gw/portunus/internal/problem"
	"github.com/portunus-gw/portunus/internal/store"
)

const (
	// storeBackoff is how long the store is left alone after it failed:
	// requests meanwhile go to on_error at once instead of each waiting
	// for the store's own timeouts. The first request after it tries the
	// store again, which is how the limiter recovers by itself.
	storeBackoff = time.Second
	// logInterval bounds store-failure logging to one line per interval.
	logInterval = 10 * time.Second
	// inlineLimits is how many limits a request's decisions fit on the
	// stack; more (rare) allocate.
	inlineLimits = 4
	// keyBufSize is the stack buffer for one key; longer keys allocate.
	keyBufSize = 192
)

// limiter is one route's compiled rate limits.
type limiter struct {
	base       *limitSet
	consumers  map[string]*limitSet                         // overrides by consumer name
	dyn        *override.Cache[config.RateLimit, *limitSet] // runtime consumers' own limits; nil = none
	store      store.Store
	failClosed bool
	now        func() time.Time // never nil: Options.Now or time.Now
	clock      func() time.Time // Options.Now; nil: see decisionTime
	log        *slog.Logger
	fb         *fallback

	downUntil atomic.Int64 // unix ns until which the store is not tried
	lastLog   atomic.Int64 // unix ns of the last failure log line
}

// decision is one limit's outcome for one request.
type decision struct {
	d     store.Decision
	known bool // false: the store did not answer for this limit
}

// serve decides r. It writes the headers, and the refusal when refused,
// and reports whether the request may go on.
func (l *limiter) serve(w http.ResponseWriter, r *http.Request, s *pipeline.State) bool {
	set := l.base
	if s.Consumer != "" {
		if cs, ok := l.consumers[s.Consumer]; ok {
			set = cs
		} else if l.dyn != nil {
			if ds, ok := l.dyn.Get(s.Consumer); ok {
				set = ds
			}
		}
	}
	var inline [inlineLimits]decision
	decs := inline[:0]
	if len(set.limits) > inlineLimits {
		decs = make([]decision, len(set.limits))
	} else {
		decs = inline[:len(set.limits)]
	}

	ctx := r.Context()
	now := l.decisionTime(s)
	var st store.Store = l.store
	if du := l.downUntil.Load(); du != 0 && now.UnixNano() < du {
		st = nil // backing off: on_error decides without trying the store
	}
	refused := -1
	if st != nil {
		var err error
		refused, err = l.decide(ctx, st, set, r, s, decs, now)
		if err != nil {
			l.storeFailed(ctx, err)
			st = nil
		}
	}
	if st == nil {
		if l.failClosed {
			s.RateLimit = "error"
			s.ErrorCode = string(problem.UpstreamUnavailable)
			w.Header()[hdrRetryAfter] = retryAfterOne
			problem.Write(w, r, problem.Problem{
				Code: problem.UpstreamUnavailable, Status: http.StatusServiceUnavailable,
				Detail: "rate limit store unavailable", RequestID: s.RequestID,
			})
			return false
		}
		clear(decs)
		var err error
		refused, err = l.decide(ctx, l.fb.get(), set, r, s, decs, now)
		if err != nil { // the local memory store does not fail; be safe anyway
			refused = -1
		}
	}

	writeHeaders(w.Header(), set, decs, refused)
	if refused < 0 {
		s.RateLimit = "allowed"
		return true
	}
	lm := &set.limits[refused]
	s.RateLimit = lm.logLimited
	s.ErrorCode = string(problem.RateLimited)
	w.Header()[hdrRetryAfter] = []string{strconv.FormatInt(ceilSeconds(decs[refused].d.RetryAfter), 10)}
	problem.Write(w, r, problem.Problem{
		Code: problem.RateLimited, Detail: "rate limit " + strconv.Quote(lm.name) + " exceeded", RequestID: s.RequestID,
	})
	return false
}

var retryAfterOne = []string{"1"}

// decisionTime is the one clock reading a request's decisions share. With
// no injected clock it is the request's start plus the monotonic time
// since: a single monotonic read (cheaper than time.Now, which reads the
// wall clock too), and still the time of the decision. The start alone
// would not do: after a slow step before the limiter (a remote auth call)
// it lies in the past, and a decision dated in the past lets a bucket at
// rest refill early.
func (l *limiter) decisionTime(s *pipeline.State) time.Time {
	if l.clock != nil {
		return l.clock()
	}
	if !s.Start.IsZero() {
		return s.Start.Add(time.Since(s.Start))
	}
	return time.Now()
}

// decide takes from set's limits in st, shortest window first, stopping
// at the first refusal (whose index it returns; -1 when all allowed).
// The limits not reached are then peeked so the headers can list them.
//
// With the memory store the key is built on the stack and decided at now
// without allocating (Memory.AllowAt keeps no key); another store gets a
// copy through the Store interface and reads its own clock.
func (l *limiter) decide(ctx context.Context, st store.Store, set *limitSet, r *http.Request, s *pipeline.State, decs []decision, now time.Time) (int, error) {
	mem, _ := st.(*store.Memory)
	var kb [keyBufSize]byte
	refused := -1
	for _, i := range set.take {
		lm := &set.limits[i]
		key := lm.appendKey(kb[:0], r, s)
		n := 1
		if refused >= 0 {
			n = 0 // past a refusal: report, do not take
		}
		var d store.Decision
		var err error
		if mem != nil {
			d, err = mem.AllowAt(unsafe.String(unsafe.SliceData(key), len(key)), lm.sl, n, now)
		} else {
			d, err = st.Allow(ctx, string(key), lm.sl, n)
		}
		if err != nil {
			if refused >= 0 {
				continue // the decision is made; only a header is missing
			}
			return -1, err
		}
		decs[i] = decision{d: d, known: true}
		if n == 1 {
			lm.rec.Observe(d.Allowed)
			if !d.Allowed {
				refused = i
			}
		}
	}
	return refused, nil
}

// storeFailed starts the back-off and logs, at most once per interval.
// A request whose client went away says nothing about the store.
func (l *limiter) storeFailed(ctx context.Context, err error) {
	if ctx.Err() != nil {
		return
	}
	now := l.now().UnixNano()
	l.downUntil.Store(now + int64(storeBackoff))
	last := l.lastLog.Load()
	if now-last >= int64(logInterval) && l.lastLog.CompareAndSwap(last, now) {
		mode := "fail_open: the local limiter decides"
		if l.failClosed {
			mode = "fail_closed: answering 503"
		}
		l.log.Warn("rate limit store unavailable", "error", err, "on_error", mode)
	}
}

// fallback is the fail_open limiter: an in-memory store made on the first
// store failure, so a healthy gateway runs no extra goroutine. It is
// closed when its limiter is garbage collected (after a reload replaced
// the route), since the pipeline has no close hook.
type fallback struct {
	now  func() time.Time
	once sync.Once
	mu   sync.Mutex
	mem  *store.Memory
}

func (f *fallback) get() store.Store {
	f.once.Do(func() {
		m := store.NewMemory(store.MemoryOptions{Now: f.now})
		f.mu.Lock()
		f.mem = m
		f.mu.Unlock()
	})
	return f.mem
}

// attach closes f's memory store once l is unreachable.
func (f *fallback) attach(l *limiter) {
	runtime.AddCleanup(l, func(f *fallback) {
		f.mu.Lock()
		defer f.mu.Unlock()
		if f.mem != nil {
			_ = f.mem.Close()
		}
	}, f)
}
