package h1

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/portunus-gw/portunus/internal/sockio"
)

// conn is one upstream connection. It is used by one request at a time;
// between requests it sits in its hostPool's idle stack without buffers.
type conn struct {
	hp *hostPool
	nc net.Conn
	cr connReader
	cw connWriter
	br *bufio.Reader
	bw *writeBuf

	// reused: this connection already carried a request.
	reused bool
	idleAt time.Time
	// lentAt is when the current request took the connection.
	lentAt time.Time
	// canceled is set by the context watcher before it sets a past
	// deadline, so clearing a deadline cannot lose a cancellation.
	canceled atomic.Bool
	cancelFn func()
	// stop removes the context watcher armed for the current request;
	// nil = none armed (reads then look at the context at each deadline
	// slice instead, see connReader).
	stop func() bool
	// sendInWait: the request head waits in the write buffer for
	// awaitAnswer to send it; sendErr is what that write failed with.
	sendInWait bool
	sendErr    error
	// cutShort is the error a write of the request failed with because
	// the upstream closed or reset the connection: its answer, if any,
	// is read all the same.
	cutShort error
	// armOnWrite: the watcher is armed before the next socket write. A
	// bodiless request whose head fits the buffer is written with one
	// write into an idle socket, which cannot block; a larger head may.
	armOnWrite bool
	// peek and readable are the RawConn callbacks of alive and
	// awaitAnswer, bound once (bindRaw: a closure allocates).
	peek      func(fd uintptr) bool
	readable  func(fd uintptr) bool
	peekOK    bool
	peekBuf   [1]byte
	raw       syscall.RawConn
	rawFailed bool
	// sw writes requests to raw once it is known (connWriter; cr.sr
	// reads the answers).
	sw sockio.Writer
	// waited: awaitAnswer's wait went to the poller (sockio.Polled on
	// its wake).
	waited    bool
	destroyed atomic.Bool
}

func newConn(hp *hostPool, nc net.Conn) *conn {
	cn := &conn{hp: hp, nc: nc}
	cn.cr.nc = nc
	cn.cw.cn = cn
	cn.cancelFn = cn.cancelIO
	cn.bindRaw()
	return cn
}

// lend readies the connection for one request. Its buffers come later,
// each for as long as it is needed: the write buffer while the request
// is written (writeRequest), the read buffer from the moment the answer
// can be read (lendReader). A request waiting on its upstream holds
// neither: at a thousand requests in flight that is 8 MiB of buffers
// the process does not need.
func (cn *conn) lend(now time.Time) {
	cn.canceled.Store(false)
	cn.lentAt = now
}

// lendReader attaches a pooled read buffer for the rest of the request.
func (cn *conn) lendReader() {
	if cn.br == nil {
		cn.br = readerPool.Get().(*bufio.Reader)
		cn.br.Reset(&cn.cr)
	}
}

// writeBuf is a pooled write buffer, with room to sort a head's fields
// (writeHeaderFields) in memory lent with it rather than on the stack of
// the request.
type writeBuf struct {
	bufio.Writer
	fields [32]headField
}

// releaseWriter returns the write buffer to its pool.
func (cn *conn) releaseWriter() {
	cn.bw.Reset(nil)
	writerPool.Put(cn.bw)
	cn.bw = nil
}

// giveBack returns the buffers; the connection keeps none while idle,
// and forgets the request.
func (cn *conn) giveBack() {
	cn.cr.ctx, cn.cr.hard, cn.cr.until, cn.cr.pending = nil, time.Time{}, time.Time{}, nil
	cn.stop, cn.armOnWrite = nil, false
	if cn.br != nil {
		cn.br.Reset(nil)
		readerPool.Put(cn.br)
		cn.br = nil
	}
	if cn.bw != nil {
		cn.bw.Reset(nil)
		writerPool.Put(cn.bw)
		cn.bw = nil
	}
}

// destroy closes the connection and frees its slot. Safe to call more
// than once, and from another goroutine than a blocked reader: its
// buffers are left to the garbage collector, not pooled, because that
// reader may still hold them.
func (cn *conn) destroy() {
	if !cn.destroyed.CompareAndSwap(false, true) {
		return
	}
	cn.nc.Close()
	cn.hp.slotFreed()
}

func (cn *conn) expired(now time.Time) bool {
	return now.Sub(cn.idleAt) >= cn.hp.c.opts.IdleTimeout
}

// testHookAwaitAnswer, when set, sees each connection as it starts
// waiting for an answer (tests: the buffers it holds then).
var testHookAwaitAnswer atomic.Pointer[func(*conn)]

