// Package quota enforces calendar quotas: at most `limit` requests per day,
// ISO week or month in a configured time zone, counted per consumer, client
// address, route or request header in the shared store (memory or Redis).
//
// Each quota's counter key carries the start of the current period, so a
// quota resets exactly on the boundary, whichever instance sees the first
// request of the new period, and the old counter simply expires (period end
// plus slack). A request counts once it is admitted by every quota of the
// route; a refused one takes its increments back, so hammering an
// exhausted quota does not push the count further. Responses carry the
// draft-ietf-httpapi-ratelimit-headers structured fields for each quota,
// appended to any the rate limiter already set.
//
// A consumer's own quotas (consumers[].quotas, or a runtime consumer's)
// replace the route's quotas for that consumer, on routes that have
// quotas, as its own rate_limits replace the route's rate limits. Their
// counters are kept apart from the route's: the key names the consumer
// (see compile), so an override's quota-0 never shares a count with the
// route's quota-0.
package quota

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"net/textproto"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/portunus-gw/portunus/internal/config"
	"github.com/portunus-gw/portunus/internal/pipeline"
	"github.com/portunus-gw/portunus/internal/policy/override"
	"github.com/portunus-gw/portunus/internal/problem"
	"github.com/portunus-gw/portunus/internal/store"
)

// expirySlack keeps a counter alive past its period's end, so an instance
// whose clock lags a little still finds it rather than starting a new one.
const expirySlack = time.Hour

// storeBackoff is how long the store is left alone after it failed: a
// dead Redis must not add a dial timeout to every request. Meanwhile
// on_error decides, as it does for the failed request.
const storeBackoff = time.Second

// Options configure one route's quotas.
type Options struct {
	Route  string
	Quotas []config.Quota
	// Consumers are per-consumer overrides (consumers[].quotas) by
	// consumer name: they replace Quotas for that consumer.
	Consumers map[string][]config.Quota
	// Lookup finds the own quotas of a consumer Consumers does not name
	// (runtime consumers, which change without a reload); nil = none. It
	// is called per request and must not block.
	Lookup  func(consumer string) []config.Quota
	Store   store.Store
	OnError string
	// Now is the clock; nil = time.Now.
	Now func() time.Time
}

// byKind is what a quota is counted per.
type byKind uint8

const (
	byIP byKind = iota
	byConsumer
	byRoute
	byHeader
)

// compiled is one quota, resolved at construction.
type compiled struct {
	limit  int64
	period period
	loc    *time.Location
	by     byKind
	header string // canonical header name for byHeader
	name   string // quota-N: the name in the RateLimit fields
	// logLimited is State.RateLimit when this quota refuses, in the rate
	// limiter's form.
	logLimited string
	prefix     string // see compile
}

type limiter struct {
	quotas     []compiled                                // the route's
	consumers  map[string][]compiled                     // overrides by consumer name
	dyn        *override.Cache[config.Quota, []compiled] // runtime consumers' own quotas; nil = none
	st         store.Store
	failClosed bool
	now        func() time.Time
	// downUntil is when the store may be tried again after a failure
	// (unix nanoseconds on now's clock); 0 = up.
	downUntil atomic.Int64
}

// New returns the middleware. It checks the quotas again (period, time
// zone, by) so a bad value is reported at compile time, not per request.
func New(o Options) (pipeline.Middleware, error) {
	qs, err := compile(o.Route, "", o.Quotas)
	if err != nil {
		return nil, err
	}
	l := &limiter{quotas: qs, st: o.Store, failClosed: o.OnError == "fail_closed", now: o.Now}
	if l.now == nil {
		l.now = time.Now
	}
	if len(qs) == 0 {
		// Overrides replace a route's quotas; a route without any has
		// nothing to replace, so it stays unmetered for every consumer.
		return func(next pipeline.Handler) pipeline.Handler { return next }, nil
	}
	for name, cqs := range o.Consumers {
		if len(cqs) == 0 {
			continue
		}
		c, err := compile(o.Route, name, cqs)
		if err != nil {
			return nil, fmt.Errorf("consumer %q: %w", name, err)
		}
		if l.consumers == nil {
			l.consumers = make(map[string][]compiled, len(o.Consumers))
		}
		l.consumers[name] = c
	}
	if o.Lookup != nil {
		route := o.Route
		l.dyn = &override.Cache[config.Quota, []compiled]{
			Lookup:  o.Lookup,
			Compile: func(consumer string, qs []config.Quota) ([]compiled, error) { return compile(route, consumer, qs) },
		}
	}
	return l.middleware, nil
}

// set is the quotas that apply to consumer: its own, or the route's.
func (l *limiter) set(consumer string) []compiled {
	if consumer == "" {
		return l.quotas
	}
	if qs, ok := l.consumers[consumer]; ok {
		return qs
	}
	if l.dyn != nil {
		if qs, ok := l.dyn.Get(consumer); ok {
			return qs
		}
	}
	return l.quotas
}

