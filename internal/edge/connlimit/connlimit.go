// Package connlimit bounds how many connections a listener has open at
// once: over the limit, Accept waits, and new connections wait in the
// kernel's accept queue. It is netutil.LimitListener's semaphore, with
// connections that keep what the server uses of the accepted socket: its
// raw descriptor (SyscallConn: the HTTP/1.x server waits for a client's
// next request, and parks an idle connection, without a buffer or a
// goroutine) and CloseWrite (its lingering close). A wrapper that hid them
// would cost every connection of a limited listener that memory.
package connlimit

import (
	"errors"
	"net"
	"sync"
	"syscall"
)

// Listener returns ln limited to n connections open at once (n > 0).
func Listener(ln net.Listener, n int) net.Listener {
	return &listener{Listener: ln, sem: make(chan struct{}, n), done: make(chan struct{})}
}

type listener struct {
	net.Listener
	sem       chan struct{}
	closeOnce sync.Once
	done      chan struct{} // closed by Close
}

func (l *listener) Accept() (net.Conn, error) {
	select {
	case l.sem <- struct{}{}:
	case <-l.done:
		return nil, net.ErrClosed
	}
	c, err := l.Listener.Accept()
	if err != nil {
		<-l.sem
		return nil, err
	}
	return &conn{Conn: c, release: l.release}, nil
}

func (l *listener) release() { <-l.sem }

func (l *listener) Close() error {
	err := l.Listener.Close()
	l.closeOnce.Do(func() { close(l.done) })
	return err
}

// conn frees its slot when it closes, once.
type conn struct {
	net.Conn
	releaseOnce sync.Once
	release     func()
}

func (c *conn) Close() error {
	err := c.Conn.Close()
	c.releaseOnce.Do(c.release)
	return err
}

// SyscallConn is the accepted socket's, when it has one.
func (c *conn) SyscallConn() (syscall.RawConn, error) {
	if sc, ok := c.Conn.(syscall.Conn); ok {
		return sc.SyscallConn()
	}
	return nil, errors.ErrUnsupported
}

// Unwrap is the accepted socket, for code that sets socket options.
func (c *conn) Unwrap() net.Conn { return c.Conn }

// CloseWrite half-closes the accepted socket, when it can.
func (c *conn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return errors.ErrUnsupported
}