// cancelIO is the context watcher: it runs only when the request's
// context ends while the request holds the connection, and unblocks any
// read or write in progress.
func (cn *conn) cancelIO() {
	cn.canceled.Store(true)
	cn.nc.SetDeadline(aLongTimeAgo)
}

var aLongTimeAgo = time.Unix(1, 0)

// watch arms the context watcher for the current request, once.
func (cn *conn) watch() {
	if cn.stop == nil && cn.cr.ctx.Done() != nil {
		cn.stop = context.AfterFunc(cn.cr.ctx, cn.cancelFn)
	}
}

// roundTrip writes req and reads the response head; until is the
// caller's deadline for the head (zero: none). On error the connection is
// destroyed; a *staleError says the connection was reused and failed
// before any answer byte.
//
// The request's context is watched two ways. By default, and always for
// a request with a body, a head too large for the write buffer and a body
// that streams, a context.AfterFunc watcher unblocks I/O at once. With
// poll (RoundTripUntil), the common case (no body, small head, small
// answer) gets none: its reads carry a read deadline at most pollSlice
// away, and each time one passes with nothing read the context is looked
// at (connReader). That saves the watcher's allocations and its
// registration with the request's context, and most read-deadline
// updates, on every such request; a context that ends is noticed within
// pollSlice instead of at once.
//
// roundTrip is the bottom of the request's stack that every step of the
// round trip runs on, so it keeps nothing of its own across those steps:
// each is a method of its own, and what the request needs from one step
// to the next is in cn.
func (cn *conn) roundTrip(req *http.Request, until time.Time, poll bool) (*http.Response, error) {
	if err := cn.begin(req, until, poll); err != nil {
		return nil, err
	}
	err := cn.sent(req, cn.writeRequest(req))
	if err == nil {
		err = cn.awaitAnswer()
	}
	if err == nil && cn.sendErr != nil {
		err = cn.sendFailed()
	}
	if err != nil {
		return cn.fail(req, err, false)
	}
	cn.lendReader()
	res, stale, err := cn.readResponse(req)
	cn.cr.limited = false
	if err != nil {
		if cn.cutShort != nil {
			err = cn.cutShort
		}
		return cn.fail(req, err, stale)
	}
	return cn.answered(req, res)
}

// begin readies the connection for req, or hands it back to the pool
// when req may not be sent (its context ended, or until passed).
//
//go:noinline
func (cn *conn) begin(req *http.Request, until time.Time, poll bool) error {
	ctx := req.Context()
	if err := ctx.Err(); err != nil {
		cn.hp.put(cn)
		return context.Cause(ctx)
	}
	if !until.IsZero() && !cn.lentAt.Before(until) {
		cn.hp.put(cn)
		return ErrDeadline
	}
	cn.cr.ctx, cn.cr.until, cn.stop = ctx, until, nil
	hasBody := sendsBody(req)
	if hasBody || !poll {
		cn.watch()
	} else {
		cn.armOnWrite = true
	}
	cn.bw = writerPool.Get().(*writeBuf)
	cn.bw.Reset(&cn.cw)
	cn.cw.writes = 0
	// A bodiless request whose head fits the write buffer is sent from
	// inside the wait for its answer (awaitAnswer), once that wait has
	// begun: the answer can only arrive after the write, so the poller
	// reports it, and no read is spent first finding nothing (one system
	// call per request fewer).
	cn.sendInWait = !hasBody && cn.rawOnce()
	return nil
}

// sendsBody reports whether req has a body to send.
func sendsBody(req *http.Request) bool {
	return req.Body != nil && req.Body != http.NoBody && req.ContentLength != 0
}

// sent takes over once writeRequest returned werr: it decides whether the
// answer is still read, sets the head's deadline and read budget.
//
//go:noinline
func (cn *conn) sent(req *http.Request, werr error) error {
	if werr != nil {
		cn.sendInWait = false
	}
	if !cn.sendInWait {
		cn.releaseWriter()
	}
	cn.armOnWrite = false
	if werr != nil {
		if err := cn.writeFailed(werr); err != nil {
			return err
		}
	}
	// The head must be complete by hard: the caller's deadline or the
	// header timeout, whichever comes first.
	now := cn.lentAt
	if sendsBody(req) {
		now = time.Now() // the header timeout starts once the body is sent
	}
	cn.cr.hard = cn.cr.until
	if t := cn.hp.c.opts.ResponseHeaderTimeout; t > 0 {
		if h := now.Add(t); cn.cr.hard.IsZero() || h.Before(cn.cr.hard) {
			cn.cr.hard = h
		}
	}
	if err := cn.cr.arm(now); err != nil {
		return err
	}
	// The head is read under a byte budget from its first byte, which
	// awaitAnswer may already read.
	cn.cr.n = 0
	cn.cr.limited = true
	cn.cr.budget = cn.hp.c.opts.MaxResponseHeaderBytes
	return nil
}

