package h1server

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/portunus-gw/portunus/internal/sockio"
	"golang.org/x/net/http/httpguts"
)

// conn is one client connection and its serving goroutine.
type conn struct {
	s          *Server
	rwc        net.Conn
	remoteAddr string
	begun      bool // begin ran: the connection has served before
	// state is the http.ConnState in the low byte and above it the
	// Unix second the connection became new (read by Shutdown), or 1.
	state atomic.Uint64

	cr   connReader
	bufr *bufio.Reader
	// rdlWrites counts the read-deadline changes other than
	// awaitRequest's hot deadline (setReadDeadline, setDeadline; some
	// come from other goroutines). hotDeadline is the hot deadline
	// awaitRequest last set and hotWrites the count it saw then: while
	// the count is unchanged, that deadline is still the socket's.
	rdlWrites   atomic.Uint32
	hotWrites   uint32
	hotDeadline time.Time
	// raw is rwc's syscall.RawConn for the liveness peek; nil when rwc
	// has none (a wrapped connection).
	raw      syscall.RawConn
	rawDone  bool
	peek     func(fd uintptr) bool
	readable func(fd uintptr) bool
	// rawErr is what waitReadable's non-blocking read ended with.
	rawErr  error
	peekBuf [1]byte
	peekRes int8
	// sr and sw read requests from and write answers to raw once it is
	// known (connReader.readSocket, out).
	sr sockio.Reader
	sw sockio.Writer
	// waited: waitReadable's wait went to the poller (sockio.Polled on
	// its wake).
	waited bool

	hijacked atomic.Bool
	// keepAliveOn: TCP keep-alive was switched on (keepalive.go).
	keepAliveOn atomic.Bool
	// res is the current request's response, new for each request so
	// that a handler's goroutine writing after it returned can never
	// reach the next request's answer.
	res *response
	// expect: the request being read asked for 100-continue.
	expect bool
	parkState
	// linger: the client may still be sending (a body the handler did
	// not read, a request that failed to parse); closing at once could
	// reset the connection before it reads the answer.
	linger bool
}

// lingerTime and lingerBytes bound how long and how much a closing
// connection keeps reading so its last answer is not lost to a reset.
const (
	lingerTime  = 500 * time.Millisecond
	lingerBytes = 1 << 20
)

// lingerClose half-closes the connection and reads what the client still
// sends until it closes its side, within bounds.
func (c *conn) lingerClose() {
	cw, ok := c.rwc.(interface{ CloseWrite() error })
	if !ok || cw.CloseWrite() != nil {
		return
	}
	_ = c.setReadDeadline(time.Now().Add(lingerTime))
	_, _ = io.CopyN(io.Discard, c.rwc, lingerBytes)
}

var bufrPool = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, 4096) }}

func newConn(s *Server, rwc net.Conn) *conn {
	c := &conn{s: s, rwc: rwc}
	c.cr.c = c
	c.cr.cond.L = &c.cr.mu
	c.cr.remain = -1
	c.peek = c.peekFD
	c.readable = c.readableFD
	return c
}

func (c *conn) setState(st http.ConnState) {
	switch st {
	case http.StateHijacked, http.StateClosed:
		c.s.trackConn(c, false)
	}
	// Only a new connection's second is ever read (Shutdown's 5 s rule
	// for connections that sent nothing); the others need only be set,
	// and skip a clock read twice per request.
	sec := int64(1)
	if st == http.StateNew {
		sec = time.Now().Unix()
	}
	c.state.Store(uint64(sec)<<8 | uint64(st))
	if f := c.s.ConnState; f != nil {
		f(c.rwc, st)
	}
}

func (c *conn) getState() (http.ConnState, int64) {
	v := c.state.Load()
	return http.ConnState(v & 0xff), int64(v >> 8)
}

// maxPostHandlerRead is how much of a request body the handler left
// unread the server reads to keep the connection (net/http's value).
const maxPostHandlerRead = 256 << 10

// discardTimeout bounds reading that leftover body.
const discardTimeout = 5 * time.Second

// begin notes a new connection's remote address before its first
// request. On the connection's goroutine, not the accept loop's: a
// PROXY protocol connection reads its header to know it. Not inlined:
// its frame would sit under every request's.
//
//go:noinline
func (c *conn) begin() {
	c.begun = true
	c.remoteAddr = c.rwc.RemoteAddr().String()
}

