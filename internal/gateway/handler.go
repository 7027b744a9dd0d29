package gateway

import (
	"bufio"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/portunus-gw/portunus/internal/config"
	"github.com/portunus-gw/portunus/internal/edge/hygiene"
	"github.com/portunus-gw/portunus/internal/pipeline"
	"github.com/portunus-gw/portunus/internal/problem"
	"github.com/portunus-gw/portunus/internal/proxy"
	"github.com/portunus-gw/portunus/internal/router"
	"github.com/portunus-gw/portunus/internal/stats"
	"github.com/portunus-gw/portunus/internal/telemetry"
	"github.com/portunus-gw/portunus/internal/tracing"
)

// Gateway is the handler of every public listener. It reads the current
// snapshot once per request, so a reload never changes a request midway.
type Gateway struct {
	snap    atomic.Pointer[Snapshot]
	metrics *telemetry.Metrics
	// unrouted records requests no route took (404, 405, 400).
	unrouted *telemetry.RouteMetrics
	ids      *requestIDs
	pool     sync.Pool
	// stats feeds /api/v1/stats: the ring and the current snapshot's
	// recorders by route index (adminapi_stats.go; rebuilt by Swap).
	stats    *stats.Ring
	statsTab atomic.Pointer[statsTable]
}

// NewGateway returns a gateway with no snapshot; Swap installs one.
func NewGateway(m *telemetry.Metrics) *Gateway {
	g := &Gateway{metrics: m, unrouted: m.Route(""), ids: newRequestIDs(), stats: stats.New(nil)}
	g.pool.New = func() any { return &exchange{g: g} }
	return g
}

// Snapshot returns the current snapshot (nil before the first Swap).
func (g *Gateway) Snapshot() *Snapshot { return g.snap.Load() }

// Swap installs s as the current snapshot and returns the previous one.
func (g *Gateway) Swap(s *Snapshot) *Snapshot {
	g.installStats(s) // recorders first, so requests on s find them
	return g.snap.Swap(s)
}

// exchange is the pooled per-request working set.
type exchange struct {
	g     *Gateway // whose pool it is; kept across uses
	state pipeline.State
	rec   recorder
	// snap is the snapshot the request is served with (read once).
	snap  *Snapshot
	req   router.Request
	match router.Match[*Route]
	// body counts the request body bytes read (metrics); nil when the
	// request has no body or matched no route.
	body *telemetry.BodyCounter
	// span is the request's tracing SERVER span (zero: not sampled or
	// tracing off).
	span tracing.Server
	// unwatch ends the body watch (hygiene.WatchBody) when the request
	// is done; nil before routing.
	unwatch func()
	// ans is the answer front chose to give itself (see answer).
	ans problem.Problem
	// entry is the access log line (logAccess); zero between requests.
	entry telemetry.Entry
}

var (
	methodOverrideHeaders = [...]string{"X-Http-Method-Override", "X-Http-Method", "X-Method-Override"}
	valClose              = []string{"close"}
)

// listenerHandler serves one listener: the gateway with that listener's
// limits.
type listenerHandler struct {
	g              *Gateway
	maxURI         int
	maxHeaders     int
	maxHeaderBytes int
	// bodyTimeout is body_read_timeout: the longest wait for the next
	// request body bytes (408 after; see hygiene.WatchBody).
	bodyTimeout time.Duration
}

// ListenerHandler returns the handler for a listener with limits lim
// (nil: no limits beyond net/http's).
func (g *Gateway) ListenerHandler(lim *config.Limits) http.Handler {
	h := &listenerHandler{g: g}
	if lim != nil {
		h.maxURI, h.maxHeaders, h.maxHeaderBytes = int(lim.MaxURIBytes), lim.MaxHeaders, int(lim.MaxHeaderBytes)
		h.bodyTimeout = lim.BodyReadTimeout.D()
	}
	return h
}

// ServeHTTP serves r with no listener limits.
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := listenerHandler{g: g}
	h.ServeHTTP(w, r)
}

