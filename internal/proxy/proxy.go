// Package proxy is the "proxy" action of a route: it picks a target from
// the route's upstream pool, builds the outbound request once (path
// rewrite, X-Forwarded-*, X-Request-Id, identity, header rules), sends it
// over the pool's transport and streams the answer back: plain bodies,
// chunked bodies with trailers, server-sent events (flushed per write) and
// WebSocket upgrades (bytes copied both ways after a 101).
//
// SanitizeInbound, which the gateway calls on every request before
// routing, removes what a client must not send upstream.
//
// HTTP/2 and gRPC: the pool's transport speaks HTTP/2 where the upstream's
// protocol says so; trailers pass both ways; a gRPC call's grpc-timeout
// bounds the whole upstream call (grpc.go), and every error a gRPC client
// gets is a gRPC status (problem.Write renders it).
//
// Errors are problem+json: 502 upstream-unavailable (connect failure,
// reset, any transport error), 503 upstream-unavailable with Retry-After
// when the pool has no target, 504 upstream-timeout when the route timeout
// passes before the response headers, 413 body-too-large when the body
// limit trips while streaming the request body. A client that goes away
// cancels the upstream request and is recorded as 499.
package proxy

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/portunus-gw/portunus/internal/headers"
	"github.com/portunus-gw/portunus/internal/pipeline"
	"github.com/portunus-gw/portunus/internal/problem"
	"github.com/portunus-gw/portunus/internal/tracing"
	"github.com/portunus-gw/portunus/internal/upstream"
	"github.com/portunus-gw/portunus/internal/upstream/h1"
)

// StatusClientClosedRequest is recorded (written to the ResponseWriter,
// which reaches nobody) when the client went away before the answer.
const StatusClientClosedRequest = 499

// CodeClientClosed is the State.ErrorCode recorded for a client that went
// away. It is never rendered: nobody is left to read it.
const CodeClientClosed = "client-closed-request"

// Config configures one proxy action.
type Config struct {
	// Pool is the upstream. Required.
	Pool *upstream.Pool
	// Timeout bounds the wait for the upstream's response headers (504
	// after); once headers arrive the body streams without it. 0 = none.
	Timeout time.Duration
	// StripPrefix (rewrite.strip_prefix) removes this whole-segment
	// prefix from the path. "" or "/" = none.
	StripPrefix string
	// RewritePath (rewrite.path) replaces the path; compile it with
	// headers.CompilePath. nil = none. Applied after StripPrefix.
	RewritePath *headers.Template
	// RequestHeaders edit the outbound request headers; nil = none.
	RequestHeaders *headers.Rules
	// ResponseHeaders edit the response headers; nil = none.
	ResponseHeaders *headers.Rules
	// Now is the clock for UpstreamDuration; nil = time.Now.
	Now func() time.Time
	// Tracer records a CLIENT span per upstream attempt; nil = tracing off.
	Tracer *tracing.Provider
	// HedgeAfter (route hedge.after) sends another attempt to another
	// target when the first has no response headers after this long;
	// 0 = no hedging. Only bodiless requests with idempotent methods
	// are hedged.
	HedgeAfter time.Duration
	// HedgeMax is the number of extra attempts a hedge may send (1-3).
	HedgeMax int
	// HedgePercentile (route hedge.after: pN, 50-99.9) hedges after
	// that percentile of the pool's recent response-header latency
	// instead of HedgeAfter (hedge.go); 0 = HedgeAfter.
	HedgePercentile float64
	// HedgeMin is the shortest percentile-based wait (hedge.min);
	// 0 = config.DefaultHedgeMin.
	HedgeMin time.Duration
}