// closeParked ends a parked connection (idle timeout, shutdown): it has
// no goroutine to do it.
func (c *conn) closeParked() {
	_ = c.rwc.Close()
	c.setState(http.StateClosed)
}

// loop serves requests until the connection closes, is hijacked, or is
// parked while it idles; a new connection or one that resumes from the
// idle poller.
func (c *conn) loop() {
	first := !c.begun
	if first {
		c.begin()
	}
	parked := false
	defer func() {
		if parked {
			return // the idle poller owns the connection now
		}
		if v := recover(); v != nil && v != http.ErrAbortHandler {
			c.s.logf("h1server: panic serving %s: %v\n%s", c.remoteAddr, v, debug.Stack())
		}
		w := c.res
		if w != nil && w.ctx != nil {
			w.ctx.cancel() // after a panic; a no-op otherwise
		}
		if c.hijacked.Load() {
			return
		}
		if c.linger {
			c.lingerClose()
		}
		_ = c.rwc.Close()
		if w != nil && w.body != nil {
			b := w.body
			b.tearDown() // a late read must not reach a pooled reader
		}
		if c.bufr != nil {
			c.bufr.Reset(nil)
			bufrPool.Put(c.bufr)
			c.bufr = nil
		}
		c.setState(http.StateClosed)
	}()

	for {
		switch c.awaitRequest(first) {
		case awaitClose:
			return
		case awaitParked:
			parked = true
			return
		}
		first = false
		a, err := c.readRequest()
		if err != nil {
			c.fail(err)
			return
		}
		c.setState(http.StateActive)
		keep := c.serveOne(a)
		if !keep || c.s.inShutdown.Load() {
			return
		}
		c.setState(http.StateIdle)
		if c.s.inShutdown.Load() {
			return
		}
	}
}

// What awaitRequest found.
const (
	awaitReady  = iota // a request has begun: read it
	awaitClose         // close quietly
	awaitParked        // idle: the connection went to the idle poller
)

// awaitRequest waits for the first byte of the next request under the
// idle timeout (the header timeout on a new connection), then bounds
// the rest of the head by the header timeout. A connection idle for
// hotWait is parked: no goroutine and no buffer while it waits.
func (c *conn) awaitRequest(first bool) int {
	idle := c.s.IdleTimeout
	if first || idle <= 0 {
		idle = c.s.ReadHeaderTimeout
	}
	if c.bufr == nil || c.bufr.Buffered() == 0 {
		start := time.Now()
		// A busy client sends its next request within hotWait; one that
		// does not is idle, and waits without its goroutine too.
		hot := hotWait
		if idle > 0 && idle < hot {
			hot = idle
		}
		if !c.hotArmed(start, hot, idle) {
			c.hotDeadline, c.hotWrites = start.Add(hot), c.rdlWrites.Load()
			_ = c.rwc.SetReadDeadline(c.hotDeadline)
		}
		// Let the other runnable connections go first: on a busy server
		// this client's next request usually arrives meanwhile, and the
		// read below finds it instead of finding nothing (a system call)
		// and parking. On an idle server it costs a trip through the
		// scheduler.
		//
		// Only while the network is being polled, though (yieldPolled).
		if sockio.PolledWithin(start, yieldPolled) {
			runtime.Gosched()
		}
		err := c.waitReadable()
		if err == nil {
			c.takeBuffer()
			_, err = c.bufr.Peek(1)
		}
		if err != nil {
			if !isTimeout(err) || hot == idle {
				return awaitClose
			}
			var until time.Time
			if idle > 0 {
				until = start.Add(idle)
			}
			if c.park(until) {
				return awaitParked
			}
			if !c.waitIdle(until) {
				return awaitClose
			}
		}
	}
	c.takeBuffer()
	// The head is bounded from its first byte; when it is already
	// complete in the buffer no further read can need the bound.
	if !headComplete(c.bufr) {
		if d := c.s.ReadHeaderTimeout; d > 0 {
			_ = c.setReadDeadline(time.Now().Add(d))
		} else {
			_ = c.setReadDeadline(time.Time{}) // the idle bound ends here
		}
	}
	return awaitReady
}

// hotWait is how long a connection keeps its read buffer while it waits
// for the next request.
const hotWait = 2 * time.Second