// ServeHTTP runs the fixed front of the pipeline — request id, client
// address, path normalization, header sanitation, routing — and then the
// matched route's compiled chain.
//
// The route's chain, the proxy and the upstream call all run below this
// frame on the connection's stack (4 KiB while it fits), so it keeps
// nothing but the chain call: the work before (begin, front) and after
// (done) is in functions of their own, off the stack while the chain
// runs. It has a single defer, and the early returns live in front: a
// function with more defers × returns than the compiler open-codes (15)
// pays for each defer at run time (measured: 1–2 % of the CPU at 1000
// busy connections).
func (h *listenerHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	x, r := h.g.begin(w, r)
	defer x.done(r)
	rt, rr := x.front(r, h)
	if rt == nil {
		x.answer(r)
		return
	}
	rt.Handler(&x.rec, rr, &x.state)
}

// startedAt is a request context that knows when its server read the
// request's head (the HTTP/1.x server's does).
type startedAt interface{ Started() time.Time }

// requestStart is when r began: its server's reading of the clock when
// the context has one, else now.
func requestStart(r *http.Request) time.Time {
	if c, ok := r.Context().(startedAt); ok {
		if t := c.Started(); !t.IsZero() {
			return t
		}
	}
	return time.Now()
}

// begin takes an exchange for r and records the request's start: its
// id, the metrics, the tracing span (r may come back with it in its
// context).
//
//go:noinline
func (g *Gateway) begin(w http.ResponseWriter, r *http.Request) (*exchange, *http.Request) {
	snap := g.snap.Load()
	x := g.pool.Get().(*exchange)
	x.snap = snap
	s := &x.state
	s.Start = requestStart(r)
	x.rec.reset(w)
	rw := &x.rec

	var idVal []string
	s.RequestID, idVal = g.ids.fromRequest(r.Header["X-Request-Id"])
	rw.Header()["X-Request-Id"] = idVal
	g.metrics.RequestStarted() // nil-safe: a nil *Metrics records nothing
	// Tracing (internal/tracing): a sampled request gets its SERVER span
	// in r's context, before done captures r; tracing off costs this
	// nil check only.
	if snap != nil && snap.tracer != nil {
		r, x.span = snap.tracer.StartServer(r, s.Start)
	}
	return x, r
}

// done ends a request begin started: the body watch, the access log and
// metrics (finish), then the exchange goes back to the pool.
func (x *exchange) done(r *http.Request) {
	if x.unwatch != nil {
		x.unwatch()
	}
	g := x.g
	g.finish(x.snap, r, x)
	g.release(x)
}

