package h1

import (
	"errors"
	"os"
	"sync/atomic"
	"syscall"
)

// testHookAwaitAnswer, when set, sees each connection as it starts
// waiting for an answer (tests: the buffers it holds then).
var testHookAwaitAnswer atomic.Pointer[func(*conn)]

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

// peekFD is the RawConn callback of alive. It returns true so the poller
// never waits: only an EAGAIN ("nothing to read") means alive.
func (cn *conn) peekFD(fd uintptr) bool {
	_, _, err := syscall.Recvfrom(int(fd), cn.peekBuf[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
	cn.peekOK = err == syscall.EAGAIN
	return true
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
	}
	return cn.raw != nil
}

// awaitAnswer waits, without a read buffer, until the answer's first
// bytes (or the end of the stream, or a reset) can be read. The read
// deadline and the request's context bound the wait exactly as they bound
// a read (connReader.Read). It costs what the read it replaces did: one
// non-blocking MSG_PEEK that finds nothing where a read would have found
// nothing, then the poller's wake-up.
func (cn *conn) awaitAnswer() error {
	if !cn.rawOnce() {
		return nil // the buffered read waits instead
	}
	if h := testHookAwaitAnswer.Load(); h != nil {
		(*h)(cn)
	}
	for {
		cn.polled = false
		err := cn.raw.Read(cn.readable)
		if err == nil {
			return nil
		}
		if cn.cr.ctx != nil && errors.Is(err, os.ErrDeadlineExceeded) {
			if err = cn.cr.expired(err); err == nil {
				continue // a polling slice ended; nothing else did
			}
		}
		return err
	}
}

// readableFD is the RawConn callback of awaitAnswer. Its first call
// looks (MSG_PEEK); a call after the poller reported the socket readable
// trusts it: a spurious wake-up only means the buffered read that follows
// waits itself.
func (cn *conn) readableFD(fd uintptr) bool {
	if cn.polled {
		return true
	}
	cn.polled = true
	_, _, err := syscall.Recvfrom(int(fd), cn.peekBuf[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
	return err != syscall.EAGAIN
}
