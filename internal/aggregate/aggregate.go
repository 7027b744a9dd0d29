// Package aggregate is the "aggregate" action of a route: one client call
// fans out to several upstream backends, in parallel where it can and in
// sequence where a backend needs a value from another's answer (`after`),
// and the JSON answers are merged into one object.
//
// Config (routes[].aggregate):
//
//	aggregate:
//	  timeout: 2s                  # whole fan-out; default 10s, never more than the route timeout
//	  max_backend_bytes: 1MiB      # bound of one backend answer; default 1MiB
//	  backends:
//	    - { upstream: users,  path: "/users/{id}", as: user, fields: [id, name, "org_id:org"] }
//	    - { upstream: orders, path: "/orders?user={id}&sort={query.sort}", as: orders, optional: true }
//	    - { upstream: users,  path: "/orgs/{user.org}", as: org, after: user }
//
// Behaviour: a backend's answer must be 2xx JSON of at most
// max_backend_bytes: an object, or (under `as` only) an array; anything
// else is that backend's failure. A required backend that fails ends the
// whole call with 502 (504 when the deadline passed) naming it, and cancels
// every other call in flight; an optional one leaves its key out and sets
// Portunus-Partial: true. A backend that runs after a failed one is not
// called and counts as failed. Each backend call is retried per its
// upstream's retries policy and budget, within the deadline (call). Every
// goroutine the fan-out starts has ended before the handler returns.
package aggregate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/portunus-gw/portunus/internal/headers"
	"github.com/portunus-gw/portunus/internal/pipeline"
	"github.com/portunus-gw/portunus/internal/problem"
	"github.com/portunus-gw/portunus/internal/upstream"
)

type jsonNumber = json.Number

// DefaultTimeout bounds a fan-out whose aggregate.timeout is not set.
const DefaultTimeout = 10 * time.Second

// DefaultMaxBackendBytes bounds one backend answer when
// aggregate.max_backend_bytes is not set.
const DefaultMaxBackendBytes = 1 << 20

// PartialHeader is set to "true" on an answer that lacks an optional
// backend's part.
const PartialHeader = "Portunus-Partial"

// StatusClientClosedRequest is recorded when the client went away.
const StatusClientClosedRequest = 499

// Backend is one compiled backend call.
type Backend struct {
	// Pool is the backend's upstream. Required.
	Pool *upstream.Pool
	// As is the key the answer is merged under; "" = merged at the top
	// level (the answer must then be an object).
	As string
	// Fields selects and renames fields of the answer; nil = keep all.
	Fields []Field
	// Optional: a failure leaves the key out instead of failing the call.
	Optional bool
	// After is the index of the backend whose answer this one needs;
	// -1 = none (starts at once).
	After int

	path *pathTemplate
}

// Field is one entry of `fields`: keep From, named To in the answer.
type Field struct {
	From string `json:"from"`
	To   string `json:"to"`
}

// Plan is a compiled aggregate action.
type Plan struct {
	backends []Backend
	// children[i] are the backends that run after backend i; roots are
	// the ones with After == -1.
	children [][]int
	roots    []int
	timeout  time.Duration
	maxBytes int64
	reqRules *headers.Rules
	now      func() time.Time
}

// Name is how errors and explain name backend i: its `as`, or
// "backends[i]".
func (p *Plan) Name(i int) string {
	if b := p.backends[i]; b.As != "" {
		return b.As
	}
	return fmt.Sprintf("backends[%d]", i)
}

// Timeout is the fan-out deadline.
func (p *Plan) Timeout() time.Duration { return p.timeout }

// MaxBackendBytes is the bound of one backend answer.
func (p *Plan) MaxBackendBytes() int64 { return p.maxBytes }

// result is what one backend call produced.
type result struct {
	idx     int
	value   any
	err     error
	timeout bool
}

// Handler returns the action serving requests with p.
func (p *Plan) Handler() pipeline.Handler { return p.serve }