// front does the checks and the routing. It returns the matched route
// and the request its chain is to serve, or a nil route and the answer
// in x.ans. It writes no answer itself: writing one may read what the
// client sent of the body (h1server), deep below the caller, so answer
// does it from a smaller frame.
//
//go:noinline
func (x *exchange) front(r *http.Request, lim *listenerHandler) (*Route, *http.Request) {
	snap := x.snap
	s := &x.state
	rw := &x.rec
	if snap == nil {
		x.fail(problem.UpstreamUnavailable, "no configuration loaded")
		x.ans.Status = http.StatusServiceUnavailable
		return nil, nil
	}

	peer := peerAddr(r.RemoteAddr)
	s.PeerTrusted = peer.IsValid() && snap.trusts(peer)
	s.ClientIP = peer
	if s.PeerTrusted {
		s.ClientIP = clientFromXFF(r.Header["X-Forwarded-For"], peer, snap)
	}

	// Listener limits net/http does not enforce itself: the length of the
	// request target (414) and the number of header fields (431). The
	// connection is closed after such an answer.
	if lim.maxURI > 0 && len(r.RequestURI) > lim.maxURI {
		rw.Header()["Connection"] = []string{"close"}
		x.fail(problem.URITooLong, "the request target is longer than "+strconv.Itoa(lim.maxURI)+" bytes")
		return nil, nil
	}
	if lim.maxHeaders > 0 || lim.maxHeaderBytes > 0 {
		// net/http allows 4 KiB of slack over MaxHeaderBytes; count
		// the block as it was sent to hold the configured limit exactly.
		fields, size := 0, len(r.Method)+len(r.RequestURI)+len(r.Proto)+4
		for k, vs := range r.Header {
			fields += len(vs)
			for _, v := range vs {
				size += len(k) + len(v) + 4
			}
		}
		if lim.maxHeaders > 0 && fields > lim.maxHeaders {
			rw.Header()["Connection"] = []string{"close"}
			x.fail(problem.HeadersTooLarge, "more than "+strconv.Itoa(lim.maxHeaders)+" header fields")
			return nil, nil
		}
		if lim.maxHeaderBytes > 0 && size > lim.maxHeaderBytes {
			rw.Header()["Connection"] = []string{"close"}
			x.fail(problem.HeadersTooLarge, "the header block is larger than "+strconv.Itoa(lim.maxHeaderBytes)+" bytes")
			return nil, nil
		}
	}
	// Protocol hygiene (internal/edge/hygiene): framing net/http hid
	// from us (chunked, possibly with a Content-Length it removed;
	// HTTP/1.0) ends the connection after the answer, and a malformed
	// WebSocket handshake is refused before it reaches an upstream.
	if hygiene.MustClose(r) {
		rw.Header()["Connection"] = valClose
	}
	if d := hygiene.CheckUpgrade(r); d != "" {
		rw.Header()["Connection"] = valClose
		x.fail(problem.BadRequest, d)
		return nil, nil
	}
	if r.Method == http.MethodConnect {
		rw.Header()["Allow"] = []string{"GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS"}
		x.fail(problem.MethodNotAllowed, "CONNECT is not supported")
		return nil, nil
	}
	if r.RequestURI == "*" {
		// OPTIONS * asks about the server, not a resource: answer here.
		if r.Method == http.MethodOptions {
			rw.Header()["Allow"] = []string{"GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS"}
			rw.Header()["Content-Length"] = []string{"0"}
			x.ans.Status = http.StatusOK
			return nil, nil
		}
		x.fail(problem.InvalidPath, "the request target * is only valid with OPTIONS")
		return nil, nil
	}

	path, encodedSep, err := router.Normalize(rawPath(r))
	if err != nil {
		x.fail(problem.InvalidPath, err.Error())
		return nil, nil
	}
	s.Path = path

	// Method override is read before the headers are sanitized (which
	// removes it) and honoured only when the route it leads to allows it.
	override := ""
	if r.Method == http.MethodPost {
		for _, k := range methodOverrideHeaders {
			if v := r.Header[k]; len(v) > 0 {
				override = strings.ToUpper(strings.TrimSpace(v[0]))
				break
			}
		}
	}
	proxy.SanitizeInbound(r.Header, s.PeerTrusted)

	x.req = router.Request{Host: r.Host, Path: path, Method: r.Method, Header: r.Header}
	if isPreflight(r) {
		x.req.Method = r.Header["Access-Control-Request-Method"][0]
	}
	res := router.NotFound
	if override != "" && validMethod(override) {
		x.req.Method = override
		res = snap.router.Match(&x.req, &x.match)
		if res == router.Matched && x.match.Value.AllowMethodOverride {
			r.Method = override
		} else {
			x.req.Method = r.Method
			res = router.NotFound
		}
	}
	if res == router.NotFound {
		res = snap.router.Match(&x.req, &x.match)
	}
	switch res {
	case router.NotFound:
		x.fail(problem.NoRoute, "no route matches "+r.Method+" "+path)
		return nil, nil
	case router.MethodNotAllowed:
		rw.Header()["Allow"] = []string{strings.Join(snap.router.Allowed(&x.req), ", ")}
		x.fail(problem.MethodNotAllowed, "the route does not accept "+x.req.Method)
		return nil, nil
	}
	rt := x.match.Value
	s.RouteName = rt.Name
	if encodedSep && !rt.AllowEncodedSlash {
		x.fail(problem.InvalidPath, "encoded '/', '\\' or NUL in the path is not allowed on this route")
		return nil, nil
	}
	s.Params = x.match.Params
	// body_read_timeout (hygiene.WatchBody): the route sees a request
	// whose body reads fail after bodyTimeout without bytes.
	r, x.unwatch = hygiene.WatchBody(rw, r, lim.bodyTimeout)
	// Metrics count the request body bytes actually read; only a body
	// that exists is wrapped (one small allocation), so GETs cost nothing.
	if r.Body != nil && r.Body != http.NoBody && rt.metrics != nil {
		x.body = telemetry.NewBodyCounter(r.Body)
		r.Body = x.body
	}
	return rt, r
}