type handler struct {
	pool *upstream.Pool
	rt   http.RoundTripper
	// h1 is rt when the pool sends with the HTTP/1.1 client, which takes
	// the route deadline as a value (RoundTripUntil); nil otherwise.
	h1        *h1.Client
	timeout   time.Duration
	strip     string
	stripVal  []string // {strip}, for X-Forwarded-Prefix
	rewrite   *headers.Template
	reqRules  *headers.Rules
	respRules *headers.Rules
	now       func() time.Time
	tracer    *tracing.Provider
	// retries is the pool's retry policy; nil = never retry.
	retries    *upstream.RetryPolicy
	hedgeAfter time.Duration
	hedgeMax   int
	// hedgeQ is the pool latency percentile hedging waits for; nil =
	// hedgeAfter. hedgeMin is its floor.
	hedgeQ   *upstream.LatencyQuantile
	hedgeMin time.Duration
}

// New returns the proxy action for cfg.
func New(cfg Config) pipeline.Handler { return newHandler(cfg).serve }

// newHandler normalizes cfg into the handler New serves with.
func newHandler(cfg Config) *handler {
	h := &handler{
		pool:       cfg.Pool,
		rt:         cfg.Pool.RoundTripper(),
		timeout:    cfg.Timeout,
		strip:      strings.TrimRight(cfg.StripPrefix, "/"),
		rewrite:    cfg.RewritePath,
		reqRules:   cfg.RequestHeaders,
		respRules:  cfg.ResponseHeaders,
		now:        cfg.Now,
		tracer:     cfg.Tracer,
		retries:    cfg.Pool.Retries(),
		hedgeAfter: cfg.HedgeAfter,
		hedgeMax:   min(max(cfg.HedgeMax, 1), 3),
	}
	if h.strip != "" && h.strip[0] != '/' {
		h.strip = "/" + h.strip
	}
	if h.now == nil {
		h.now = time.Now
	}
	h.h1, _ = h.rt.(*h1.Client)
	h.stripVal = []string{h.strip}
	h.hedgeByPercentile(cfg)
	return h
}

// errRouteTimeout is the cancel cause when the route timeout passes.
var errRouteTimeout = errors.New("proxy: route timeout waiting for upstream response headers")

// Shared static header values.
var (
	valHTTP  = []string{"http"}
	valHTTPS = []string{"https"}
	valEmpty = []string{""}
)