// writeFailed looks at the failure of writeRequest: nil when the answer
// is read all the same.
//
//go:noinline
func (cn *conn) writeFailed(werr error) error {
	var be *bodyReadError
	if errors.As(werr, &be) {
		return be.err
	}
	if !isConnGone(werr) {
		return werr
	}
	// The upstream may have answered early and closed (e.g. 413 while we
	// were still sending the body): read what it said.
	cn.cutShort = werr
	return nil
}

// sendFailed looks at the failure of the head sent from awaitAnswer: an
// upstream that closed or reset the connection may have answered first.
//
//go:noinline
func (cn *conn) sendFailed() error {
	err := cn.sendErr
	cn.sendErr = nil
	if !isConnGone(err) {
		return err
	}
	cn.cutShort = err // read what the upstream said, as above
	return nil
}

// fail ends a request that failed: the connection is destroyed.
//
//go:noinline
func (cn *conn) fail(req *http.Request, err error, stale bool) (*http.Response, error) {
	cn.cr.limited = false
	cn.cutShort, cn.sendErr = nil, nil
	if cn.stop != nil {
		cn.stop()
	}
	cn.destroy()
	ctx := req.Context()
	err = canceled(ctx, err)
	if stale && cn.reused && ctx.Err() == nil {
		return nil, &staleError{err}
	}
	return nil, err
}

// answered ends the round trip of a request whose response head was read.
//
//go:noinline
func (cn *conn) answered(req *http.Request, res *http.Response) (*http.Response, error) {
	// The body streams without the head's deadlines.
	cn.cr.hard, cn.cr.until = time.Time{}, time.Time{}
	if !cn.bodyBuffered(res) {
		// A body that streams (possibly for long, possibly idle, as
		// server-sent events are) is watched by the context watcher,
		// and its reads carry no deadline: no wake-ups while it idles.
		cn.watch()
		cn.cr.clear()
		if cn.canceled.Load() || req.Context().Err() != nil {
			res.Body.Close()
			return cn.fail(req, context.Canceled, false)
		}
	}
	if cn.cutShort != nil {
		// The request was cut short: the connection cannot be reused.
		res.Close = true
		cn.cutShort = nil
	}
	// Set before a bodiless answer hands the connection back to the
	// pool: from then on another request may own it.
	cn.reused = true
	b, _ := res.Body.(*body)
	if b != nil {
		b.stop = cn.stop
		if b.noBody {
			// Nothing to read: the connection is free now.
			b.finish(nil)
			res.Body = http.NoBody
		}
	} else if cn.stop != nil {
		cn.stop()
	}
	return res, nil
}

// bodyBuffered reports whether res's body is already entirely in the
// read buffer.
func (cn *conn) bodyBuffered(res *http.Response) bool {
	b, ok := res.Body.(*body)
	return ok && (b.noBody || b.chunked == nil && !b.untilClose && b.remaining <= int64(cn.br.Buffered()))
}

// release ends a request whose response was read completely: the
// connection goes back to the pool when it can carry another request.
func (cn *conn) release(reusable bool, stop func() bool) {
	if stop != nil && !stop() {
		// The watcher fired: the connection has a past deadline.
		reusable = false
	}
	if !reusable || cn.br.Buffered() > 0 {
		// Bytes after the end of a response are a framing error; the
		// connection is not trusted with another request.
		cn.destroy()
		return
	}
	cn.reused = true
	cn.hp.put(cn)
}

// isConnGone reports whether a write failed because the upstream closed
// or reset the connection.
func isConnGone(err error) bool {
	return errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, io.ErrClosedPipe) || errors.Is(err, net.ErrClosed)
}

// pollSlice bounds how long a read waiting on the upstream goes without
// looking at the request's context when no watcher is armed: the longest
// a client's departure can go unnoticed while the upstream is silent.
const pollSlice = 200 * time.Millisecond