// yieldPolled: awaitRequest yields to the other connections only when
// the runtime's poller has woken a waiting reader within this long. The
// scheduler polls the network when it runs out of runnable goroutines
// (or every 10 ms from its monitor thread), and on a saturated server
// connections that keep yielding keep it from running out: the ones
// waiting for the poller were served after milliseconds (cache hits at
// 98 % CPU: p99 5.7 ms with the yield on every request, 1.9 ms with
// none, 1.8 ms with this bound). Without the yield the queue drains and
// the poller runs; while it is polling, the yield saves reads that find
// nothing. Only waits on raw sockets record the poller's wake-ups: a
// gateway whose clients all come through a PROXY-protocol wrapper and
// whose upstreams all use TLS records none, and does not yield.
const yieldPolled = 500 * time.Microsecond

// hotArmed reports whether the hot deadline an earlier wait set is still
// the socket's and between hot/2 and hot away: a busy connection keeps it
// instead of setting it for every request (the runtime's timer update
// and clock reads), and parks after hot/2 to hot of silence. A hot
// deadline that closes the connection (hot is the idle timeout) is
// always set, to the full timeout.
func (c *conn) hotArmed(start time.Time, hot, idle time.Duration) bool {
	if idle > 0 && hot >= idle {
		return false
	}
	left := c.hotDeadline.Sub(start)
	return left >= hot/2 && left <= hot && c.rdlWrites.Load() == c.hotWrites
}

// setReadDeadline and setDeadline change the socket's read deadline
// anywhere but awaitRequest's hot deadline.
func (c *conn) setReadDeadline(t time.Time) error {
	c.rdlWrites.Add(1)
	return c.rwc.SetReadDeadline(t)
}

func (c *conn) setDeadline(t time.Time) error {
	c.rdlWrites.Add(1)
	return c.rwc.SetDeadline(t)
}

// waitIdle waits for the next request's first byte, until the deadline,
// on a connection the idle poller could not take. It reports false when
// the connection should close.
func (c *conn) waitIdle(until time.Time) bool {
	_ = c.setReadDeadline(until)
	err := c.waitReadable()
	if err == nil {
		c.takeBuffer()
		_, err = c.bufr.Peek(1)
	}
	return err == nil
}

// waitReadable waits, under the read deadline already set, until the
// next request's first bytes (or the end of the stream) are in the read
// buffer, holding the buffer only while there is something in it: a
// connection whose client has not sent yet keeps none (4 KiB per
// connection, most of them at a thousand busy connections). The read
// buffer is empty when it is called. The system calls are those of a
// plain read: one that finds the bytes, or one that finds nothing and,
// after the poller's wake-up, one that finds them. Without raw access the
// buffered read waits instead.
func (c *conn) waitReadable() error {
	c.rawOnce()
	if c.raw == nil {
		c.takeBuffer()
		_, err := c.bufr.Peek(1)
		return err
	}
	if c.bufr != nil {
		c.bufr.Reset(nil)
		bufrPool.Put(c.bufr)
		c.bufr = nil
	}
	if h := testHookWaitReadable.Load(); h != nil {
		(*h)(c)
	}
	c.rawErr, c.waited = nil, false
	if err := c.raw.Read(c.readable); err != nil {
		return err
	}
	return c.rawErr
}

// testHookWaitReadable, when set, sees each connection as it starts
// waiting for its next request (tests: the buffer it holds then).
var testHookWaitReadable atomic.Pointer[func(*conn)]

// takeBuffer gives the connection a read buffer if it has none.
func (c *conn) takeBuffer() {
	if c.bufr == nil {
		c.bufr = bufrPool.Get().(*bufio.Reader)
		c.bufr.Reset(&c.cr)
	}
}

