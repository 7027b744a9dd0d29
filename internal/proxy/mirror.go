package proxy

import (
	"bytes"
	"context"
	"io"
	"math/rand/v2"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/portunus-gw/portunus/internal/pipeline"
	"github.com/portunus-gw/portunus/internal/upstream"
)

// Mirror defaults. A shadow is a test bed: its answers are thrown away,
// so the gateway spends on it only what it can afford to lose.
const (
	// DefaultMirrorTimeout bounds a whole mirrored call: long enough for
	// a realistic shadow, short enough that a hung shadow frees its slot
	// soon.
	DefaultMirrorTimeout = 5 * time.Second
	// DefaultMirrorMaxInFlight bounds concurrent mirrored calls per
	// route; beyond it copies are dropped (and counted), so a slow
	// shadow can never pile up goroutines and connections.
	DefaultMirrorMaxInFlight = 64
	// DefaultMirrorMaxBody is the largest request body that is mirrored,
	// buffered as the real request reads it. A request with a larger or
	// unknown-length body is not mirrored (counted as skipped).
	DefaultMirrorMaxBody = 64 << 10
)

// MirrorHeader marks a mirrored request, so a shadow (or its logs) can
// tell copies from real traffic and skip side effects.
const MirrorHeader = "X-Portunus-Mirror"

var valOne = []string{"1"}

// MirrorConfig configures a route's mirror.
type MirrorConfig struct {
	// Proxy is the route's proxy config with Pool set to the shadow
	// upstream: the copy is built exactly as the real request is (path
	// rewrite, header rules, X-Forwarded-*), for a shadow target.
	Proxy Config
	// Percent of requests copied, (0, 100].
	Percent float64
	// Timeout, MaxInFlight, MaxBody: 0 = the defaults above.
	Timeout     time.Duration
	MaxInFlight int
	MaxBody     int64
	// Observer is told each outcome the stats count (metrics); nil =
	// none.
	Observer MirrorObserver
}

// MirrorObserver learns each outcome a mirror counts in MirrorStats:
// "sent", "dropped", "skipped" or "failed" (a copy sent and then failed
// counts as both sent and failed, as in the stats).
type MirrorObserver interface {
	Mirrored(outcome string)
}

// Mirror copies a share of a route's requests to a shadow upstream,
// fire-and-forget: the copy never delays, changes or fails the client's
// request, and the shadow's answer is discarded.
type Mirror struct {
	h        *handler
	percent  float64
	timeout  time.Duration
	max      int64
	maxBody  int64
	inFlight atomic.Int64
	stats    struct{ sent, dropped, skipped, failed atomic.Int64 }
	obs      MirrorObserver
}

// MirrorStats are a mirror's counters since it was built.
type MirrorStats struct {
	// Sent copies (answered by the shadow or not).
	Sent int64
	// Dropped copies: MaxInFlight copies were already in flight.
	Dropped int64
	// Skipped requests whose body was too large or of unknown length.
	Skipped int64
	// Failed copies: the shadow could not be reached or timed out.
	Failed int64
}

// NewMirror builds the mirror for cfg.
func NewMirror(cfg MirrorConfig) *Mirror {
	m := &Mirror{
		h:       newHandler(cfg.Proxy),
		percent: cfg.Percent,
		timeout: cfg.Timeout,
		max:     int64(cfg.MaxInFlight),
		maxBody: cfg.MaxBody,
		obs:     cfg.Observer,
	}
	if m.timeout <= 0 {
		m.timeout = DefaultMirrorTimeout
	}
	if m.max <= 0 {
		m.max = DefaultMirrorMaxInFlight
	}
	if m.maxBody <= 0 {
		m.maxBody = DefaultMirrorMaxBody
	}
	return m
}

// Stats returns the mirror's counters.
func (m *Mirror) Stats() MirrorStats {
	return MirrorStats{Sent: m.stats.sent.Load(), Dropped: m.stats.dropped.Load(), Skipped: m.stats.skipped.Load(), Failed: m.stats.failed.Load()}
}

