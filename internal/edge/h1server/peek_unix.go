//go:build unix

package h1server

import "syscall"

// canPeek: alive can look at a socket without reading from it here.
const canPeek = true

// peekFD is the RawConn callback of alive; it never waits.
func (c *conn) peekFD(fd uintptr) bool {
	n, _, err := syscall.Recvfrom(int(fd), c.peekBuf[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
	switch {
	case err == syscall.EAGAIN || err == syscall.EINTR:
		c.peekRes = 1 // nothing to read: still there
	case err != nil || n == 0:
		c.peekRes = -1 // reset, or the orderly end of the stream
	default:
		c.peekRes = 1 // bytes waiting (a pipelined request)
	}
	return true
}