func (p *Plan) serve(w http.ResponseWriter, r *http.Request, s *pipeline.State) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		s.ErrorCode = string(problem.MethodNotAllowed)
		problem.Write(w, r, problem.Problem{Code: problem.MethodNotAllowed, Detail: "an aggregate route answers GET and HEAD only", RequestID: s.RequestID})
		return
	}
	start := p.now()
	// at is the deadline on p.now's clock: retries never back off past it.
	at := start.Add(p.timeout)
	ctx, cancel := context.WithTimeoutCause(r.Context(), p.timeout, errDeadline)
	defer cancel()

	n := len(p.backends)
	values := make([]any, n)
	failed := make([]bool, n)
	// Sized for every backend, so no call ever blocks on sending after
	// the loop below stopped reading.
	done := make(chan result, n)
	running := 0
	launch := func(i int, parent any) {
		running++
		go func() { done <- p.call(ctx, at, r, s, i, parent) }()
	}
	for _, i := range p.roots {
		launch(i, nil)
	}
	var fatal *result
	partial := false
	for running > 0 {
		res := <-done
		running--
		if fatal != nil {
			continue // draining after cancel
		}
		if res.err == nil {
			values[res.idx] = res.value
			for _, c := range p.children[res.idx] {
				launch(c, res.value)
			}
			continue
		}
		// A failed backend takes the ones after it down with it.
		for _, i := range p.subtree(res.idx) {
			failed[i] = true
			if !p.backends[i].Optional && fatal == nil {
				f := res
				if i != res.idx {
					f.err = fmt.Errorf("not called: %s failed: %w", p.Name(res.idx), res.err)
					f.idx = i
				}
				fatal = &f
			}
			if p.backends[i].Optional {
				partial = true
			}
		}
		if fatal != nil {
			cancel()
		}
	}
	s.UpstreamDuration = p.now().Sub(start)

	if r.Context().Err() != nil {
		// The client left; nobody reads what is written.
		s.ErrorCode = "client-closed-request"
		w.WriteHeader(StatusClientClosedRequest)
		return
	}
	if fatal != nil {
		code, status := problem.BadGateway, http.StatusBadGateway
		if fatal.timeout {
			code, status = problem.UpstreamTimeout, http.StatusGatewayTimeout
		}
		s.ErrorCode = string(code)
		problem.Write(w, r, problem.Problem{Code: code, Status: status,
			Detail:    fmt.Sprintf("aggregate backend %s (upstream %s) failed: %v", p.Name(fatal.idx), p.backends[fatal.idx].Pool.Name(), fatal.err),
			RequestID: s.RequestID})
		return
	}
	out := make(map[string]any)
	for i := range p.backends {
		if failed[i] {
			continue
		}
		b := &p.backends[i]
		if b.As != "" {
			out[b.As] = values[i]
			continue
		}
		for k, v := range values[i].(map[string]any) {
			out[k] = v
		}
	}
	body, err := json.Marshal(out)
	if err != nil {
		s.ErrorCode = string(problem.Internal)
		problem.Write(w, r, problem.Problem{Code: problem.Internal, Detail: "the merged answer could not be encoded", RequestID: s.RequestID})
		return
	}
	body = append(body, '\n')
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", fmt.Sprint(len(body)))
	if partial {
		h.Set(PartialHeader, "true")
	}
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = w.Write(body)
	}
}

// subtree is i and every backend that (transitively) runs after it.
func (p *Plan) subtree(i int) []int {
	out := []int{i}
	for k := 0; k < len(out); k++ {
		out = append(out, p.children[out[k]]...)
	}
	return out
}

var errDeadline = errors.New("aggregate: deadline passed")