// connReader counts budget while a head is read, so a response head (or
// trailer section) larger than MaxResponseHeaderBytes fails instead of
// growing without bound. While a request holds the connection it also
// keeps the read deadline: the head's hard bound, or a polling slice, at
// whose end the request's context is looked at and the deadline moved on.
type connReader struct {
	nc      net.Conn
	limited bool
	budget  int
	n       int64 // bytes read since the request was written

	ctx   context.Context // the current request's; nil while idle
	hard  time.Time       // the head is due by then (zero: no bound)
	until time.Time       // the caller's part of hard: past it, ErrDeadline
	rdl   time.Time       // the read deadline set on nc (zero: none)

	// rawFD, while rawMode is set, is the socket to read with one
	// non-blocking system call that reports sockio.ErrWouldBlock instead of
	// waiting (conn.readable).
	rawMode bool
	rawFD   int
	// sr reads nc through its RawConn once the connection has looked it
	// up (rawOK; conn.rawOnce), waiting under the same deadline.
	sr    sockio.Reader
	rawOK bool
	// pending is an error a raw-mode read met (an end or a reset before
	// the answer), reported by the next read: the buffer's reader
	// forgets an error once it has returned it.
	pending error
}

var errHeaderTooLarge = errors.New("h1: response header too large")

func (r *connReader) Read(p []byte) (int, error) {
	if r.limited {
		if r.budget <= 0 {
			return 0, errHeaderTooLarge
		}
		if len(p) > r.budget {
			p = p[:r.budget]
		}
	}
	if err := r.pending; err != nil {
		r.pending = nil
		return 0, err
	}
	for {
		var n int
		var err error
		switch {
		case r.rawMode:
			n, err = sockio.ReadNow(r.rawFD, p)
		case sockio.Raw && r.rawOK:
			n, err = r.sr.Read(p)
		default:
			n, err = r.nc.Read(p)
		}
		if n == 0 && err != nil && r.ctx != nil && errors.Is(err, os.ErrDeadlineExceeded) {
			if err = r.expired(err); err == nil {
				continue // a polling slice ended; nothing else did
			}
		}
		r.n += int64(n)
		if r.limited {
			r.budget -= n
		}
		return n, err
	}
}

// expired decides what a passed read deadline means: the request's
// context ended (its cause), the hard bound passed (ErrDeadline for the
// caller's deadline, err for the header timeout), or only a polling slice
// ended (nil: the deadline is moved on).
func (r *connReader) expired(err error) error {
	if r.ctx.Err() != nil {
		return context.Cause(r.ctx)
	}
	now := time.Now()
	if !r.hard.IsZero() && !now.Before(r.hard) {
		if !r.until.IsZero() && !now.Before(r.until) {
			return ErrDeadline
		}
		return err
	}
	r.rdl = time.Time{}
	return r.arm(now)
}

// arm makes sure the read deadline falls between half a polling slice
// from now and the hard bound (or a slice from now), setting it only when
// it does not: a busy connection updates its deadline about once per half
// slice, not once per request. It reports the context's cause when the
// request's context has ended.
func (r *connReader) arm(now time.Time) error {
	if r.moveDeadline(now) {
		r.nc.SetReadDeadline(r.rdl)
	}
	// A watcher that fired before the line above set a past deadline
	// that was just replaced.
	if r.ctx != nil && r.ctx.Err() != nil {
		return context.Cause(r.ctx)
	}
	return nil
}

// moveDeadline is arm's choice: it sets r.rdl and reports true when the
// read deadline is to be set to it. A function of its own, so that its
// times are not on the stack of SetReadDeadline, which arm calls from
// the request's deepest stack.
//
//go:noinline
func (r *connReader) moveDeadline(now time.Time) bool {
	want := now.Add(pollSlice)
	if !r.hard.IsZero() && r.hard.Before(want) {
		want = r.hard
	}
	if r.rdl.IsZero() || r.rdl.After(want) || !r.rdl.After(now.Add(pollSlice/2)) {
		r.rdl = want
		return true
	}
	return false
}

// clear removes the read deadline.
func (r *connReader) clear() {
	if !r.rdl.IsZero() {
		r.nc.SetReadDeadline(time.Time{})
		r.rdl = time.Time{}
	}
}

// connWriter is what the write buffer flushes to: the socket, arming the
// context watcher first when the request asks for it (armOnWrite).
type connWriter struct {
	cn     *conn
	writes int // socket writes for the current request
}

func (w *connWriter) Write(p []byte) (int, error) {
	w.writes++
	if w.cn.armOnWrite {
		w.cn.armOnWrite = false
		w.cn.watch()
	}
	if sockio.Raw && w.cn.rawOnce() {
		return w.cn.sw.Write(p)
	}
	return w.cn.nc.Write(p)
}
