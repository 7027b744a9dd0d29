package h1

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/textproto"
	"sync/atomic"
	"syscall"
	"time"
)

// conn is one upstream connection. It is used by one request at a time;
// between requests it sits in its hostPool's idle stack without buffers.
type conn struct {
	hp *hostPool
	nc net.Conn
	cr connReader
	br *bufio.Reader
	bw *bufio.Writer
	tp textproto.Reader

	// reused: this connection already carried a request.
	reused bool
	idleAt time.Time
	// canceled is set by the context watcher before it sets a past
	// deadline, so clearing a deadline cannot lose a cancellation.
	canceled atomic.Bool
	cancelFn func()
	// peek is the liveness probe bound once (a method value allocates).
	peek      func(fd uintptr) bool
	peekOK    bool
	peekBuf   [1]byte
	raw       syscall.RawConn
	destroyed atomic.Bool
}

func newConn(hp *hostPool, nc net.Conn) *conn {
	cn := &conn{hp: hp, nc: nc}
	cn.cr.nc = nc
	cn.cancelFn = cn.cancelIO
	cn.peek = cn.peekFD
	return cn
}

// lend attaches pooled buffers for one request.
func (cn *conn) lend() {
	cn.br = readerPool.Get().(*bufio.Reader)
	cn.br.Reset(&cn.cr)
	cn.bw = writerPool.Get().(*bufio.Writer)
	cn.bw.Reset(cn.nc)
	cn.tp.R = cn.br
	cn.canceled.Store(false)
}

// giveBack returns the buffers; the connection keeps none while idle.
func (cn *conn) giveBack() {
	if cn.br != nil {
		cn.br.Reset(nil)
		readerPool.Put(cn.br)
		cn.br = nil
		cn.tp.R = nil
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

// cancelIO is the context watcher: it runs only when the request's
// context ends while the request holds the connection, and unblocks any
// read or write in progress.
func (cn *conn) cancelIO() {
	cn.canceled.Store(true)
	cn.nc.SetDeadline(aLongTimeAgo)
}

var aLongTimeAgo = time.Unix(1, 0)

// roundTrip writes req and reads the response head. On error the
// connection is destroyed; a *staleError says the connection was reused
// and failed before any answer byte.
func (cn *conn) roundTrip(req *http.Request) (*http.Response, error) {
	ctx := req.Context()
	var stop func() bool
	if ctx.Done() != nil {
		if err := ctx.Err(); err != nil {
			cn.hp.put(cn)
			return nil, context.Cause(ctx)
		}
		stop = context.AfterFunc(ctx, cn.cancelFn)
	}
	fail := func(err error, stale bool) (*http.Response, error) {
		if stop != nil {
			stop()
		}
		cn.destroy()
		err = canceled(ctx, err)
		if stale && cn.reused && ctx.Err() == nil {
			return nil, &staleError{err}
		}
		return nil, err
	}
	werr := cn.writeRequest(req)
	if werr != nil {
		var be *bodyReadError
		if errors.As(werr, &be) {
			return fail(be.err, false)
		}
		if !isConnGone(werr) {
			return fail(werr, false)
		}
		// The upstream may have answered early and closed (e.g. 413
		// while we were still sending the body): read what it said.
	}
	if t := cn.hp.c.opts.ResponseHeaderTimeout; t > 0 {
		cn.nc.SetReadDeadline(time.Now().Add(t))
		// A cancellation between the write and here set a past
		// deadline that the line above replaced.
		if cn.canceled.Load() {
			return fail(context.Canceled, false)
		}
	}
	res, stale, err := cn.readResponse(req)
	if err != nil {
		if werr != nil {
			return fail(werr, stale)
		}
		return fail(err, stale)
	}
	if cn.hp.c.opts.ResponseHeaderTimeout > 0 && !cn.bodyBuffered(res) {
		// The body streams without the header timeout. A body already
		// whole in the buffer needs no more reads, so the deadline can
		// stay (the next request sets its own before reading): one
		// syscall-side timer update saved per small answer.
		cn.nc.SetReadDeadline(time.Time{})
		if cn.canceled.Load() {
			res.Body.Close()
			return fail(context.Canceled, false)
		}
	}
	if werr != nil {
		// The request was cut short: the connection cannot be reused.
		res.Close = true
	}
	b, _ := res.Body.(*body)
	if b != nil {
		b.stop = stop
		if b.noBody {
			// Nothing to read: the connection is free now.
			b.finish(nil)
			res.Body = http.NoBody
		}
	} else if stop != nil {
		stop()
	}
	cn.reused = true
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

// connReader counts budget while a head is read, so a response head (or
// trailer section) larger than MaxResponseHeaderBytes fails instead of
// growing without bound.
type connReader struct {
	nc      net.Conn
	limited bool
	budget  int
	n       int64 // bytes read since the request was written
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
	n, err := r.nc.Read(p)
	r.n += int64(n)
	if r.limited {
		r.budget -= n
	}
	return n, err
}