// serve forwards r to the route's upstream. What must happen when it
// returns is gathered in one cleanup with a single defer: the compiler
// open-codes at most 15 defers × returns, and a defer it does not
// open-code costs a record and the runtime's unwinding at each return.
func (h *handler) serve(w http.ResponseWriter, r *http.Request, s *pipeline.State) {
	var done cleanup
	defer done.run()
	s.Upstream = h.pool.Name()
	t := h.pool.PickFor(r, s, nil)
	if t == nil {
		h.noTarget(w, r, s)
		return
	}
	s.Target = t.String()

	// The outbound request, its headers and URL are built in a block:
	// pooled for a request that may take the fast path (below), given
	// back when it did; otherwise new, and left to the garbage collector
	// (a transport may still hold the request when it returns). Not on
	// the stack: serve's frame is under every upstream call and every
	// write to the client, and all of it must fit a goroutine's first
	// stacks (see docs/performance.md, "Stack depth").
	var o *outAlloc
	pooled := h.h1 != nil && (r.Body == nil || r.ContentLength == 0)
	if pooled {
		o = outPool.Get().(*outAlloc)
	} else {
		o = new(outAlloc)
	}
	tmpl := &o.req
	if !h.outboundWith(tmpl, o, w, r, s, t) {
		return
	}
	var body *bodyWatch
	if tmpl.Body != http.NoBody {
		body = &bodyWatch{rc: tmpl.Body}
		tmpl.Body = body
	}

	ctx := r.Context()
	var call grpcCall
	if call.on = isGRPC(r); call.on {
		var ok bool
		if ctx, ok = h.grpcDeadline(w, r, s, ctx, tmpl, &call, &done); !ok {
			return
		}
	}
	// The fast path: a bodiless request the HTTP/1.1 client sends itself
	// gets the route deadline as a value, so it needs no context and no
	// timer of its own. Retries and hedges (rare) arm them when they start.
	fast := pooled && tmpl.Body == http.NoBody && !call.on && h1.Handles(tmpl)
	// One clock reading starts both the route deadline and the upstream
	// timing; the upstream time then also counts what runs before the
	// call (the retry budget, the hedging check and, when sampled, the
	// client span's start), well under a microsecond without tracing.
	start := h.now()
	var tm deadline
	if h.timeout > 0 {
		tm.at = start.Add(h.timeout)
		if !fast {
			ctx, done.cancel = h.armDeadline(ctx, &tm)
		}
	}
	// Every client request grows the retry budget; retries and hedges
	// draw from it.
	h.pool.Budget().Request()
	if h.hedging() && h.hedgeable(r, tmpl, call) {
		// after is 0 while a percentile is not known yet: no hedge.
		if after := h.hedgeDelay(); after > 0 {
			// Hedged attempts copy the template and may outlive this
			// call: the block is left to the garbage collector.
			if fast && h.timeout > 0 {
				ctx, done.cancel = h.armDeadline(ctx, &tm)
			}
			h.hedged(w, r, s, ctx, tmpl, t, &tm, after)
			return
		}
	}

	// In flight until the answer (or the upgraded connection) is done;
	// the admin API reports it per target.
	t.Begin()
	// Tracing: a CLIENT span for this attempt, child of the request's
	// server span; its traceparent replaces the client's in the outbound
	// headers. Unsampled requests get no span and keep their headers.
	// Tracing off: this nil check is all it costs.
	actx := ctx
	var span tracing.Client
	if h.tracer != nil {
		actx, span = h.tracer.StartClient(ctx, tmpl.Header, r.Method, h.pool.Name(), t.Host)
	}
	// The template becomes the outbound request in place. On the fast
	// path the h1 client is done with it and its headers when it
	// returns, and nothing after this call reads them: the block goes
	// back to its pool then.
	out := o.bind(actx)
	if fast {
		done.block = o
	}
	var res *http.Response
	var err error
	if fast {
		res, err = h.h1.RoundTripUntil(out, tm.at)
		if errors.Is(err, h1.ErrDeadline) {
			err = errRouteTimeout
		}
	} else {
		res, err = h.rt.RoundTrip(out)
	}
	latency := h.now().Sub(start)
	s.UpstreamDuration = latency
	h.traceResult(span, res, err)
	outcome, cond := h.classify(r, ctx, body, res, err)
	if h.retries != nil && h.wantRetry(r, out, call, body, cond, res) {
		// The slow path: this attempt is over, another may follow.
		h.pool.Report(t, outcome, latency)
		span.End()
		t.End()
		if fast && h.timeout > 0 {
			ctx, done.cancel = h.armDeadline(ctx, &tm)
		}
		h.retry(w, r, s, ctx, call, body, &tm, start, t, res, err, cond)
		return
	}
	done.target, done.span = t, span
	if fast && err == nil {
		// respond copies the answer's header values (never its map) to
		// the client's header and reads or closes its body; nothing keeps
		// the response past serve.
		done.answer = res
	}
	h.pool.Report(t, outcome, latency)
	h.finish(w, r, s, ctx, call, body, &tm, out, res, err)
}

// grpcDeadline applies a gRPC call's grpc-timeout: the context that
// ends with it (its cancel left to done) and the time left, in the
// outbound header. False when it answered the client itself. Not inlined,
// to keep serve's frame small (see serve).
//
//go:noinline
func (h *handler) grpcDeadline(w http.ResponseWriter, r *http.Request, s *pipeline.State, ctx context.Context, tmpl *http.Request, call *grpcCall, done *cleanup) (context.Context, bool) {
	start := s.Start
	if start.IsZero() {
		start = h.now()
	}
	ctx, cancel, deadline, ok := grpcDeadlineCtx(ctx, r, start)
	if !ok {
		h.fail(w, r, s, problem.BadRequest, 0, "malformed grpc-timeout")
		return ctx, false
	}
	call.deadline = deadline
	if cancel != nil {
		done.grpcCancel = cancel
		left := deadline.Sub(h.now())
		if left <= 0 {
			h.fail(w, r, s, problem.UpstreamTimeout, 0, "the call's grpc-timeout passed before it was forwarded")
			return ctx, false
		}
		// The upstream gets the time that is left, not the client's
		// original budget.
		tmpl.Header["Grpc-Timeout"] = []string{formatGRPCTimeout(left)}
	}
	return ctx, true
}

