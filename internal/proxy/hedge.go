package proxy

import (
	"context"
	"net/http"
	"time"

	"github.com/portunus-gw/portunus/internal/config"
	"github.com/portunus-gw/portunus/internal/pipeline"
	"github.com/portunus-gw/portunus/internal/tracing"
	"github.com/portunus-gw/portunus/internal/upstream"
)

// hedgeByPercentile sets up hedging after a percentile of the pool's
// latency (hedge.after: pN): the pool starts keeping its latency
// histogram (upstream/latency.go), and the handler a handle on the
// percentile.
func (h *handler) hedgeByPercentile(cfg Config) {
	if cfg.HedgePercentile <= 0 {
		return
	}
	h.hedgeQ = cfg.Pool.EnableLatencyStats().Track(cfg.HedgePercentile / 100)
	h.hedgeMin = cfg.HedgeMin
	if h.hedgeMin <= 0 {
		h.hedgeMin = config.DefaultHedgeMin.D()
	}
}

// hedging reports whether the route hedges at all.
func (h *handler) hedging() bool { return h.hedgeAfter > 0 || h.hedgeQ != nil }

// hedgeDelay is how long the first attempt of a request may go without
// an answer before a hedge: hedge.after, or the pool's current latency
// percentile (at least hedge.min). 0 = do not hedge this request: the
// percentile is not known yet (too few answers seen, see
// upstream.MinSamplesFor). No lock, no allocation.
func (h *handler) hedgeDelay() time.Duration {
	if h.hedgeQ == nil {
		return h.hedgeAfter
	}
	d := h.hedgeQ.Value()
	if d <= 0 {
		return 0
	}
	return max(d, h.hedgeMin)
}

// hedgeable reports whether a request may be hedged: sending it twice
// must be harmless (idempotent method) and cheap (no body to hold on
// to), and its answer must be a plain one (no upgrade, no gRPC stream).
func (h *handler) hedgeable(r, out *http.Request, call grpcCall) bool {
	return !call.on && out.Body == http.NoBody && idempotent(r.Method) && upgradeType(out.Header) == ""
}

// hedgeAttempt is one attempt of a hedged request.
type hedgeAttempt struct {
	start  time.Time
	t      *upstream.Target
	out    *http.Request
	cancel context.CancelFunc
	span   tracing.Client
}

// hedgeResult is how one attempt ended.
type hedgeResult struct {
	a       *hedgeAttempt
	res     *http.Response
	err     error
	latency time.Duration
}

// end releases what an attempt that will not be delivered holds.
func (hr *hedgeResult) end() {
	if hr.res != nil {
		hr.res.Body.Close()
	}
	hr.a.cancel()
	hr.a.span.End()
	hr.a.t.End()
}

