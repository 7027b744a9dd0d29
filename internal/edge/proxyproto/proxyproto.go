// Package proxyproto accepts PROXY protocol v1 and v2 headers
// (https://www.haproxy.org/download/2.9/doc/proxy-protocol.txt) on a
// listener, from trusted peers only.
//
// Policy, decided per connection from the TCP peer address:
//
//   - A trusted peer (inside one of the trusted prefixes) MUST open the
//     connection with a v1 or v2 header, sent at once, within the header
//     timeout. Its source address becomes the connection's RemoteAddr, so
//     the gateway's client IP, X-Forwarded-For and access log use it. A
//     missing, slow or malformed header closes the connection: the PROXY
//     spec forbids guessing whether a header is present, and guessing
//     would let a half-sent header reach the HTTP server as request bytes.
//   - A v2 LOCAL command (load-balancer health checks), a v1 UNKNOWN or an
//     address family other than TCP over IPv4/IPv6 keeps the peer address.
//   - An untrusted peer that sends a header is refused (the connection is
//     closed before anything is served); one that sends plain HTTP or TLS is
//     served with its own address. Its first bytes are inspected under the
//     HTTP server's own read deadlines, so idle pre-connections are not cut
//     by the header timeout.
//
// TLVs are ignored. The header is consumed: the HTTP server only ever sees
// the bytes after it. Header processing happens on the connection's first
// Read or RemoteAddr call, in the server's per-connection goroutine, never
// in Accept, so a slow peer cannot stall the accept loop.
package proxyproto

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/netip"
	"sync"
	"time"

	pp "github.com/pires/go-proxyproto"
)

// headerBufferSize holds the longest v1 header (107 bytes) with room to
// spare; v2 headers longer than the buffer are read through it.
const headerBufferSize = 256

// Errors that close a connection; they reach the HTTP server wrapped in a
// *net.OpError so it closes silently instead of answering 400.
var (
	errUntrustedHeader = errors.New("proxyproto: PROXY header from an untrusted peer")
	errMissingHeader   = errors.New("proxyproto: trusted peer sent no PROXY header")
)

// Wrap returns a listener whose connections from trusted peers carry the
// client address announced in their PROXY header. headerTimeout bounds how
// long a trusted peer may take to send its header (<= 0: 5 seconds).
func Wrap(ln net.Listener, trusted []netip.Prefix, headerTimeout time.Duration) net.Listener {
	if headerTimeout <= 0 {
		headerTimeout = 5 * time.Second
	}
	return &listener{Listener: ln, trusted: append([]netip.Prefix(nil), trusted...), timeout: headerTimeout}
}

type listener struct {
	net.Listener
	trusted []netip.Prefix
	timeout time.Duration
}

// Accept wraps the next connection; it never reads from it.
func (l *listener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &conn{Conn: c, trusted: l.isTrusted(c.RemoteAddr()), timeout: l.timeout}, nil
}

func (l *listener) isTrusted(a net.Addr) bool {
	ta, ok := a.(*net.TCPAddr)
	if !ok {
		return false
	}
	ip := ta.AddrPort().Addr().Unmap()
	for _, p := range l.trusted {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// conn reads the PROXY header (or checks its absence) once, then passes
// reads through: first what the header read buffered, then the socket.
type conn struct {
	net.Conn
	trusted bool
	timeout time.Duration

	once   sync.Once
	err    error         // set by process; fails every later Read/Write
	br     *bufio.Reader // nil once drained
	remote net.Addr      // announced client address, or nil

	mu           sync.Mutex
	readDeadline time.Time // the caller's, restored after the header read
}

func (c *conn) process() {
	c.once.Do(func() {
		c.br = bufio.NewReaderSize(c.Conn, headerBufferSize)
		if c.trusted {
			c.err = c.readTrusted()
		} else {
			c.err = c.checkUntrusted()
		}
		if c.err != nil {
			c.br = nil
			c.err = &net.OpError{Op: "read", Net: "tcp", Source: c.Conn.LocalAddr(), Addr: c.Conn.RemoteAddr(), Err: c.err}
		}
	})
}

// readTrusted reads the mandatory header within the header timeout (or
// the caller's earlier deadline).
func (c *conn) readTrusted() error {
	c.mu.Lock()
	restore := c.readDeadline
	c.mu.Unlock()
	dl := time.Now().Add(c.timeout)
	if !restore.IsZero() && restore.Before(dl) {
		dl = restore
	}
	if err := c.Conn.SetReadDeadline(dl); err != nil {
		return err
	}
	h, err := pp.Read(c.br)
	if derr := c.Conn.SetReadDeadline(restore); err == nil && derr != nil {
		return derr
	}
	if err != nil {
		if errors.Is(err, pp.ErrNoProxyProtocol) {
			return errMissingHeader
		}
		return err
	}
	if h.Command.IsProxy() {
		if src, ok := h.SourceAddr.(*net.TCPAddr); ok && src.IP != nil {
			c.remote = src
		}
	}
	return nil
}

// checkUntrusted refuses a connection that opens with a PROXY signature.
// pp.Read leaves the buffer untouched when there is none.
func (c *conn) checkUntrusted() error {
	_, err := pp.Read(c.br)
	switch {
	case errors.Is(err, pp.ErrNoProxyProtocol):
		return nil
	case err == nil:
		return errUntrustedHeader
	}
	var ne net.Error
	if errors.As(err, &ne) || errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) {
		return err // a socket error while peeking: the server handles it
	}
	return errUntrustedHeader // a signature followed by garbage
}

// Read returns the bytes after the header.
func (c *conn) Read(b []byte) (int, error) {
	c.process()
	if c.err != nil {
		return 0, c.err
	}
	if c.br != nil {
		if c.br.Buffered() > 0 {
			n, err := c.br.Read(b)
			if c.br.Buffered() == 0 {
				c.br = nil
			}
			return n, err
		}
		c.br = nil
	}
	return c.Conn.Read(b)
}

// Write refuses to answer a peer whose header was refused.
func (c *conn) Write(b []byte) (int, error) {
	c.process()
	if c.err != nil {
		return 0, c.err
	}
	return c.Conn.Write(b)
}

// RemoteAddr is the announced client for a trusted peer's PROXY header
// and the peer otherwise. For a trusted peer it waits for the header.
func (c *conn) RemoteAddr() net.Addr {
	if !c.trusted {
		return c.Conn.RemoteAddr()
	}
	c.process()
	if c.remote != nil {
		return c.remote
	}
	return c.Conn.RemoteAddr()
}

// SetDeadline and SetReadDeadline remember the read deadline so the
// header read can restore it.
func (c *conn) SetDeadline(t time.Time) error {
	c.mu.Lock()
	c.readDeadline = t
	c.mu.Unlock()
	return c.Conn.SetDeadline(t)
}

func (c *conn) SetReadDeadline(t time.Time) error {
	c.mu.Lock()
	c.readDeadline = t
	c.mu.Unlock()
	return c.Conn.SetReadDeadline(t)
}

// CloseWrite keeps the TCP half-close net/http uses for a graceful close.
func (c *conn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// Unwrap gives the raw socket to code that needs it (socket options).
func (c *conn) Unwrap() net.Conn { return c.Conn }
