package proxy

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/portunus-gw/portunus/internal/pipeline"
	"github.com/portunus-gw/portunus/internal/tracing"
	"github.com/portunus-gw/portunus/internal/upstream"
)

// backoff is the wait before retry n (1-based), jittered
// (upstream.RetryBackoff, shared with the aggregate action).
func backoff(n int) time.Duration { return upstream.RetryBackoff(n) }

// idempotent reports whether a request with this method may be sent twice
// with the same effect (RFC 9110 §9.2.2).
func idempotent(method string) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodPut, http.MethodDelete, http.MethodTrace:
		return true
	}
	return false
}

// classify turns an attempt's result into the outcome target health sees
// and the retry condition it meets (0: none, the result is final by
// nature). An answer meets RetryStatus; the policy decides whether its
// status is one to retry.
func (h *handler) classify(r *http.Request, ctx context.Context, body *bodyWatch, res *http.Response, err error) (upstream.Outcome, upstream.RetryCondition) {
	if err == nil {
		if res.StatusCode == http.StatusSwitchingProtocols {
			return upstream.OutcomeSuccess, 0
		}
		if h.pool.IsFailureStatus(res.StatusCode) {
			return upstream.OutcomeFailure, upstream.RetryStatus
		}
		return upstream.OutcomeSuccess, upstream.RetryStatus
	}
	if body.err() != nil || r.Context().Err() != nil {
		// Our side failed: the body was bad or the client left. Says
		// nothing about the target, and nothing is left to retry for.
		return upstream.OutcomeIgnored, 0
	}
	if errors.Is(err, errRouteTimeout) || context.Cause(ctx) == errRouteTimeout {
		// The route's whole deadline is spent: the target was too slow,
		// and no time is left for another attempt.
		return upstream.OutcomeFailure, 0
	}
	if ctx.Err() != nil {
		// Cancelled for another reason (a gRPC deadline, a lost hedge).
		return upstream.OutcomeIgnored, 0
	}
	// A refused dial or a failed TLS verification (never sent),
	// a timeout waiting for the answer, or a broken connection.
	return upstream.OutcomeFailure, upstream.ErrorCondition(err)
}

// replayable reports whether the request may be sent again: never for
// gRPC calls (streams) or upgrades; only when the body was never read;
// and for methods that are not idempotent only when the request never
// left (the connection was never made).
func replayable(r, out *http.Request, call grpcCall, body *bodyWatch, cond upstream.RetryCondition) bool {
	if call.on || upgradeType(out.Header) != "" || !body.untouched() {
		return false
	}
	return idempotent(r.Method) || cond == upstream.RetryConnectFailure
}

// wantRetry reports whether the retry policy allows another attempt after
// a result meeting cond, ignoring budget and deadline.
func (h *handler) wantRetry(r, out *http.Request, call grpcCall, body *bodyWatch, cond upstream.RetryCondition, res *http.Response) bool {
	if cond == 0 {
		return false
	}
	status := 0
	if res != nil {
		status = res.StatusCode
	}
	return h.retries.Allows(cond, status) && replayable(r, out, call, body, cond)
}

// timeLeft reports whether the route deadline leaves room for a wait of d
// and then some.
func (h *handler) timeLeft(tm *deadline, d time.Duration) bool {
	return tm.timer == nil || h.now().Add(d).Before(tm.at)
}

// retry runs the attempts after the first, whose result (res or err,
// from target t) allows a retry. Each retry goes to a target not yet
// tried when one is usable, after a jittered backoff, if attempts, the
// retry budget and the route deadline allow; otherwise the last result
// goes to the client as it is.
func (h *handler) retry(w http.ResponseWriter, r *http.Request, s *pipeline.State, ctx context.Context, call grpcCall, body *bodyWatch, tm *deadline, start time.Time, t *upstream.Target, res *http.Response, err error, cond upstream.RetryCondition) {
	tried := make([]*upstream.Target, 1, h.retries.Attempts+1)
	tried[0] = t
	var out *http.Request
	for n := 1; ; n++ {
		wait := backoff(n)
		var next *upstream.Target
		if n <= h.retries.Attempts && h.timeLeft(tm, wait) {
			if next = h.pool.PickAside(r, s, tried); next != nil && !h.pool.Budget().Withdraw() {
				// The pick may hold a half-open breaker's trial slot:
				// give it back, since no attempt will be made.
				h.pool.Report(next, upstream.OutcomeIgnored, 0)
				next = nil
			}
		}
		if next == nil {
			h.finish(w, r, s, ctx, call, body, tm, out, res, err)
			return
		}
		h.pool.CountRetry(retryReason(cond))
		if res != nil {
			upstream.DiscardAnswer(res)
			res = nil
		}
		if err = upstream.SleepCtx(ctx, wait); err != nil {
			h.finish(w, r, s, ctx, call, body, tm, out, nil, err)
			return
		}
		tried = append(tried, next)
		s.Target = next.String()
		out = new(http.Request)
		if !h.outbound(out, w, r, s, next) {
			return
		}
		if out.Body != http.NoBody {
			// The body was never read (replayable): a fresh watch learns
			// what this attempt does with it.
			body = &bodyWatch{rc: out.Body}
			out.Body = body
		}
		next.Begin()
		actx := ctx
		var span tracing.Client
		if h.tracer != nil {
			actx, span = h.tracer.StartClient(ctx, out.Header, r.Method, h.pool.Name(), next.Host)
		}
		out = out.WithContext(actx)
		astart := h.now()
		res, err = h.rt.RoundTrip(out)
		latency := h.now().Sub(astart)
		s.UpstreamDuration = h.now().Sub(start)
		h.traceResult(span, res, err)
		var outcome upstream.Outcome
		outcome, cond = h.classify(r, ctx, body, res, err)
		h.pool.Report(next, outcome, latency)
		if h.wantRetry(r, out, call, body, cond, res) {
			span.End()
			next.End()
			continue
		}
		defer next.End()
		defer span.End()
		h.finish(w, r, s, ctx, call, body, tm, out, res, err)
		return
	}
}

// retryReason names a retry condition for the retries metric.
func retryReason(c upstream.RetryCondition) string { return upstream.RetryReason(c) }
