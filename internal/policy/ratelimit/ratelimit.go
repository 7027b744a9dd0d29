package ratelimit

import (
	"cmp"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/textproto"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/portunus-gw/portunus/internal/config"
	"github.com/portunus-gw/portunus/internal/pipeline"
	"github.com/portunus-gw/portunus/internal/policy/override"
	"github.com/portunus-gw/portunus/internal/store"
	"github.com/portunus-gw/portunus/internal/telemetry"
)

// Options configure one route's limits.
type Options struct {
	// Route is the route's name (part of every key).
	Route string
	// Limits are the route's rate_limits (defaults applied).
	Limits []config.RateLimit
	// Consumers are per-consumer overrides (consumers[].rate_limits) by
	// consumer name: they replace Limits for that consumer.
	Consumers map[string][]config.RateLimit
	// Lookup finds the own limits of a consumer Consumers does not name
	// (runtime consumers, which change without a reload); nil = none.
	// It is called per request and must not block.
	Lookup func(consumer string) []config.RateLimit
	// Store holds the buckets (memory or redis).
	Store store.Store
	// OnError is store.on_error: fail_open (also "") or fail_closed.
	OnError string
	// Metrics receives decisions; nil = none.
	Metrics *telemetry.Metrics
	// Now is the clock of the fail-open limiter and of the store back-off;
	// nil means time.Now. Tests inject a fake clock.
	Now func() time.Time
	// Logger receives store failures (at most one line per 10s); nil
	// means slog.Default().
	Logger *slog.Logger
}

// Header names, in canonical form so they are set without canonicalizing
// per request.
var (
	hdrPolicy     = textproto.CanonicalMIMEHeaderKey("RateLimit-Policy")
	hdrRateLimit  = textproto.CanonicalMIMEHeaderKey("RateLimit")
	hdrLimit      = textproto.CanonicalMIMEHeaderKey("RateLimit-Limit")
	hdrRemaining  = textproto.CanonicalMIMEHeaderKey("RateLimit-Remaining")
	hdrReset      = textproto.CanonicalMIMEHeaderKey("RateLimit-Reset")
	hdrRetryAfter = textproto.CanonicalMIMEHeaderKey("Retry-After")
)

// byKind is what a limit counts by.
type byKind uint8

const (
	byIP byKind = iota
	byConsumer
	byRoute
	byHeader
)

// limit is one compiled rate limit.
type limit struct {
	name   string
	by     byKind
	header string // canonical header name, for byHeader
	sl     store.Limit
	quota  int // the configured limit (RateLimit-Limit, q=)
	// quotaStr is quota formatted, for RateLimit-Limit.
	quotaStr string
	prefix   string // key up to the by value
	// logLimited is State.RateLimit when this limit refuses.
	logLimited string
	rec        *telemetry.RateLimitRecorder
}

// limitSet is the limits that apply to one request: the route's, or one
// consumer's override.
type limitSet struct {
	limits []limit // config order: the order of the headers
	take   []int   // indexes into limits, shortest window first
	policy []string
	rest   *restHeaders
}

// New returns the middleware. It fails on limits that validation should
// have refused (limit < 1, window <= 0, an unknown by) and on two limits of
// one set with the same (possibly defaulted) name, since they would share
// a bucket.
func New(o Options) (pipeline.Middleware, error) {
	l, err := newLimiter(o)
	if err != nil {
		return nil, err
	}
	return l.middleware, nil
}

func newLimiter(o Options) (*limiter, error) {
	switch o.OnError {
	case "", "fail_open", "fail_closed":
	default:
		return nil, fmt.Errorf("ratelimit: unknown on_error %q (want fail_open or fail_closed)", o.OnError)
	}
	if o.Store == nil {
		return nil, errors.New("ratelimit: no store")
	}
	base, err := compileSet(o.Route, "", o.Limits, o.Metrics)
	if err != nil {
		return nil, err
	}
	l := &limiter{
		base:       base,
		store:      o.Store,
		failClosed: o.OnError == "fail_closed",
		now:        o.Now,
		clock:      o.Now,
		log:        o.Logger,
		fb:         &fallback{},
	}
	if l.now == nil {
		l.now = time.Now
	}
	if l.log == nil {
		l.log = slog.Default()
	}
	l.fb.now = l.now
	if len(o.Consumers) > 0 {
		l.consumers = make(map[string]*limitSet, len(o.Consumers))
		for name, rls := range o.Consumers {
			if len(rls) == 0 {
				continue
			}
			set, err := compileSet(o.Route, name, rls, o.Metrics)
			if err != nil {
				return nil, fmt.Errorf("consumer %q: %w", name, err)
			}
			l.consumers[name] = set
		}
	}
	if o.Lookup != nil {
		route, metrics := o.Route, o.Metrics
		l.dyn = &override.Cache[config.RateLimit, *limitSet]{
			Lookup: o.Lookup,
			Compile: func(consumer string, rls []config.RateLimit) (*limitSet, error) {
				return compileSet(route, consumer, rls, metrics)
			},
		}
	}
	l.fb.attach(l)
	return l, nil
}