// readableFD is the RawConn callback of waitReadable: it fills the read
// buffer with one non-blocking read of the socket. Nothing there: the
// buffer goes back to the pool and the poller waits (false). Bytes, the
// end of the stream or an error: done (true; an error is kept in rawErr).
func (c *conn) readableFD(fd uintptr) bool {
	if c.waited {
		sockio.Polled() // the poller woke this wait: it is polling
	}
	c.takeBuffer()
	c.cr.rawMode, c.cr.rawFD = true, int(fd)
	_, err := c.bufr.Peek(1)
	c.cr.rawMode = false
	if err == sockio.ErrWouldBlock {
		c.bufr.Reset(nil)
		bufrPool.Put(c.bufr)
		c.bufr = nil
		c.waited = true
		return false
	}
	c.rawErr = err
	return true
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// absoluteForm reports whether the request line in the buffer has an
// absolute-form target (http://host/path), by its first byte.
func absoluteForm(b *bufio.Reader) bool {
	p, _ := b.Peek(b.Buffered())
	sp := bytes.IndexByte(p, ' ')
	if sp < 0 || sp+1 >= len(p) {
		return false
	}
	if string(p[:sp]) == http.MethodConnect {
		return false // authority-form
	}
	return p[sp+1] != '/' && p[sp+1] != '*'
}

// hasHostField reports whether the head at the start of raw has a Host
// field (RFC 9112 §3.2: an HTTP/1.1 request without one is answered
// 400, whatever its target says).
func hasHostField(raw []byte) bool {
	head := unsafeString(raw)
	if end := strings.Index(head, "\r\n\r\n"); end >= 0 {
		head = head[:end+2]
	}
	_, rest, _ := strings.Cut(head, "\n")
	for rest != "" {
		var field string
		field, rest, _ = strings.Cut(rest, "\n")
		if len(field) >= 5 && strings.EqualFold(field[:5], "host:") {
			return true
		}
	}
	return false
}

// headComplete reports whether the buffer holds a whole request head.
func headComplete(b *bufio.Reader) bool {
	p, _ := b.Peek(b.Buffered())
	return strings.Contains(unsafeString(p), "\r\n\r\n")
}

// statusError is an error answered before any handler runs.
type statusError struct {
	status int
	detail string
}

func (e statusError) Error() string { return e.detail }

var (
	errTooLarge   = statusError{http.StatusRequestHeaderFieldsTooLarge, "the request head is too large"}
	errNoHost     = statusError{http.StatusBadRequest, "missing required Host header"}
	errBadHost    = statusError{http.StatusBadRequest, "malformed Host header"}
	errBadName    = statusError{http.StatusBadRequest, "invalid header name"}
	errBadValue   = statusError{http.StatusBadRequest, "invalid header value"}
	errVersion    = statusError{http.StatusHTTPVersionNotSupported, "unsupported protocol version"}
	errExpect     = statusError{http.StatusExpectationFailed, "unsupported Expect"}
	errTransferEn = statusError{http.StatusNotImplemented, "unsupported transfer encoding"}
)

// readRequest reads the next request head into a new served block: the
// common well-formed head in place (parseHead), anything else through
// http.ReadRequest.
func (c *conn) readRequest() (*served, error) {
	c.expect = false
	c.cr.setLimit(c.s.maxHeaderBytes())
	// RFC 9112 §2.2: empty lines before a request line are ignored
	// (some clients send one after a POST body).
	for i := 0; i < 4 && c.bufr.Buffered() > 0; i++ {
		if b, _ := c.bufr.Peek(1); b[0] != '\r' && b[0] != '\n' {
			break
		}
		_, _ = c.bufr.Discard(1)
	}
	a := &served{}
	req := &a.req
	buffered, _ := c.bufr.Peek(c.bufr.Buffered())
	n, fast := parseHead(buffered, req, &a.url)
	absNoHost := false
	if fast {
		_, _ = c.bufr.Discard(n)
	} else {
		var err error
		if absNoHost, err = c.readHead(req); err != nil {
			return nil, err
		}
	}
	c.cr.setLimit(-1)
	if req.ProtoMajor != 1 {
		return nil, errVersion
	}
	if req.ProtoMinor >= 1 && req.Method != http.MethodConnect && (req.Host == "" || absNoHost) {
		return nil, errNoHost
	}
	if req.Host != "" && !httpguts.ValidHostHeader(req.Host) {
		return nil, errBadHost
	}
	if !fast {
		// parseHead has checked these already.
		if err := checkFields(req.Header); err != nil {
			return nil, err
		}
	}
	if e := req.Header["Expect"]; len(e) > 0 {
		if req.ProtoMinor == 0 {
			// HTTP/1.0 has no Expect; ignore it as net/http does.
		} else if len(e) == 1 && strings.EqualFold(e[0], "100-continue") {
			delete(req.Header, "Expect")
			if req.ContentLength != 0 {
				c.expect = true
			}
		} else {
			return nil, errExpect
		}
	}
	req.RemoteAddr = c.remoteAddr
	if d := c.s.WriteTimeout; d > 0 {
		_ = c.rwc.SetWriteDeadline(time.Now().Add(d))
	}
	return a, nil
}

// checkFields refuses the header field names and values net/http's
// server refuses. Apart from readRequest, whose frame is on the stack
// while http.ReadRequest reads (the map iterator is most of it).
//
//go:noinline
func checkFields(h http.Header) error {
	for k, vv := range h {
		if !httpguts.ValidHeaderFieldName(k) {
			return errBadName
		}
		for _, v := range vv {
			if !httpguts.ValidHeaderFieldValue(v) {
				return errBadValue
			}
		}
	}
	return nil
}

// readHead reads a head parseHead did not take with http.ReadRequest,
// into req. absNoHost: the target is in absolute form and the head has
// no Host field (ReadRequest takes the host from the target).
func (c *conn) readHead(req *http.Request) (absNoHost bool, err error) {
	abs := absoluteForm(c.bufr)
	if abs {
		// Keep the head's bytes: ReadRequest drops the Host field of
		// an absolute-form request, and its absence must be seen.
		p, _ := c.bufr.Peek(c.bufr.Buffered())
		c.cr.mu.Lock()
		c.cr.tee = append([]byte(nil), p...)
		c.cr.mu.Unlock()
	}
	r, err := http.ReadRequest(c.bufr)
	if abs {
		c.cr.mu.Lock()
		absNoHost = !hasHostField(c.cr.tee)
		c.cr.tee = nil
		c.cr.mu.Unlock()
	}
	if err != nil {
		if c.cr.hitLimit() {
			return false, errTooLarge
		}
		if msg := err.Error(); strings.Contains(msg, "unsupported transfer encoding") || strings.Contains(msg, "too many transfer encodings") {
			return false, errTransferEn
		}
		return false, err
	}
	*req = *r
	return absNoHost, nil
}

// fail answers a request that could not be read, when an answer makes
// sense, and the connection closes.
func (c *conn) fail(err error) {
	var se statusError
	switch {
	case errors.As(err, &se):
	case isQuietReadError(err):
		return
	default:
		// The parser's message may quote the request: bounded, so a
		// bad head is not echoed back whole.
		msg := err.Error()
		if len(msg) > maxDetail {
			msg = msg[:maxDetail] + "…"
		}
		se = statusError{http.StatusBadRequest, "malformed request: " + msg}
	}
	_ = c.rwc.SetWriteDeadline(time.Now().Add(time.Second))
	_, _ = c.rwc.Write(renderError(se))
	c.linger = true
}

// maxDetail bounds the parser message quoted in a 400's detail.
const maxDetail = 200

// isQuietReadError: the peer went away or was too slow; nothing to say.
func isQuietReadError(err error) bool {
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		return true
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return true
	}
	var oe *net.OpError
	return errors.As(err, &oe)
}