// cleanup is what serve leaves to do when it returns, in this order:
// the attempt's span and in-flight count, the pooled block, the route
// deadline's context, the grpc-timeout's context. At most one route
// deadline context is armed per call (the slow path, or one of the
// hedge and retry paths, which exclude each other).
type cleanup struct {
	span       tracing.Client
	target     *upstream.Target
	block      *outAlloc
	cancel     context.CancelCauseFunc
	grpcCancel context.CancelFunc
	// answer is the fast path's upstream answer, given back to the h1
	// client when the request is done with it.
	answer *http.Response
}

func (c *cleanup) run() {
	if c.target != nil {
		c.span.End()
		c.target.End()
	}
	if c.block != nil {
		c.block.release()
	}
	if c.answer != nil {
		h1.Release(c.answer)
	}
	if c.cancel != nil {
		c.cancel(nil)
	}
	if c.grpcCancel != nil {
		c.grpcCancel()
	}
}

// deadline is the route timeout of one request: when it passes, and the
// timer that cancels the request's context then. Zero = no timeout; at
// set with no timer = the fast path's deadline, not armed (yet).
type deadline struct {
	at    time.Time
	timer *time.Timer
}

// armDeadline derives from ctx a context that the route timeout (tm.at)
// cancels with errRouteTimeout, and starts tm's timer for it.
func (h *handler) armDeadline(ctx context.Context, tm *deadline) (context.Context, context.CancelCauseFunc) {
	ctx, cancel := context.WithCancelCause(ctx)
	left := tm.at.Sub(h.now())
	if left <= 0 {
		cancel(errRouteTimeout)
		left = 0
	}
	tm.timer = time.AfterFunc(left, func() { cancel(errRouteTimeout) })
	return ctx, cancel
}

// finish delivers the last attempt's result to the client: the answer
// (streamed, or taken over for an upgrade) or the right problem.
func (h *handler) finish(w http.ResponseWriter, r *http.Request, s *pipeline.State, ctx context.Context, call grpcCall, body *bodyWatch, tm *deadline, out *http.Request, res *http.Response, err error) {
	if tm.timer != nil && !tm.timer.Stop() && err == nil {
		// The timeout fired as the headers arrived: the context is
		// already cancelled, so the body could not be read anyway.
		res.Body.Close()
		err = errRouteTimeout
	}
	if err != nil {
		h.roundTripError(w, r, s, ctx, call, body, err)
		return
	}
	if res.StatusCode == http.StatusSwitchingProtocols {
		h.upgrade(w, r, s, out, res)
		return
	}
	h.respond(w, r, s, res, ctx, call)
}

// noTarget answers when the pool has no usable target.
func (h *handler) noTarget(w http.ResponseWriter, r *http.Request, s *pipeline.State) {
	w.Header().Set("Retry-After", "1")
	h.fail(w, r, s, problem.UpstreamUnavailable, http.StatusServiceUnavailable, "upstream "+h.pool.Name()+" has no available target")
}

// traceResult records an attempt's result on its span.
func (h *handler) traceResult(span tracing.Client, res *http.Response, err error) {
	if h.tracer == nil {
		return
	}
	code := 0
	if err == nil {
		code = res.StatusCode
	}
	span.Result(code, err)
}

// outbound builds the upstream request into out. It constructs only what
// differs from the inbound request; header value slices are shared, never
// written. It reports false when it answered the client itself.
func (h *handler) outbound(out *http.Request, w http.ResponseWriter, r *http.Request, s *pipeline.State, t *upstream.Target) bool {
	return h.outboundWith(out, nil, w, r, s, t)
}

