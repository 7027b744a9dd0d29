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
// called and counts as failed. Every goroutine the fan-out starts has
// ended before the handler returns.
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
		go func() { done <- p.call(ctx, r, s, i, parent) }()
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

// call runs backend i once and decodes its answer.
func (p *Plan) call(ctx context.Context, r *http.Request, s *pipeline.State, i int, parent any) result {
	b := &p.backends[i]
	res := result{idx: i}
	fail := func(err error) result {
		res.err = err
		res.timeout = context.Cause(ctx) == errDeadline
		return res
	}
	target, err := b.path.render(r, s, parent)
	if err != nil {
		return fail(err)
	}
	t := b.Pool.PickFor(r, s, nil)
	if t == nil {
		return fail(errors.New("no usable target"))
	}
	u, err := url.Parse(target)
	if err != nil {
		return fail(fmt.Errorf("bad path %q: %v", target, err))
	}
	rawPath := t.PathPrefix + u.EscapedPath()
	path, err := url.PathUnescape(rawPath)
	if err != nil {
		return fail(fmt.Errorf("bad path %q: %v", rawPath, err))
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
		outcome := upstream.OutcomeFailure
		if ctx.Err() != nil && context.Cause(ctx) != errDeadline {
			// Cancelled by us (a sibling failed) or the client: says
			// nothing about the target.
			outcome = upstream.OutcomeIgnored
		}
		b.Pool.Report(t, outcome, latency)
		return fail(fmt.Errorf("%v", trimURLError(err)))
	}
	defer resp.Body.Close()
	if b.Pool.IsFailureStatus(resp.StatusCode) {
		b.Pool.Report(t, upstream.OutcomeFailure, latency)
	} else {
		b.Pool.Report(t, upstream.OutcomeSuccess, latency)
	}
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