// count adds one to c and tells the observer.
func (m *Mirror) count(c *atomic.Int64, outcome string) {
	c.Add(1)
	if m.obs != nil {
		m.obs.Mirrored(outcome)
	}
}

// Upstream names the shadow upstream.
func (m *Mirror) Upstream() string { return m.h.pool.Name() }

// Percent is the share of requests copied.
func (m *Mirror) Percent() float64 { return m.percent }

// Middleware wraps the route's action.
func (m *Mirror) Middleware() pipeline.Middleware {
	return func(next pipeline.Handler) pipeline.Handler {
		return func(w http.ResponseWriter, r *http.Request, s *pipeline.State) {
			if m.percent < 100 && rand.Float64()*100 >= m.percent {
				next(w, r, s)
				return
			}
			m.serve(next, w, r, s)
		}
	}
}

func (m *Mirror) serve(next pipeline.Handler, w http.ResponseWriter, r *http.Request, s *pipeline.State) {
	hasBody := r.Body != nil && r.Body != http.NoBody && r.ContentLength != 0
	if hasBody && (r.ContentLength < 0 || r.ContentLength > m.maxBody) {
		m.count(&m.stats.skipped, "skipped")
		next(w, r, s)
		return
	}
	if m.inFlight.Add(1) > m.max {
		m.inFlight.Add(-1)
		m.count(&m.stats.dropped, "dropped")
		next(w, r, s)
		return
	}
	t := m.h.pool.Pick(s)
	if t == nil {
		m.inFlight.Add(-1)
		m.count(&m.stats.failed, "failed")
		next(w, r, s)
		return
	}
	// Built now, from the request as the action sees it; nothing of r is
	// touched once the copy is sent (r is not ours after the handler).
	out := new(http.Request)
	var sink discardWriter
	if !m.h.outbound(out, &sink, r, s, t) {
		m.inFlight.Add(-1)
		m.count(&m.stats.failed, "failed")
		next(w, r, s)
		return
	}
	out.Header[MirrorHeader] = valOne
	if !hasBody {
		out.Body, out.ContentLength = http.NoBody, 0
		go m.send(out, t)
		next(w, r, s)
		return
	}
	// The body is copied as the real request reads it, and the copy is
	// sent once the action is done, only if the whole body was read.
	tee := &teeBody{rc: r.Body, max: m.maxBody}
	r.Body = tee
	defer func() {
		r.Body = tee.rc
		body, ok := tee.copied(r.ContentLength)
		if !ok {
			m.inFlight.Add(-1)
			m.count(&m.stats.skipped, "skipped")
			return
		}
		out.Body = io.NopCloser(bytes.NewReader(body))
		out.ContentLength = int64(len(body))
		go m.send(out, t)
	}()
	next(w, r, s)
}

// send makes the mirrored call and throws the answer away.
func (m *Mirror) send(out *http.Request, t *upstream.Target) {
	defer m.inFlight.Add(-1)
	m.count(&m.stats.sent, "sent")
	ctx, cancel := context.WithTimeout(context.Background(), m.timeout)
	defer cancel()
	t.Begin()
	defer t.End()
	res, err := m.h.rt.RoundTrip(out.WithContext(ctx))
	if err != nil {
		m.count(&m.stats.failed, "failed")
		return
	}
	_, _ = io.CopyN(io.Discard, res.Body, 1<<20)
	res.Body.Close()
}

// teeBody keeps a copy of what the real request reads, up to max bytes.
// The transport may still be reading when the action returns, hence the
// lock.
type teeBody struct {
	rc  io.ReadCloser
	max int64
	mu  sync.Mutex
	buf []byte
	cut bool // more than max bytes were read
}

func (b *teeBody) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	if n > 0 {
		b.mu.Lock()
		if int64(len(b.buf)+n) <= b.max {
			b.buf = append(b.buf, p[:n]...)
		} else {
			b.cut = true
		}
		b.mu.Unlock()
	}
	return n, err
}

func (b *teeBody) Close() error { return b.rc.Close() }

// copied returns the body read so far when it is whole (want bytes).
func (b *teeBody) copied(want int64) ([]byte, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.cut || int64(len(b.buf)) != want {
		return nil, false
	}
	return b.buf, true
}
