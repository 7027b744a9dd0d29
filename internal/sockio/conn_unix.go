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
	// waited: the current Read went to the poller (Polled on its wake).
	waited bool
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
	r.p, r.n, r.err, r.waited = p, 0, nil, false
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
	if r.waited {
		Polled()
	}
	n, err := ReadNow(int(fd), r.p)
	if err == ErrWouldBlock {
		r.waited = true
		return false
	}
	r.n, r.err = n, err
	return true
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

// pollOverdue: when the runtime's network poller has woken none of the
// readers waiting through this package (Polled) for this long, a write
// goes through syscall.Write, which tells the scheduler about it, at
// most once per pollOverdue; the others skip that (sys_raw.go). The
// runtime's monitor thread (sysmon) makes the network poll a saturated
// server depends on: the scheduler looks for sockets that became ready
// only when it runs out of runnable goroutines, or when the monitor
// finds none looked at for 10 ms. A monitor that went to sleep while the
// processor idled for a moment sleeps until the next timer or
// collection unless a system call is announced: with none, a saturated
// server left connections that had parked unpolled for tens of
// milliseconds (p99 of saturated cache-hit runs 12–62 ms against 7–8).
// An announced call wakes it, and a woken monitor stays awake while the
// processor is busy. Announcing on a timer instead (every 5 or 20 ms)
// woke it also when the poller was running and cost most of the gain.
const pollOverdue = 10 * time.Millisecond

var (
	// epoch, polledAt and announcedAt (nanoseconds since epoch,
	// monotonic) time the poller's wake-ups and the announced writes;
	// shared by all, written at most once per polledGrain and once per
	// pollOverdue.
	epoch       = time.Now()
	polledAt    atomic.Int64
	announcedAt atomic.Int64
)

// polledGrain: Polled records a wake-up at most once per polledGrain,
// so that a busy server's processors do not all write the shared word on
// every wake-up.
const polledGrain = 100 * time.Microsecond

// Polled records that the runtime's network poller has just woken a
// reader that waited for bytes: the network is being polled. Callers that
// wait through their own RawConn callbacks (with ReadNow) call it on the
// first read after a wait; Reader does.
func Polled() {
	now := int64(time.Since(epoch))
	if now-polledAt.Load() >= int64(polledGrain) {
		polledAt.Store(now)
	}
}

// PolledWithin reports whether the runtime's network poller woke a
// waiting reader (Polled) within d before now, to polledGrain. A server
// asks before it yields to its other connections: see h1server's
// awaitRequest.
func PolledWithin(now time.Time, d time.Duration) bool {
	return int64(now.Sub(epoch))-polledAt.Load() < int64(d)
}

// write is one write system call, announced to the scheduler when the
// network poll looks overdue (pollOverdue).
func write(fd int, p []byte) (int, error) {
	now := int64(time.Since(epoch))
	if now-polledAt.Load() >= int64(pollOverdue) {
		if last := announcedAt.Load(); now-last >= int64(pollOverdue) && announcedAt.CompareAndSwap(last, now) {
			return syscall.Write(fd, p)
		}
	}
	return sysWrite(fd, p)
}

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
