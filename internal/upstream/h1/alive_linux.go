package h1

import "syscall"

// alive reports whether a pooled connection is still usable: not closed
// or reset by the upstream while it idled, and with no unsolicited bytes
// waiting. One non-blocking MSG_PEEK, no goroutine per idle connection.
func (cn *conn) alive() bool {
	if cn.raw == nil {
		sc, ok := cn.nc.(syscall.Conn)
		if !ok {
			return true
		}
		rc, err := sc.SyscallConn()
		if err != nil {
			return false
		}
		cn.raw = rc // kept: SyscallConn allocates
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