// compileSet compiles one list of limits. consumer is "" for the route's
// own limits, else the consumer whose override this is: its buckets are
// kept apart from the route's.
func compileSet(route, consumer string, rls []config.RateLimit, m *telemetry.Metrics) (*limitSet, error) {
	if len(rls) == 0 {
		return nil, errors.New("ratelimit: no limits")
	}
	set := &limitSet{limits: make([]limit, len(rls))}
	seen := make(map[string]bool, len(rls))
	policy := make([]string, 0, len(rls))
	for i, rl := range rls {
		lm, err := compileLimit(route, consumer, i, rl)
		if err != nil {
			return nil, err
		}
		if seen[lm.name] {
			return nil, fmt.Errorf("ratelimit: two limits named %q (a limit without name is named by its by plus its index)", lm.name)
		}
		seen[lm.name] = true
		lm.rec = m.RateLimit(route, lm.name)
		set.limits[i] = lm
		set.take = append(set.take, i)
		policy = append(policy, `"`+lm.name+`";q=`+strconv.Itoa(lm.quota)+";w="+strconv.FormatInt(ceilSeconds(time.Duration(rl.Window)), 10))
	}
	slices.SortStableFunc(set.take, func(a, b int) int {
		return cmp.Compare(set.limits[a].sl.Period, set.limits[b].sl.Period)
	})
	set.policy = []string{strings.Join(policy, ", ")}
	set.rest = newRestHeaders(set)
	return set, nil
}

func compileLimit(route, consumer string, i int, rl config.RateLimit) (limit, error) {
	if rl.Limit < 1 {
		return limit{}, fmt.Errorf("ratelimit: limit must be at least 1, got %d", rl.Limit)
	}
	if rl.Window <= 0 {
		return limit{}, errors.New("ratelimit: window must be greater than 0")
	}
	if rl.Burst < 0 {
		return limit{}, errors.New("ratelimit: burst must not be negative")
	}
	by := rl.By
	if by == "" {
		by = "ip"
	}
	lm := limit{quota: rl.Limit, sl: store.Limit{Rate: rl.Limit, Period: time.Duration(rl.Window), Burst: rl.Burst}}
	switch {
	case by == "ip":
		lm.by = byIP
	case by == "consumer":
		lm.by = byConsumer
	case by == "route":
		lm.by = byRoute
	case strings.HasPrefix(by, "header:") && len(by) > len("header:"):
		lm.by = byHeader
		lm.header = textproto.CanonicalMIMEHeaderKey(strings.TrimSpace(by[len("header:"):]))
	default:
		return limit{}, fmt.Errorf("ratelimit: unknown by %q (want consumer, ip, route or header:NAME)", by)
	}
	lm.name = rl.Name
	if lm.name == "" {
		lm.name = by + strconv.Itoa(i)
	}
	if strings.ContainsAny(lm.name, "\"\\") {
		return limit{}, fmt.Errorf("ratelimit: invalid limit name %q", lm.name)
	}
	lm.prefix = keyPrefix(route, consumer, lm.name)
	lm.logLimited = "limited:" + lm.name
	lm.quotaStr = strconv.Itoa(lm.quota)
	return lm, nil
}

// ceilSeconds is d in whole seconds, rounded up, at least 1.
func ceilSeconds(d time.Duration) int64 {
	s := int64((d + time.Second - 1) / time.Second)
	if s < 1 {
		return 1
	}
	return s
}

// middleware wraps next with the limiter.
func (l *limiter) middleware(next pipeline.Handler) pipeline.Handler {
	return func(w http.ResponseWriter, r *http.Request, s *pipeline.State) {
		if l.serve(w, r, s) {
			next(w, r, s)
		}
	}
}
