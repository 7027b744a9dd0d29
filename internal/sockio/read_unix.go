//go:build unix

// Package sockio reads and writes a socket without waiting, for code that
// waits for readiness itself (through syscall.RawConn): the HTTP/1.x
// server and the upstream client. A read that waits this way holds no
// buffer while it waits (between a client's requests, between a request
// and its answer); on Linux both directions skip the scheduler's
// blocking-call bookkeeping, which a non-blocking socket never needs
// (sys_raw.go).
package sockio

import (
	"errors"
	"io"
	"net"
	"os"
	"syscall"
)

// ErrWouldBlock reports that ReadNow found nothing to read.
var ErrWouldBlock = errors.New("sockio: nothing to read yet")

// ReadNow reads the non-blocking socket fd once: n > 0 bytes, io.EOF at
// the end of the stream, ErrWouldBlock when nothing has arrived, or the
// error as a *net.OpError (as a net.Conn's Read would report it).
func ReadNow(fd int, p []byte) (int, error) {
	for {
		n, err := sysRead(fd, p)
		switch {
		case err == syscall.EINTR:
			continue
		case err == syscall.EAGAIN:
			return 0, ErrWouldBlock
		case err != nil:
			return 0, &net.OpError{Op: "read", Net: "tcp", Err: os.NewSyscallError("read", err)}
		case n == 0:
			return 0, io.EOF
		}
		return n, nil
	}
}