// compile resolves a list of quotas. consumer is "" for the route's own,
// else the consumer whose override this is.
//
// Keys look like, for the route's own quotas and for a consumer's,
//
//	quota:<len(route)>:<route>:<N>:<period><start>:<value>
//	quota:<len(route)>:<route>:c<len(consumer)>:<consumer>:<N>:<period><start>:<value>
//
// N is the quota's index in its list, value what it counts by (as in the
// rate limiter's keys). Names are length prefixed, and what follows the
// route is a digit for the route's own quotas and "c" for an override, so
// no route, consumer or index can produce another one's key; the route's
// keys are unchanged by overrides existing. The consumer is in the key as
// the rate limiter puts it in an override's buckets: the override's counts
// are its own, whatever its `by`.
func compile(route, consumer string, quotas []config.Quota) ([]compiled, error) {
	owner := strconv.Itoa(len(route)) + ":" + route + ":"
	if consumer != "" {
		owner += "c" + strconv.Itoa(len(consumer)) + ":" + consumer + ":"
	}
	out := make([]compiled, 0, len(quotas))
	for i, q := range quotas {
		c := compiled{limit: int64(q.Limit), name: "quota-" + strconv.Itoa(i)}
		c.logLimited = "limited:" + c.name
		if q.Limit < 1 {
			return nil, fmt.Errorf("quota %d: limit must be at least 1", i)
		}
		p, err := parsePeriod(q.Period)
		if err != nil {
			return nil, fmt.Errorf("quota %d: %w", i, err)
		}
		c.period = p
		tz := q.TimeZone
		if tz == "" {
			tz = "UTC"
		}
		if c.loc, err = time.LoadLocation(tz); err != nil {
			return nil, fmt.Errorf("quota %d: time_zone: %w", i, err)
		}
		switch by := q.By; {
		case by == "" || by == "ip":
			c.by = byIP
		case by == "consumer":
			c.by = byConsumer
		case by == "route":
			c.by = byRoute
		case strings.HasPrefix(by, "header:") && len(by) > len("header:"):
			c.by, c.header = byHeader, http.CanonicalHeaderKey(by[len("header:"):])
		default:
			return nil, fmt.Errorf("quota %d: unknown by %q (want consumer, ip, route or header:NAME)", i, by)
		}
		// The route name is length prefixed, as in rate-limit keys, so no
		// two routes' keys can meet; the period letter keeps a day and a
		// month quota at the same index apart if a reload changes the period.
		c.prefix = "quota:" + owner + strconv.Itoa(i) + ":" + string(c.period.tag())
		out = append(out, c)
	}
	return out, nil
}

// subject is who a request is counted for.
type subject struct {
	consumer string
	ip       netip.Addr
	header   http.Header
}

// appendWho appends the by value of the counter key; ok is false when the
// subject does not say (only possible through the admin lookup). It
// follows the rate limiter (internal/policy/ratelimit): an anonymous
// request to a by-consumer quota, or one without the header of a
// by-header quota, is counted per client address; IPv6 addresses count per
// /64, so rotating addresses inside one's own block gets no fresh quota;
// header values are hashed (SHA-256, 128 bits) so the key stays short
// whatever a client sends.
func (c *compiled) appendWho(b []byte, s subject) (_ []byte, ok bool) {
	switch c.by {
	case byRoute:
		return append(b, 'r'), true
	case byConsumer:
		if s.consumer != "" {
			b = append(b, "c:"...)
			return append(b, s.consumer...), true
		}
	case byHeader:
		if vs := s.header[c.header]; len(vs) > 0 {
			sum := sha256.Sum256([]byte(vs[0]))
			b = append(b, "h:"...)
			return hex.AppendEncode(b, sum[:16]), true
		}
	}
	if !s.ip.IsValid() {
		return b, false
	}
	b = append(b, "i:"...)
	ip := s.ip.Unmap()
	if ip.Is6() {
		p, _ := ip.WithZone("").Prefix(64)
		return p.AppendTo(b), true
	}
	return ip.AppendTo(b), true
}

// key is the counter key of s for the period starting at start; ok as
// for appendWho.
func (c *compiled) key(start time.Time, s subject) (_ string, ok bool) {
	var buf [160]byte
	b := append(buf[:0], c.prefix...)
	b = strconv.AppendInt(b, start.Unix(), 10)
	b = append(b, ':')
	b, ok = c.appendWho(b, s)
	return string(b), ok
}

// counted remembers one increment, to report it and to take it back.
type counted struct {
	key   string
	n     int64
	local bool // counted in the local fallback, not the store
	start time.Time
	end   time.Time
}