// outboundWith is outbound building into o (from outPool; nil = a new
// block).
func (h *handler) outboundWith(out *http.Request, o *outAlloc, w http.ResponseWriter, r *http.Request, s *pipeline.State, t *upstream.Target) bool {
	escaped := s.Path
	if escaped == "" {
		escaped = "/"
	}
	stripped := false
	if h.strip != "" {
		before := escaped
		escaped = stripPrefix(escaped, h.strip)
		stripped = escaped != before
	}
	if h.rewrite != nil || t.PathPrefix != "" {
		escaped = h.rewritePath(escaped, r, s, t)
	}
	unescaped := escaped
	if strings.IndexByte(escaped, '%') >= 0 {
		var err error
		if unescaped, err = url.PathUnescape(escaped); err != nil {
			h.fail(w, r, s, problem.InvalidPath, 0, "the upstream path is not validly escaped")
			return false
		}
	}
	// One allocation holds the URL and the backing of the header values
	// set below (every value slice is capped, so appending copies).
	if o == nil {
		o = &outAlloc{}
	}
	// Field by field, here and for out below: a composite literal would
	// be built in a temporary on the stack first.
	o.url = url.URL{}
	o.url.Scheme = t.URL.Scheme
	o.url.Host = t.Host
	o.url.Path = unescaped
	o.url.RawPath = escaped
	o.url.RawQuery = r.URL.RawQuery
	one := func(i int, v string) []string {
		o.vals[i] = v
		return o.vals[i : i+1 : i+1]
	}

	hdr := o.hdr
	if hdr == nil {
		hdr = make(http.Header, len(r.Header)+6)
	}
	for k, vv := range r.Header {
		hdr[k] = vv
	}
	peer := peerHost(r.RemoteAddr)
	if prior := hdr["X-Forwarded-For"]; s.PeerTrusted && len(prior) > 0 && peer != "" {
		hdr["X-Forwarded-For"] = one(0, strings.Join(prior, ", ")+", "+peer)
	} else if peer != "" {
		hdr["X-Forwarded-For"] = one(0, peer)
	} else {
		delete(hdr, "X-Forwarded-For")
	}
	if !s.PeerTrusted || len(hdr["X-Forwarded-Proto"]) == 0 {
		if r.TLS != nil {
			hdr["X-Forwarded-Proto"] = valHTTPS
		} else {
			hdr["X-Forwarded-Proto"] = valHTTP
		}
	}
	if !s.PeerTrusted || len(hdr["X-Forwarded-Host"]) == 0 {
		hdr["X-Forwarded-Host"] = one(1, r.Host)
	}
	if s.RequestID != "" {
		hdr["X-Request-Id"] = one(2, s.RequestID)
	}
	if s.Consumer != "" {
		hdr["X-Consumer-Name"] = one(3, s.Consumer)
		if len(s.Roles) > 0 {
			hdr["X-Consumer-Roles"] = one(4, strings.Join(s.Roles, ","))
		}
	}
	if _, ok := hdr["User-Agent"]; !ok {
		// Go's transport sends its own User-Agent when none is set; an
		// empty value sends none, as the client did.
		hdr["User-Agent"] = valEmpty
	}
	if stripped {
		// As Traefik and others do: the upstream can rebuild its public
		// URLs from the prefix it never saw.
		hdr["X-Forwarded-Prefix"] = h.stripVal
	}
	h.reqRules.Apply(hdr, r, s)

	host := t.Authority
	if h.pool.PreserveHost() {
		host = r.Host
	}
	if v := hdr["Host"]; len(v) > 0 {
		// A header rule set Host: the transport ignores Header["Host"],
		// so honour it here.
		host = v[0]
		delete(hdr, "Host")
	}
	*out = http.Request{}
	out.Method = r.Method
	out.URL = &o.url
	out.Proto, out.ProtoMajor, out.ProtoMinor = "HTTP/1.1", 1, 1
	out.Header = hdr
	out.Host = host
	out.ContentLength = r.ContentLength
	out.Body = r.Body
	if r.ContentLength == 0 || r.Body == nil {
		out.Body = http.NoBody
		out.ContentLength = 0
	} else if len(r.Trailer) > 0 {
		// Request trailers the client declared go upstream too: the
		// server fills the map as the body ends, and the transport reads
		// it after sending the body, both on the body's goroutine.
		out.Trailer = r.Trailer
	}
	return true
}