// call runs backend i and decodes its answer. A failed attempt is retried
// per the backend upstream's retries policy, as the proxy retries: the
// conditions in retries.on, at most retries.attempts more attempts, each
// on a target not yet tried when one is usable, drawn from the pool's
// retry budget, after a jittered backoff. Backend calls are always GETs,
// which are idempotent, so every condition may be retried.
func (p *Plan) call(ctx context.Context, at time.Time, r *http.Request, s *pipeline.State, i int, parent any) result {
	b := &p.backends[i]
	res := result{idx: i}
	attempts := 0
	fail := func(err error) result {
		if attempts > 1 {
			err = fmt.Errorf("%w (after %d attempts)", err, attempts)
		}
		res.err = err
		res.timeout = context.Cause(ctx) == errDeadline
		return res
	}
	target, err := b.path.render(r, s, parent)
	if err != nil {
		return fail(err)
	}
	u, err := url.Parse(target)
	if err != nil {
		return fail(fmt.Errorf("bad path %q: %v", target, err))
	}
	t := b.Pool.PickFor(r, s, nil)
	if t == nil {
		return fail(errors.New("no usable target"))
	}
	// Every backend call grows the pool's retry budget, as every proxied
	// request does; retries draw from it.
	b.Pool.Budget().Request()
	var tried []*upstream.Target
	for n := 1; ; n++ {
		attempts = n
		resp, cond, err := p.attempt(ctx, r, s, b, t, u)
		if cond == 0 {
			if err != nil {
				return fail(err)
			}
			return p.decodeAnswer(resp, b, res, fail)
		}
		// The attempt failed in a way the policy may retry: on another
		// target, after a jittered backoff that ends before the deadline,
		// if the attempts and the pool's retry budget allow.
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		wait := upstream.RetryBackoff(n)
		var next *upstream.Target
		if rp := b.Pool.Retries(); rp != nil && n <= rp.Attempts && rp.Allows(cond, status) && p.timeLeft(ctx, at, wait) {
			tried = append(tried, t)
			if next = b.Pool.PickAside(r, s, tried); next != nil && !b.Pool.Budget().Withdraw() {
				// The pick may hold a half-open breaker's trial slot:
				// give it back, since no attempt will be made.
				b.Pool.Report(next, upstream.OutcomeIgnored, 0)
				next = nil
			}
		}
		if next == nil {
			if err != nil {
				return fail(err)
			}
			return p.decodeAnswer(resp, b, res, fail)
		}
		b.Pool.CountRetry(upstream.RetryReason(cond))
		if resp != nil {
			upstream.DiscardAnswer(resp)
			err = fmt.Errorf("answered %d", status)
		}
		if cause := upstream.SleepCtx(ctx, wait); cause != nil {
			b.Pool.Report(next, upstream.OutcomeIgnored, 0)
			return fail(fmt.Errorf("%v; no retry: %v", err, cause))
		}
		t = next
	}
}

// attempt sends one backend call to target t. It returns the answer or
// the error, and the retry condition the result meets (0: final by
// nature, such as a call cancelled by the gateway or any answer whose
// status is not a failure the policy could retry).
func (p *Plan) attempt(ctx context.Context, r *http.Request, s *pipeline.State, b *Backend, t *upstream.Target, u *url.URL) (*http.Response, upstream.RetryCondition, error) {
	rawPath := t.PathPrefix + u.EscapedPath()
	path, err := url.PathUnescape(rawPath)
	if err != nil {
		b.Pool.Report(t, upstream.OutcomeIgnored, 0)
		return nil, 0, fmt.Errorf("bad path %q: %v", rawPath, err)
	}
	out := &http.Request{
		Method:     http.MethodGet,
		URL:        &url.URL{Scheme: t.URL.Scheme, Host: t.Host, Path: path, RawPath: rawPath, RawQuery: u.RawQuery},
		Proto:      "HTTP/1.1",
		ProtoMajor: 1,
		ProtoMinor: 1,
		Header:     p.outboundHeader(r, s),
		Host:       t.Authority,
	}
	out = out.WithContext(ctx)
	t.Begin()
	sent := p.now()
	resp, err := b.Pool.RoundTripper().RoundTrip(out)
	latency := p.now().Sub(sent)
	t.End()
	if err != nil {
		switch {
		case ctx.Err() != nil && context.Cause(ctx) != errDeadline:
			// Cancelled by us (a sibling failed) or the client: says
			// nothing about the target, and nothing is left to retry for.
			b.Pool.Report(t, upstream.OutcomeIgnored, latency)
			return nil, 0, fmt.Errorf("%v", trimURLError(err))
		case ctx.Err() != nil:
			// The deadline passed: the target was too slow, and no time
			// is left for another attempt.
			b.Pool.Report(t, upstream.OutcomeFailure, latency)
			return nil, 0, fmt.Errorf("%v", trimURLError(err))
		}
		b.Pool.Report(t, upstream.OutcomeFailure, latency)
		return nil, upstream.ErrorCondition(err), fmt.Errorf("%v", trimURLError(err))
	}
	if b.Pool.IsFailureStatus(resp.StatusCode) {
		b.Pool.Report(t, upstream.OutcomeFailure, latency)
	} else {
		b.Pool.Report(t, upstream.OutcomeSuccess, latency)
	}
	if resp.StatusCode >= 200 && resp.StatusCode <= 299 {
		return resp, 0, nil
	}
	return resp, upstream.RetryStatus, nil
}

