package h1

import (
	"errors"
	"os"
	"syscall"

	"github.com/portunus-gw/portunus/internal/sockio"
)

// alive reports whether a pooled connection is still usable: not closed
// or reset by the upstream while it idled, and with no unsolicited bytes
// waiting. One non-blocking MSG_PEEK, no goroutine per idle connection.
func (cn *conn) alive() bool {
	if !cn.rawOnce() {
		return cn.raw != nil || !cn.rawFailed
	}
	cn.peekOK = false
	if err := cn.raw.Read(cn.peek); err != nil {
		return false
	}
	return cn.peekOK
}

// bindRaw binds the RawConn callbacks. They are closures rather than
// method values, whose wrapper would be a frame more on the stack below
// the poller's RawRead, the deepest of a request.
func (cn *conn) bindRaw() {
	// peek is the callback of alive. It returns true so the poller never
	// waits: only an EAGAIN ("nothing to read") means alive.
	cn.peek = func(fd uintptr) bool {
		_, _, err := syscall.Recvfrom(int(fd), cn.peekBuf[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		cn.peekOK = err == syscall.EAGAIN
		return true
	}
	// readable is the callback of awaitAnswer: it fills the read buffer
	// with one non-blocking read of the socket (fillNow). Nothing there:
	// the buffer goes back to the pool and the poller waits (false).
	// Bytes, the end of the stream or an error: done (true).
	//
	// When the request head is still to be sent (sendInWait), the first
	// call sends it and waits (false) without reading:
	// RawConn.Read has reset the poller's readiness for this socket just
	// before that call, and every byte of the answer arrives after the
	// write, so the poller reports it; a read now would only find
	// nothing.
	cn.readable = func(fd uintptr) bool {
		if !cn.sendInWait {
			return cn.fillNow(fd)
		}
		cn.sendInWait = false
		err := cn.bw.Flush()
		cn.releaseWriter()
		if err != nil {
			cn.sendErr = err
			return true
		}
		cn.waited = true
		return false
	}
}

// rawOnce looks up the connection's RawConn once (SyscallConn
// allocates); false when there is none.
func (cn *conn) rawOnce() bool {
	if cn.raw == nil && !cn.rawFailed {
		sc, ok := cn.nc.(syscall.Conn)
		if !ok {
			return false
		}
		rc, err := sc.SyscallConn()
		if err != nil {
			cn.rawFailed = true
			return false
		}
		cn.raw = rc
		cn.sw.Reset(rc)
		cn.cr.sr.Reset(rc)
		cn.cr.rawOK = true
	}
	return cn.raw != nil
}

// awaitAnswer waits until the answer's first bytes (or the end of the
// stream, or an error) are in the read buffer, holding the buffer only
// while there is something in it: a request waiting on its upstream keeps
// none. The read deadline and the request's context bound the wait
// exactly as they bound a read (connReader.Read). The system calls are
// those of a plain read: one that finds nothing, then after the poller's
// wake-up one that finds the answer.
func (cn *conn) awaitAnswer() error {
	if !cn.rawOnce() {
		return nil // the buffered read waits instead
	}
	if h := testHookAwaitAnswer.Load(); h != nil {
		(*h)(cn)
	}
	for {
		cn.waited = false
		err := cn.raw.Read(cn.readable)
		if err == nil {
			// A read error waits in connReader.pending: the head's
			// first read reports it (and tells a stale connection).
			return nil
		}
		if cn.cr.ctx != nil && errors.Is(err, os.ErrDeadlineExceeded) {
			if err = cn.cr.expired(err); err == nil {
				continue // a polling slice ended; nothing else did
			}
		}
		if cn.sendInWait {
			// Never sent: the connection is destroyed by the caller.
			cn.sendInWait = false
			cn.bw = nil
		}
		return err
	}
}

// fillNow is readable's read of the socket fd.
//
//go:noinline
func (cn *conn) fillNow(fd uintptr) bool {
	if cn.waited {
		sockio.Polled() // the poller woke this wait: it is polling
	}
	cn.lendReader()
	cn.cr.rawMode, cn.cr.rawFD = true, int(fd)
	_, err := cn.br.Peek(1)
	cn.cr.rawMode = false
	if err == sockio.ErrWouldBlock {
		cn.br.Reset(nil)
		readerPool.Put(cn.br)
		cn.br = nil
		cn.waited = true
		return false
	}
	if err != nil {
		cn.cr.pending = err
	}
	return true
}
