//go:build unix

package sockio

import (
	"io"
	"net"
	"os"
	"sync/atomic"
	"syscall"
	"time"
)

// Raw reports whether Reader and Writer work on this platform.
const Raw = true

// Reader reads from a socket through its syscall.RawConn: one
// non-blocking read when bytes are there, the runtime's poller while
// none are. It keeps what net.Conn's Read promises (the read deadline and
// Close apply, since the wait is the poller's; io.EOF at the end of the
// stream) at a lower cost per call (sys_raw.go).
//
// The zero Reader is unusable; Reset binds it to a connection. A Reader
// is not safe for concurrent use.
type Reader struct {
	rc syscall.RawConn
	// fn is readFD bound once (a method value allocates).
	fn  func(fd uintptr) bool
	p   []byte
	n   int
	err error
}

// Reset makes r read from rc.
func (r *Reader) Reset(rc syscall.RawConn) {
	r.rc = rc
	if r.fn == nil {
		r.fn = r.readFD
	}
}

// Read reads up to len(p) bytes once some are there.
func (r *Reader) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	r.p, r.n, r.err = p, 0, nil
	err := r.rc.Read(r.fn)
	n := r.n
	if err == nil {
		err = r.err
	} else {
		renameOp(err, "read")
	}
	r.p, r.err = nil, nil
	return n, err
}

// readFD is the RawConn callback: false sends the caller to the poller
// until bytes arrive.
func (r *Reader) readFD(fd uintptr) bool {
	n, err := ReadNow(int(fd), r.p)
	if err == ErrWouldBlock {
		return false
	}
	r.n, r.err = n, err
	return true
}

// write is one write system call, announced to the scheduler when the
// last announced one is announceInterval old.
func write(fd int, p []byte) (int, error) {
	now := int64(time.Since(epoch))
	if last := announcedAt.Load(); now-last >= int64(announceInterval) && announcedAt.CompareAndSwap(last, now) {
		return syscall.Write(fd, p)
	}
	return sysWrite(fd, p)
}

// renameOp gives an error of RawConn's Read or Write (a deadline, a
// closed connection) the operation net.Conn's would name: "read", not
// "raw-read".
func renameOp(err error, op string) {
	if oe, ok := err.(*net.OpError); ok {
		oe.Op = op
	}
}

// Writer writes to a socket through its syscall.RawConn: non-blocking
// writes while the socket takes bytes, the runtime's poller while it has
// no room. It keeps what net.Conn's Write promises (every byte written
// or an error; the connection's write deadline and Close apply, since
// the wait is the poller's) at a lower cost per call (sys_raw.go).
//
// The zero Writer is unusable; Reset binds it to a connection. A Writer
// is not safe for concurrent use: like a bufio.Writer it belongs to one
// writer at a time.
type Writer struct {
	rc syscall.RawConn
	// fn is writeFD bound once (a method value allocates).
	fn  func(fd uintptr) bool
	p   []byte
	n   int
	err error
}

// announceInterval: a write at least this long after the last announced
// one goes through syscall.Write, which tells the scheduler about it (the
// others skip that, see sys_raw.go). The runtime's monitor thread
// (sysmon) does the network poll a saturated server depends on: the
// scheduler looks for sockets that became ready only when it runs out of
// runnable goroutines, or when the monitor finds none looked at for
// 10 ms. A monitor that went to sleep while the processor idled for a
// moment sleeps until the next timer or collection unless a system call
// is announced: with none, a saturated server left connections that had
// parked unpolled for tens of milliseconds (p99 of saturated cache-hit
// runs 12–62 ms against 7–8). Announcing every call woke it thousands of
// times a second; one announced write per interval wakes it at most 50
// times a second, soon enough to bound that wait near its own 10 ms (p99
// 8–11 ms). 5 ms kept the tail as well and cost most of the gain.
const announceInterval = 20 * time.Millisecond

var (
	// epoch and announcedAt (nanoseconds since epoch, monotonic) time
	// the announced writes; shared by all Writers, written at most once
	// per announceInterval.
	epoch       = time.Now()
	announcedAt atomic.Int64
)

// Reset makes w write to rc.
func (w *Writer) Reset(rc syscall.RawConn) {
	w.rc = rc
	if w.fn == nil {
		w.fn = w.writeFD
	}
}

// Write writes all of p, or stops at the first error.
func (w *Writer) Write(p []byte) (int, error) {
	w.p, w.n, w.err = p, 0, nil
	err := w.rc.Write(w.fn)
	n := w.n
	if err == nil {
		err = w.err
	} else {
		renameOp(err, "write")
	}
	w.p, w.err = nil, nil
	return n, err
}

// writeFD is the RawConn callback: false sends the caller to the poller
// until the socket has room again.
func (w *Writer) writeFD(fd uintptr) bool {
	for w.n < len(w.p) {
		n, err := write(int(fd), w.p[w.n:])
		switch {
		case err == syscall.EINTR:
			continue
		case err == syscall.EAGAIN:
			return false
		case err != nil:
			w.err = &net.OpError{Op: "write", Err: os.NewSyscallError("write", err)}
			return true
		case n == 0: // no room reported as a write of nothing: never loop on it
			w.err = io.ErrShortWrite
			return true
		}
		w.n += n
	}
	return true
}