// timeLeft reports whether the fan-out deadline (at, and any deadline
// of the client's request) leaves room for a wait of d and then some: a
// retry never starts whose backoff would end at or after the deadline.
// The attempt itself runs under the fan-out's context, so it can never
// outlive the deadline either.
func (p *Plan) timeLeft(ctx context.Context, at time.Time, d time.Duration) bool {
	if !p.now().Add(d).Before(at) {
		return false
	}
	cd, ok := ctx.Deadline()
	return !ok || time.Now().Add(d).Before(cd)
}

// decodeAnswer turns a final answer into the backend's result; it closes
// the body.
func (p *Plan) decodeAnswer(resp *http.Response, b *Backend, res result, fail func(error) result) result {
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fail(fmt.Errorf("answered %d", resp.StatusCode))
	}
	if ct := resp.Header.Get("Content-Type"); ct != "" && !isJSON(ct) {
		return fail(fmt.Errorf("answered %q, not JSON", ct))
	}
	raw, err := io.ReadAll(io.LimitReader(resp.Body, p.maxBytes+1))
	if err != nil {
		return fail(fmt.Errorf("reading the answer: %v", trimURLError(err)))
	}
	if int64(len(raw)) > p.maxBytes {
		return fail(fmt.Errorf("answer larger than %d bytes", p.maxBytes))
	}
	v, err := decode(raw)
	if err != nil {
		return fail(err)
	}
	switch v.(type) {
	case map[string]any:
	case []any:
		if b.As == "" {
			return fail(errors.New("answered a JSON array, which can only be merged under `as`"))
		}
	default:
		return fail(errors.New("answered JSON that is not an object or array"))
	}
	res.value = selectFields(v, b.Fields)
	return res
}

func trimURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

func decode(raw []byte) (any, error) {
	d := json.NewDecoder(strings.NewReader(string(raw)))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		return nil, fmt.Errorf("answered invalid JSON: %v", err)
	}
	if _, err := d.Token(); err != io.EOF {
		return nil, errors.New("answered invalid JSON: data after the value")
	}
	return v, nil
}

func isJSON(ct string) bool {
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return false
	}
	return mt == "application/json" || strings.HasSuffix(mt, "+json")
}

// selectFields keeps the listed fields of an object (of each object in an
// array), renamed as configured. nil fields keep everything.
func selectFields(v any, fields []Field) any {
	if fields == nil {
		return v
	}
	switch x := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(fields))
		for _, f := range fields {
			if fv, ok := x[f.From]; ok {
				out[f.To] = fv
			}
		}
		return out
	case []any:
		for i, e := range x {
			if _, ok := e.(map[string]any); ok {
				x[i] = selectFields(e, fields)
			}
		}
		return x
	}
	return v
}

// outboundHeader is what every backend call carries: the forwarding
// headers a proxied call would carry, the identity, and the route's
// request_headers rules. Client headers are not copied: the backends
// answer the gateway, not the client.
func (p *Plan) outboundHeader(r *http.Request, s *pipeline.State) http.Header {
	h := make(http.Header, 8)
	h["Accept"] = []string{"application/json"}
	h["User-Agent"] = []string{""}
	peer, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		peer = ""
	}
	if prior := r.Header.Values("X-Forwarded-For"); s.PeerTrusted && len(prior) > 0 {
		h["X-Forwarded-For"] = []string{strings.Join(prior, ", ") + ", " + peer}
	} else if peer != "" {
		h["X-Forwarded-For"] = []string{peer}
	}
	proto := "http"
	if r.TLS != nil {
		proto = "https"
	}
	h["X-Forwarded-Proto"] = []string{proto}
	h["X-Forwarded-Host"] = []string{r.Host}
	if s.RequestID != "" {
		h["X-Request-Id"] = []string{s.RequestID}
	}
	if s.Consumer != "" {
		h["X-Consumer-Name"] = []string{s.Consumer}
		if len(s.Roles) > 0 {
			h["X-Consumer-Roles"] = []string{strings.Join(s.Roles, ",")}
		}
	}
	p.reqRules.Apply(h, r, s)
	return h
}