// fail notes the problem front answers with.
func (x *exchange) fail(code problem.Code, detail string) {
	// Field by field: a composite literal would be a temporary in
	// front's frame at each of its uses (release zeroes x.ans).
	x.state.ErrorCode = string(code)
	x.ans.Code, x.ans.Detail, x.ans.RequestID = code, detail, x.state.RequestID
}

// answer writes the answer front chose: a problem, or a bare status with
// the header fields front set (OPTIONS *).
//
//go:noinline
func (x *exchange) answer(r *http.Request) {
	if x.ans.Code == "" {
		x.rec.WriteHeader(x.ans.Status)
		return
	}
	problem.Write(&x.rec, r, x.ans)
}

// finish records the request in metrics and the access log.
func (g *Gateway) finish(snap *Snapshot, r *http.Request, x *exchange) {
	g.metrics.RequestFinished()
	s := &x.state
	g.metrics.ObserveAuth(s.AuthMethod, s.AuthError)
	status := x.rec.status
	if status == 0 {
		status = http.StatusOK
		if r.Context().Err() != nil {
			status = 499 // client closed the request before an answer
		}
	}
	d := time.Since(s.Start)
	var rt *Route
	if s.RouteName != "" {
		rt = x.match.Value
	}
	if rt != nil {
		rt.metrics.Observe(r.Method, status, s.Upstream, d)
		rt.metrics.Bytes(x.body.N(), x.rec.bytes)
		// An upstream call happened iff the proxy timed one; it failed
		// (code "error") iff the gateway then answered with its own error.
		if s.UpstreamDuration > 0 {
			rt.upstreamMetrics(s.Upstream).Observe(s.Target, status, s.ErrorCode != "", s.UpstreamDuration)
		}
	} else {
		g.unrouted.Observe(r.Method, status, "", d)
		g.unrouted.Bytes(0, x.rec.bytes)
	}
	g.recordStats(snap, rt, s, status, d) // the admin API's 15-minute ring
	// Tracing: end the server span (a no-op unless sampled).
	x.span.End(r, s, status)
	if snap != nil && snap.accessLog.Enabled() {
		logAccess(snap, r, x, status, d)
	}
}

// logAccess writes the request's access log line. The entry is the
// exchange's, not a local: the log's formatting runs below this frame,
// on the connection's stack.
//
//go:noinline
func logAccess(snap *Snapshot, r *http.Request, x *exchange, status int, d time.Duration) {
	s := &x.state
	// Field by field into the zero entry: a composite literal would be
	// built in a temporary here first.
	e := &x.entry
	e.Time, e.RequestID, e.ClientIP, e.Method = s.Start, s.RequestID, addrString(s.ClientIP), r.Method
	e.Host, e.Path, e.Proto, e.Route, e.Upstream = r.Host, s.Path, r.Proto, s.RouteName, s.Upstream
	e.Target, e.Consumer, e.AuthMethod, e.AuthError = s.Target, s.Consumer, s.AuthMethod, s.AuthError
	e.UserAgent, e.Error = r.UserAgent(), s.ErrorCode
	e.Status, e.BytesIn, e.BytesOut, e.Duration = status, r.ContentLength, x.rec.bytes, d
	e.UpstreamDuration, e.CacheStatus, e.RateLimit = s.UpstreamDuration, s.CacheStatus, s.RateLimit
	e.TraceID, e.SpanID = x.span.IDs()
	if s.Path == "" {
		e.Path = r.URL.Path
	}
	if x.body != nil {
		e.BytesIn = x.body.N() // what was read, not what was announced
	}
	if e.BytesIn < 0 {
		e.BytesIn = 0
	}
	snap.accessLog.Log(e)
	// The pooled exchange keeps nothing of the request. (Were Log to
	// panic, release would not run: the exchange is never reused.)
	*e = telemetry.Entry{}
}

