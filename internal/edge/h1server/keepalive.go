package h1server

import "net"

// TCP keep-alive. net.Listen switches it on for every accepted
// connection: four socket options, about 4 % of the CPU a connection
// costs the gateway when it carries one request (Connection: close).
// An HTTP/1.x exchange does not need it: the read header, body and idle
// timeouts bound every wait on the client. It matters only where a
// connection can be silent for long with nobody bounding the wait: a
// stream the handler flushes (an event stream quiet for minutes) and a
// connection handed over (WebSocket). Served from a listener that leaves
// keep-alive off (net.ListenConfig{KeepAlive: -1}), the server switches
// it on for those, with net.Listen's settings (15 s idle, 15 s between
// probes, 9 probes); on a listener that switched it on already this is
// one extra call per stream or hand-over.

// keepAlive switches TCP keep-alive on for the connection, once; the
// socket is found under the listener wrappers (connection limit, PROXY
// protocol) that expose it with Unwrap.
func (c *conn) keepAlive() {
	// A stream flushes often: a load, not a swap, once it is on.
	if c.keepAliveOn.Load() || c.keepAliveOn.Swap(true) {
		return
	}
	if tc := tcpConn(c.rwc); tc != nil {
		_ = tc.SetKeepAliveConfig(net.KeepAliveConfig{Enable: true})
	}
}

// tcpConn is the TCP socket under nc, or nil.
func tcpConn(nc net.Conn) *net.TCPConn {
	for range 8 { // wrappers are few; a cycle must not spin
		switch c := nc.(type) {
		case *net.TCPConn:
			return c
		case interface{ Unwrap() net.Conn }:
			nc = c.Unwrap()
		default:
			return nil
		}
	}
	return nil
}