// hedged serves a request with hedging: the first attempt goes to t;
// whenever after (hedgeDelay) passes without an answer, another attempt
// goes to a target not yet tried (up to hedge.max extra, each drawn from
// the retry budget). The first answer that is not a failure wins; the
// others are cancelled and reported as lost (upstream.Pool.ReportLost:
// not a failure, but the time they waited is a lower bound of the
// target's latency for p2c_ewma). When every attempt failed, a retry follows as the retry policy allows, and at the end the
// last result goes to the client.
//
// When the pool keeps a latency histogram, a first attempt that loses to
// a hedge adds the time it had waited as a sample: a lower bound of its
// latency, which keeps the slow tail in the histogram (left out, each
// hedge would drop a slow sample, the percentile would creep down, and
// hedging would feed on itself).
//
// Extra attempts are picked with PickAside: they do not take a turn of
// the round-robin rotation, which the requests' own picks (proxy.serve)
// keep to themselves. Were the hedge to take one, two targets, one slow,
// would see every request go to the slow one first.
func (h *handler) hedged(w http.ResponseWriter, r *http.Request, s *pipeline.State, ctx context.Context, tmpl *http.Request, t *upstream.Target, tm *deadline, after time.Duration) {
	start := h.now()
	retriesLeft := 0
	if h.retries != nil {
		retriesLeft = h.retries.Attempts
	}
	maxAttempts := 1 + h.hedgeMax + retriesLeft
	// Buffered for every attempt: an attempt never blocks on sending its
	// result, even after the request is over.
	results := make(chan hedgeResult, maxAttempts)
	tried := make([]*upstream.Target, 0, maxAttempts)
	var attempts []*hedgeAttempt
	launch := func(t *upstream.Target, o *http.Request) {
		actx, cancel := context.WithCancel(ctx)
		a := &hedgeAttempt{start: h.now(), t: t, cancel: cancel}
		if h.tracer != nil {
			actx, a.span = h.tracer.StartClient(actx, o.Header, r.Method, h.pool.Name(), t.Host)
		}
		a.out = o.WithContext(actx)
		attempts = append(attempts, a)
		tried = append(tried, t)
		t.Begin()
		go func() {
			st := h.now()
			res, err := h.rt.RoundTrip(a.out)
			results <- hedgeResult{a: a, res: res, err: err, latency: h.now().Sub(st)}
		}()
	}
	// another builds the request for one more attempt, to a target not
	// yet tried; nil when there is none or the budget is spent.
	another := func() *http.Request {
		next := h.pool.PickAside(r, s, tried)
		if next == nil {
			return nil
		}
		if upstreamContains(tried, next) || !h.pool.Budget().Withdraw() {
			// Give back a half-open trial slot the pick may hold.
			h.pool.Report(next, upstream.OutcomeIgnored, 0)
			return nil
		}
		o := new(http.Request)
		var sink discardWriter
		if !h.outbound(o, &sink, r, s, next) {
			return nil
		}
		launch(next, o)
		return o
	}

	launch(t, tmpl)
	first := attempts[0]
	firstDone := false
	pending, hedges := 1, 0
	timer := time.NewTimer(after)
	defer timer.Stop()
	var last *hedgeResult // the latest failed result, delivered if nothing better comes
	for {
		select {
		case <-timer.C:
			if hedges < h.hedgeMax && another() != nil {
				h.pool.CountHedge()
				hedges++
				pending++
			}
			if hedges < h.hedgeMax {
				timer.Reset(after)
			}
		case hr := <-results:
			pending--
			if hr.a == first {
				firstDone = true
			}
			h.traceResult(hr.a.span, hr.res, hr.err)
			outcome, cond := h.classify(r, hr.a.out.Context(), nil, hr.res, hr.err)
			failed := hr.err != nil || outcome == upstream.OutcomeFailure ||
				h.retries != nil && h.retries.Allows(cond, hr.res.StatusCode)
			if !failed {
				h.pool.Report(hr.a.t, outcome, hr.latency)
				if ls := h.pool.LatencyStats(); ls != nil && !firstDone {
					ls.Record(h.now().Sub(first.start))
				}
				for _, a := range attempts {
					if a != hr.a {
						a.cancel()
					}
				}
				if last != nil {
					last.end()
				}
				if pending > 0 {
					go h.dropLosers(results, pending)
				}
				s.Target = hr.a.t.String()
				s.UpstreamDuration = h.now().Sub(start)
				defer hr.a.cancel()
				defer hr.a.t.End()
				defer hr.a.span.End()
				h.finish(w, r, s, ctx, grpcCall{}, nil, tm, hr.a.out, hr.res, nil)
				return
			}
			h.pool.Report(hr.a.t, outcome, hr.latency)
			if last != nil {
				last.end()
			}
			last = &hr
			if pending > 0 {
				continue
			}
			status := 0
			if hr.res != nil {
				status = hr.res.StatusCode
			}
			if retriesLeft > 0 && h.retries.Allows(cond, status) && h.timeLeft(tm, 0) && another() != nil {
				h.pool.CountRetry(retryReason(cond))
				retriesLeft--
				pending++
				continue
			}
			// Nothing in flight and nothing more to try: the last
			// result goes to the client as a single attempt's would.
			s.Target = hr.a.t.String()
			s.UpstreamDuration = h.now().Sub(start)
			defer hr.a.cancel()
			defer hr.a.t.End()
			defer hr.a.span.End()
			err := hr.err
			if err != nil && ctx.Err() != nil {
				err = context.Cause(ctx)
			}
			h.finish(w, r, s, ctx, grpcCall{}, nil, tm, hr.a.out, hr.res, err)
			return
		}
	}
}

// dropLosers waits for the attempts still in flight after a hedge was won
// (they are cancelled, so this is short) and releases them. Each is
// reported as lost with the time it was out, up to its cancellation: not
// a failure of its target, but a lower bound of its latency. Its End
// follows, so least_conn counts it in flight until then.
func (h *handler) dropLosers(results <-chan hedgeResult, n int) {
	for range n {
		hr := <-results
		h.traceResult(hr.a.span, hr.res, hr.err)
		h.pool.ReportLost(hr.a.t, hr.latency)
		hr.end()
	}
}

func upstreamContains(ts []*upstream.Target, t *upstream.Target) bool {
	for _, x := range ts {
		if x == t {
			return true
		}
	}
	return false
}