func (g *Gateway) release(x *exchange) {
	x.state.Reset()
	x.rec.reset(nil)
	x.req = router.Request{}
	x.match = router.Match[*Route]{}
	x.body = nil
	x.span = tracing.Server{}
	x.unwatch = nil
	x.snap = nil
	x.ans = problem.Problem{}
	g.pool.Put(x)
}

func addrString(a netip.Addr) string {
	if !a.IsValid() {
		return ""
	}
	return a.String()
}

// rawPath is the path of the request target as the client sent it.
func rawPath(r *http.Request) string {
	u := r.RequestURI
	if len(u) > 0 && u[0] == '/' {
		if i := strings.IndexByte(u, '?'); i >= 0 {
			return u[:i]
		}
		return u
	}
	// absolute-form (GET http://host/path): the URL parser split it.
	return r.URL.EscapedPath()
}

func isPreflight(r *http.Request) bool {
	if r.Method != http.MethodOptions {
		return false
	}
	m := r.Header["Access-Control-Request-Method"]
	return len(m) == 1 && m[0] != "" && len(r.Header["Origin"]) > 0 && validMethod(m[0])
}

// validMethod accepts RFC 9110 token methods in upper case.
func validMethod(m string) bool {
	if m == "" || len(m) > 32 {
		return false
	}
	for i := 0; i < len(m); i++ {
		c := m[i]
		if c < 'A' || c > 'Z' {
			if c != '-' && c != '_' {
				return false
			}
		}
	}
	return true
}

// peerAddr parses the TCP peer; IPv4-mapped IPv6 addresses are unmapped so
// that 10.0.0.0/8 matches either spelling.
func peerAddr(remote string) netip.Addr {
	ap, err := netip.ParseAddrPort(remote)
	if err != nil {
		host, _, err := net.SplitHostPort(remote)
		if err != nil {
			return netip.Addr{}
		}
		a, err := netip.ParseAddr(host)
		if err != nil {
			return netip.Addr{}
		}
		return a.Unmap()
	}
	return ap.Addr().Unmap()
}

// clientFromXFF returns the right-most X-Forwarded-For hop that is not a
// trusted proxy: everything left of it could have been written by the
// client.
func clientFromXFF(xff []string, peer netip.Addr, snap *Snapshot) netip.Addr {
	client := peer
	for i := len(xff) - 1; i >= 0; i-- {
		v := xff[i]
		for len(v) > 0 {
			j := strings.LastIndexByte(v, ',')
			hop := strings.TrimSpace(v[j+1:])
			if j < 0 {
				v = ""
			} else {
				v = v[:j]
			}
			if hop == "" {
				continue
			}
			a, err := netip.ParseAddr(hop)
			if err != nil {
				return client
			}
			a = a.Unmap()
			client = a
			if !snap.trusts(a) {
				return a
			}
		}
	}
	return client
}

// recorder captures the status and size of the answer for metrics and the
// access log while passing flushes and hijacks through.
type recorder struct {
	w      http.ResponseWriter
	status int
	bytes  int64
}

func (w *recorder) reset(rw http.ResponseWriter) { *w = recorder{w: rw} }

func (w *recorder) Header() http.Header { return w.w.Header() }

func (w *recorder) WriteHeader(code int) {
	if w.status == 0 || (w.status >= 100 && w.status < 200 && w.status != http.StatusSwitchingProtocols) {
		w.status = code
	}
	w.w.WriteHeader(code)
}

func (w *recorder) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.w.Write(p)
	w.bytes += int64(n)
	return n, err
}

func (w *recorder) Flush() {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	if f, ok := w.w.(http.Flusher); ok {
		f.Flush()
	}
}

func (w *recorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	hj, ok := w.w.(http.Hijacker)
	if !ok {
		return nil, nil, http.ErrNotSupported
	}
	c, brw, err := hj.Hijack()
	if err == nil {
		w.status = http.StatusSwitchingProtocols
	}
	return c, brw, err
}

// Unwrap lets http.ResponseController reach the server's writer.
func (w *recorder) Unwrap() http.ResponseWriter { return w.w }