func (l *limiter) middleware(next pipeline.Handler) pipeline.Handler {
	return func(w http.ResponseWriter, r *http.Request, s *pipeline.State) {
		now := l.now()
		sub := subject{consumer: s.Consumer, ip: s.ClientIP, header: r.Header}
		qs := l.set(s.Consumer)
		var buf [4]counted
		done := buf[:0]
		ctx := r.Context()
		for i := range qs {
			q := &qs[i]
			start, end := q.period.bounds(now, q.loc)
			key, _ := q.key(start, sub)
			c := counted{key: key, start: start, end: end}
			n, local, err := l.incr(ctx, c.key, 1, now, end.Add(expirySlack))
			if err != nil { // fail_closed
				l.rollback(done, now)
				// As the rate limiter answers: the store is a dependency
				// that is down, not a client over its limit.
				s.RateLimit = "error"
				s.ErrorCode = string(problem.UpstreamUnavailable)
				w.Header().Set("Retry-After", "1")
				problem.Write(w, r, problem.Problem{Code: problem.UpstreamUnavailable, Status: http.StatusServiceUnavailable,
					Detail: "quota store unavailable", RequestID: s.RequestID})
				return
			}
			c.n, c.local = n, local
			done = append(done, c)
			if n > q.limit {
				l.rollback(done, now)
				writeFields(w.Header(), qs, done, now, i)
				retry := ceilSeconds(end.Sub(now))
				w.Header().Set("Retry-After", strconv.FormatInt(retry, 10))
				s.RateLimit = q.logLimited
				s.ErrorCode = string(problem.RateLimited)
				problem.Write(w, r, problem.Problem{Code: problem.RateLimited, Detail: "quota exhausted", RequestID: s.RequestID})
				return
			}
		}
		writeFields(w.Header(), qs, done, now, -1)
		next(w, r, s)
	}
}

var errStoreDown = errors.New("quota: store unavailable (backing off)")

// incr counts in the store; when the store fails, fail_open counts locally
// and fail_closed reports the error.
func (l *limiter) incr(ctx context.Context, key string, n int64, now, expireAt time.Time) (v int64, local bool, err error) {
	if l.st != nil {
		if now.UnixNano() >= l.downUntil.Load() {
			v, err = l.st.Incr(ctx, key, n, expireAt)
			if err == nil {
				return v, false, nil
			}
			// A client that went away says nothing about the store.
			if ctx.Err() == nil {
				l.downUntil.Store(now.Add(storeBackoff).UnixNano())
			}
		} else {
			err = errStoreDown
		}
		if l.failClosed || ctx.Err() != nil {
			return 0, false, err
		}
	}
	v, ok := fallback.incr(key, n, now, expireAt)
	if !ok {
		return 0, true, nil // full: admitted uncounted (see local.go)
	}
	return v, true, nil
}

// rollback takes back the increments of a refused request. It uses a
// context of its own: the request's may be the reason it stops.
func (l *limiter) rollback(done []counted, now time.Time) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	for _, c := range done {
		if c.local || l.st == nil {
			fallback.incr(c.key, -1, now, c.end.Add(expirySlack))
			continue
		}
		_, _ = l.st.Incr(ctx, c.key, -1, c.end.Add(expirySlack))
	}
}

// Canonical header keys, so the map is indexed without re-canonicalising.
var (
	hdrPolicy    = textproto.CanonicalMIMEHeaderKey("RateLimit-Policy")
	hdrRateLimit = textproto.CanonicalMIMEHeaderKey("RateLimit")
)

// writeFields appends one RateLimit-Policy and one RateLimit item per
// counted quota of qs; refused is the index of the quota that refused (its
// remaining is 0), -1 when admitted. Both values are built in one buffer
// and become one string and one two-element slice.
func writeFields(h http.Header, qs []compiled, done []counted, now time.Time, refused int) {
	if len(done) == 0 {
		return
	}
	var buf [512]byte
	b := buf[:0]
	for i, c := range done {
		q := &qs[i]
		if i > 0 {
			b = append(b, ", "...)
		}
		b = append(b, '"')
		b = append(b, q.name...)
		b = append(b, `";q=`...)
		b = strconv.AppendInt(b, q.limit, 10)
		b = append(b, ";w="...)
		b = strconv.AppendInt(b, int64(c.end.Sub(c.start)/time.Second), 10)
	}
	polEnd := len(b)
	for i, c := range done {
		q := &qs[i]
		left := q.limit - c.n
		if i == refused || left < 0 {
			left = 0
		} else if refused >= 0 {
			left++ // its increment was taken back
		}
		if i > 0 {
			b = append(b, ", "...)
		}
		b = append(b, '"')
		b = append(b, q.name...)
		b = append(b, `";r=`...)
		b = strconv.AppendInt(b, left, 10)
		b = append(b, ";t="...)
		b = strconv.AppendInt(b, ceilSeconds(c.end.Sub(now)), 10)
	}
	all := string(b)
	pol, rl := all[:polEnd], all[polEnd:]
	_, hasPol := h[hdrPolicy]
	_, hasRL := h[hdrRateLimit]
	if hasPol || hasRL {
		appendField(h, hdrPolicy, pol)
		appendField(h, hdrRateLimit, rl)
		return
	}
	vals := []string{pol, rl}
	h[hdrPolicy] = vals[0:1:1]
	h[hdrRateLimit] = vals[1:2:2]
}

// appendField adds v as list members after any already present (the rate
// limiter's), folded into one field line: some clients read only the
// first. It never writes into the existing slice, which may be shared.
func appendField(h http.Header, key, v string) {
	if old := h[key]; len(old) > 0 {
		h[key] = []string{strings.Join(old, ", ") + ", " + v}
		return
	}
	h[key] = []string{v}
}
