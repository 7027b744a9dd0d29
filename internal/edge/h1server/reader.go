package h1server

import (
	"io"
	"sync"
	"time"

	"github.com/portunus-gw/portunus/internal/sockio"
)

// connReader is what the connection's bufio.Reader reads from. It bounds
// the request head, and runs the background read that notices a client
// leaving while its handler runs: one byte read straight from the
// socket, kept for the next request if it is data, cancelling the
// request's context if it is an end or an error.
type connReader struct {
	c *conn

	mu      sync.Mutex
	cond    sync.Cond // L is &mu
	inRead  bool      // a read (foreground or background) is running
	aborted bool      // the background read was stopped on purpose
	hasByte bool
	byteBuf [1]byte
	// remain bounds what the head may still read; negative: no bound.
	remain int64
	hit    bool
	// ctx is the running request's context, cancelled by a read error.
	ctx *reqCtx
	// tee, when not nil, collects what is read (an absolute-form
	// request's head, bounded by the head limit).
	tee []byte
	// rawFD, while rawMode is set, is the socket to read with one
	// non-blocking system call that reports sockio.ErrWouldBlock instead of
	// waiting (conn.readableFD; the connection's goroutine only).
	rawMode bool
	rawFD   int
}

func (cr *connReader) setLimit(n int64) {
	cr.mu.Lock()
	cr.remain, cr.hit = n, false
	cr.mu.Unlock()
}

func (cr *connReader) hitLimit() bool {
	cr.mu.Lock()
	defer cr.mu.Unlock()
	return cr.hit
}

func (cr *connReader) Read(p []byte) (int, error) {
	cr.mu.Lock()
	if cr.inRead {
		cr.mu.Unlock()
		panic("h1server: concurrent read on a connection")
	}
	if cr.remain == 0 {
		cr.hit = true
		cr.mu.Unlock()
		return 0, io.EOF
	}
	if len(p) == 0 {
		cr.mu.Unlock()
		return 0, nil
	}
	if cr.remain > 0 && int64(len(p)) > cr.remain {
		p = p[:cr.remain]
	}
	if cr.hasByte {
		p[0] = cr.byteBuf[0]
		cr.hasByte = false
		if cr.tee != nil {
			cr.tee = append(cr.tee, p[0])
		}
		if cr.remain > 0 {
			cr.remain--
		}
		cr.mu.Unlock()
		return 1, nil
	}
	cr.inRead = true
	cr.mu.Unlock()

	n, err := cr.readSocket(p)

	cr.mu.Lock()
	cr.inRead = false
	if cr.remain > 0 {
		cr.remain -= int64(n)
	}
	if cr.tee != nil {
		cr.tee = append(cr.tee, p[:n]...)
	}
	ctx := cr.ctx
	cr.cond.Broadcast()
	cr.mu.Unlock()
	if err != nil && ctx != nil {
		// A body read that fails means the client is gone (or too
		// slow): the request's context says so.
		ctx.clientGone()
	}
	return n, err
}

// readSocket reads from the connection, waiting under its deadline
// (through the raw socket where there is one, see conn.out), or in raw
// mode straight from the socket without waiting.
func (cr *connReader) readSocket(p []byte) (int, error) {
	if cr.rawMode {
		return sockio.ReadNow(cr.rawFD, p)
	}
	if sockio.Raw {
		c := cr.c
		c.rawOnce()
		if c.raw != nil {
			return c.sr.Read(p)
		}
	}
	return cr.c.rwc.Read(p)
}

// startBackgroundRead begins watching the socket for the client
// leaving. Called once per request at most, with nothing left of its
// body to read.
func (cr *connReader) startBackgroundRead() {
	cr.mu.Lock()
	defer cr.mu.Unlock()
	if cr.inRead || cr.hasByte {
		return
	}
	cr.inRead = true
	// The head's deadline may still be armed; the handler may run for
	// longer than it.
	_ = cr.c.setReadDeadline(time.Time{})
	go cr.backgroundRead()
}

func (cr *connReader) backgroundRead() {
	n, err := cr.c.rwc.Read(cr.byteBuf[:])
	cr.mu.Lock()
	if n == 1 {
		cr.hasByte = true
	}
	ctx := cr.ctx
	gone := err != nil && !cr.aborted
	cr.aborted = false
	cr.inRead = false
	cr.cond.Broadcast()
	cr.mu.Unlock()
	if gone && ctx != nil {
		ctx.clientGone()
	}
}

// abortPendingRead stops a background read and waits for it to end.
func (cr *connReader) abortPendingRead() {
	cr.mu.Lock()
	defer cr.mu.Unlock()
	if !cr.inRead {
		return
	}
	cr.aborted = true
	_ = cr.c.setReadDeadline(aLongTimeAgo)
	for cr.inRead {
		cr.cond.Wait()
	}
	cr.aborted = false
	_ = cr.c.setReadDeadline(time.Time{})
}

// aLongTimeAgo is a deadline that has passed: it interrupts a read.
var aLongTimeAgo = time.Unix(1, 0)