// rewritePath is the upstream path of a route that rewrites it or a
// target with a path prefix. Not inlined: its buffer would sit in
// outboundWith's frame.
//
//go:noinline
func (h *handler) rewritePath(escaped string, r *http.Request, s *pipeline.State, t *upstream.Target) string {
	var buf [256]byte
	b := append(buf[:0], t.PathPrefix...)
	if h.rewrite != nil {
		b = h.rewrite.Render(b, r, s)
	} else {
		b = append(b, escaped...)
	}
	return string(b)
}

// outAlloc groups what outbound would otherwise allocate one by one.
type outAlloc struct {
	req  http.Request
	url  url.URL
	vals [5]string
	// hdr is the outbound header map of a pooled block, kept (emptied)
	// between requests; nil in a block that is not pooled.
	hdr http.Header
}

// bind gives the request built in o the context ctx, in place, and
// returns it. Not inlined: the copy WithContext makes lives in bind's
// frame, not in serve's (see serve).
//
//go:noinline
func (o *outAlloc) bind(ctx context.Context) *http.Request {
	o.req = *o.req.WithContext(ctx)
	return &o.req
}

// outPool holds outAlloc blocks for the fast path. Their maps start with
// room for eight fields, one group of slots (a request from a
// command-line client plus the forwarding fields the proxy adds fits); a
// block whose map grew keeps its size. Measured: a hint of 16 allocates
// 1504 bytes at once, a hint of 8 56 bytes and a 336-byte group at the
// first field.
var outPool = sync.Pool{New: func() any { return &outAlloc{hdr: make(http.Header, 8)} }}

// maxPooledFields bounds the header map a pooled block keeps: a request
// with many more fields leaves its map to the garbage collector.
const maxPooledFields = 64

// release empties o and puts it back in outPool. Nothing may use the
// request built in it afterwards.
func (o *outAlloc) release() {
	if len(o.hdr) > maxPooledFields {
		return
	}
	clear(o.hdr)
	o.req = http.Request{}
	o.url = url.URL{}
	o.vals = [5]string{}
	outPool.Put(o)
}

// stripPrefix removes prefix from escaped when it is a whole-segment
// prefix: "/v1/users/7" - "/v1" = "/users/7"; "/v1" - "/v1" = "/".
func stripPrefix(escaped, prefix string) string {
	if !strings.HasPrefix(escaped, prefix) {
		return escaped
	}
	rest := escaped[len(prefix):]
	switch {
	case rest == "":
		return "/"
	case rest[0] == '/':
		return rest
	}
	return escaped
}

// peerHost returns the address part of a RemoteAddr ("ip:port").
func peerHost(remote string) string {
	if host, _, err := net.SplitHostPort(remote); err == nil {
		return host
	}
	return remote
}

// fail answers with a problem. status 0 = the code's status.
func (h *handler) fail(w http.ResponseWriter, r *http.Request, s *pipeline.State, code problem.Code, status int, detail string) {
	s.ErrorCode = string(code)
	problem.Write(w, r, problem.Problem{Code: code, Status: status, Detail: detail, RequestID: s.RequestID})
}