// serveOne runs the handler for the request read into a and finishes
// its response; it reports whether the connection can serve another
// request.
//
// The handler runs the whole request (the gateway, the proxy, the
// upstream call) on this goroutine's stack, so serveOne holds nothing
// of its own across the call: the setup and the finishing, with their
// temporaries (the request copy WithContext makes), are in functions
// of their own that are off the stack while the handler runs.
func (c *conn) serveOne(a *served) (keep bool) {
	c.startRequest(a)
	c.s.Handler.ServeHTTP(&a.res, &a.req)
	return c.endRequest(a)
}

// startRequest prepares the response, the context and the request the
// handler sees.
//
//go:noinline
func (c *conn) startRequest(a *served) {
	w := &a.res
	*w = response{c: c, header: make(http.Header, 8), declared: -1, expectContinue: c.expect}
	c.res = w
	ctx := &a.ctx
	ctx.begin(c)
	w.ctx = ctx
	// WithContext's copy does not escape.
	a.req = *a.req.WithContext(ctx)
	req := &a.req
	w.req = req
	if (req.Body == http.NoBody || req.Body == nil) && c.bufr.Buffered() == 0 {
		// Nothing more to read until the next request: the read
		// buffer goes back to the pool while the handler runs (most of
		// a busy connection's life is spent waiting for the upstream).
		c.bufr.Reset(nil)
		bufrPool.Put(c.bufr)
		c.bufr = nil
	}
	if req.Body != http.NoBody && req.Body != nil {
		w.body = &bodyReader{rc: req.Body, w: w}
		req.Body = w.body
		// The head's deadline must not cut the body short; the
		// handler bounds body reads itself.
		_ = c.setReadDeadline(time.Time{})
	} else {
		ctx.bodyDone = true
	}
	c.cr.mu.Lock()
	c.cr.ctx = ctx
	c.cr.mu.Unlock()
}

// endRequest finishes the response after the handler returned; it
// reports whether the connection can serve another request.
//
//go:noinline
func (c *conn) endRequest(a *served) (keep bool) {
	w, ctx, req := &a.res, &a.ctx, &a.req
	c.cr.mu.Lock()
	c.cr.ctx = nil
	c.cr.mu.Unlock()

	if c.hijacked.Load() {
		ctx.cancel()
		return false
	}
	w.finish()
	ctx.cancel()
	c.cr.abortPendingRead()
	if w.wdlSet && c.s.WriteTimeout <= 0 {
		_ = c.rwc.SetWriteDeadline(time.Time{})
	}
	unread := w.body != nil && !w.body.ended()
	if w.closeAfter || req.Close {
		c.linger = unread
		return false
	}
	if unread && !w.discardBody() {
		c.linger = true
		return false
	}
	// Nothing of this request stays with the connection while it
	// waits for the next one.
	c.res = nil
	return true
}

// served is what serving one request allocates, in one block: the
// response, the request's context, the request the handler sees and,
// when parseHead read it, its URL.
type served struct {
	res response
	ctx reqCtx
	req http.Request
	url url.URL
}

// renderError is the raw answer to a request that never reached the
// handler: problem+json, Connection: close.
func renderError(se statusError) []byte {
	code := "bad-request"
	title := http.StatusText(se.status)
	switch se.status {
	case http.StatusRequestHeaderFieldsTooLarge:
		code = "headers-too-large"
	case http.StatusHTTPVersionNotSupported:
		code = "version-not-supported"
	case http.StatusExpectationFailed:
		code = "expectation-failed"
	case http.StatusNotImplemented:
		code = "not-implemented"
	}
	body := `{"type":"urn:portunus:problem:` + code + `","title":` + jsonString(title) +
		`,"status":` + itoa(se.status) + `,"detail":` + jsonString(se.detail) + "}\n"
	return []byte("HTTP/1.1 " + itoa(se.status) + " " + title + "\r\n" +
		"Content-Type: application/problem+json\r\nCache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\n" +
		"Connection: close\r\nContent-Length: " + itoa(len(body)) + "\r\n\r\n" + body)
}

func jsonString(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		ch := s[i]
		switch {
		case ch == '"' || ch == '\\':
			b.WriteByte('\\')
			b.WriteByte(ch)
		case ch < 0x20 || ch >= 0x7f || ch == '<' || ch == '>' || ch == '&':
			const hex = "0123456789abcdef"
			b.WriteString(`\u00`)
			b.WriteByte(hex[ch>>4])
			b.WriteByte(hex[ch&0xf])
		default:
			b.WriteByte(ch)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// alive reports, with one non-blocking MSG_PEEK, whether the client is
// still connected: false on EOF or a reset. ok is false when the
// connection offers no raw access (or its read deadline has passed),
// and the caller must watch it with a background read instead.
func (c *conn) alive() (alive, ok bool) {
	if !canPeek {
		return true, false
	}
	c.rawOnce()
	if c.raw == nil {
		return true, false
	}
	c.peekRes = 0
	if err := c.raw.Read(c.peek); err != nil {
		return true, false
	}
	return c.peekRes >= 0, true
}

// rawOnce looks up rwc's RawConn once (SyscallConn allocates).
func (c *conn) rawOnce() {
	if c.rawDone {
		return
	}
	c.rawDone = true
	if sc, is := c.rwc.(syscall.Conn); is {
		if rc, err := sc.SyscallConn(); err == nil {
			c.raw = rc
			c.sr.Reset(rc)
			c.sw.Reset(rc)
		}
	}
}

// out is what answers are written to: the socket through sw where the
// connection offers raw access (rwc is the socket, or a wrapper whose
// Write is the socket's), else rwc.
func (c *conn) out() io.Writer {
	if sockio.Raw {
		c.rawOnce()
		if c.raw != nil {
			return &c.sw
		}
	}
	return c.rwc
}