// roundTripError turns a failed round trip into the right answer.
func (h *handler) roundTripError(w http.ResponseWriter, r *http.Request, s *pipeline.State, ctx context.Context, call grpcCall, body *bodyWatch, err error) {
	if call.expired(ctx, h.now()) && r.Context().Err() == nil {
		// The call's own deadline, whatever broke first as a result
		// (the transport also closes the request body on cancel).
		h.fail(w, r, s, problem.UpstreamTimeout, 0, "the call's grpc-timeout passed before the upstream answered")
		return
	}
	if berr := body.err(); berr != nil {
		// The request body failed, not the upstream: never blame the
		// upstream (nor, later, count it against its health).
		var mbe *http.MaxBytesError
		var ne net.Error
		w.Header().Set("Connection", "close")
		switch {
		case errors.As(berr, &mbe):
			h.fail(w, r, s, problem.BodyTooLarge, 0, "the request body exceeds the route's limit")
		case r.Context().Err() != nil:
			h.clientGone(w, s)
		case errors.As(berr, &ne) && ne.Timeout():
			h.fail(w, r, s, problem.RequestTimeout, 0, "")
		default:
			h.fail(w, r, s, problem.BadRequest, 0, "the request body could not be read")
		}
		return
	}
	if r.Context().Err() != nil {
		h.clientGone(w, s)
		return
	}
	if errors.Is(err, errRouteTimeout) || context.Cause(ctx) == errRouteTimeout {
		h.fail(w, r, s, problem.UpstreamTimeout, 0, "upstream "+h.pool.Name()+" did not answer within the route timeout")
		return
	}
	var op *net.OpError
	var ne net.Error
	if !(errors.As(err, &op) && op.Op == "dial") && errors.As(err, &ne) && ne.Timeout() {
		// The transport's response_header timeout.
		h.fail(w, r, s, problem.UpstreamTimeout, 0, "upstream "+h.pool.Name()+" did not send response headers in time")
		return
	}
	if h1.MalformedAnswer(err) {
		h.fail(w, r, s, problem.BadGateway, 0, "upstream "+h.pool.Name()+" sent an answer that cannot be read safely")
		return
	}
	h.fail(w, r, s, problem.UpstreamUnavailable, 0, "upstream "+h.pool.Name()+" could not be reached")
}

// clientGone records a client that went away. The status reaches nobody;
// it is written so the access log's status recorder sees 499.
func (h *handler) clientGone(w http.ResponseWriter, s *pipeline.State) {
	s.ErrorCode = CodeClientClosed
	w.WriteHeader(StatusClientClosedRequest)
}

// bodyWatch wraps the request body to learn whether a failed round trip
// failed on our side (body too large, client gone, malformed chunking),
// and whether the body was touched at all: an attempt that never read it
// can be repeated with the same body. The transport reads and closes it
// from its own goroutine, hence the atomics.
type bodyWatch struct {
	rc    io.ReadCloser
	fail  atomic.Pointer[error]
	state atomic.Uint32
}

// bodyWatch.state bits.
const (
	bodyReading       uint32 = 1 << iota // a Read is in progress
	bodyRead                             // some bytes were read
	bodyClosed                           // Close was called on an untouched body
	bodyClosedThrough                    // Close reached the client's body
)

// errBodyClosed is what Read returns after the transport closed an
// untouched body (the body itself stays open for another attempt).
var errBodyClosed = errors.New("proxy: request body closed")

func (b *bodyWatch) Read(p []byte) (int, error) {
	for {
		st := b.state.Load()
		if st&bodyClosed != 0 {
			return 0, errBodyClosed
		}
		if b.state.CompareAndSwap(st, st|bodyReading) {
			break
		}
	}
	n, err := b.rc.Read(p)
	if n > 0 {
		b.state.Or(bodyRead)
	}
	b.state.And(^bodyReading)
	if err != nil && !errors.Is(err, io.EOF) {
		b.fail.CompareAndSwap(nil, &err)
	}
	return n, err
}

// Close closes the client's body only once the transport has started on
// it (a read in progress must be unblocked; a half-sent body cannot be
// sent again anyway). An untouched body stays open for a retry.
func (b *bodyWatch) Close() error {
	for {
		st := b.state.Load()
		if st&(bodyReading|bodyRead) != 0 {
			b.state.Or(bodyClosedThrough)
			return b.rc.Close()
		}
		if b.state.CompareAndSwap(st, st|bodyClosed) {
			return nil
		}
	}
}

// untouched reports whether no byte of the body was read nor the body
// closed through: a new attempt may send it.
func (b *bodyWatch) untouched() bool {
	return b == nil || b.state.Load()&(bodyReading|bodyRead|bodyClosedThrough) == 0 && b.fail.Load() == nil
}

func (b *bodyWatch) err() error {
	if b == nil {
		return nil
	}
	if p := b.fail.Load(); p != nil {
		return *p
	}
	return nil
}
