package h1server

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"sync"
	"syscall"
	"testing"
)

// keepAliveOf reads a socket's SO_KEEPALIVE and TCP_KEEPIDLE (seconds).
func keepAliveOf(t *testing.T, nc net.Conn) (on bool, idle int) {
	t.Helper()
	tc := tcpConn(nc)
	if tc == nil {
		t.Fatalf("no TCP socket under %T", nc)
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var ka int
	var gerr error
	if err := rc.Control(func(fd uintptr) {
		if ka, gerr = syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_KEEPALIVE); gerr == nil {
			idle, gerr = syscall.GetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_KEEPIDLE)
		}
	}); err != nil {
		t.Fatal(err)
	}
	if gerr != nil {
		t.Fatal(gerr)
	}
	return ka != 0, idle
}

// unwrapConn stands for a listener wrapper (connection limit, PROXY
// protocol) over the accepted socket.
type unwrapConn struct{ net.Conn }

func (c unwrapConn) Unwrap() net.Conn { return c.Conn }

type wrapListener struct{ net.Listener }

func (l wrapListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return unwrapConn{c}, nil
}

// TestKeepAliveOnlyWhereNeeded: from a listener that leaves TCP
// keep-alive off, a connection that exchanges plain answers keeps it
// off (no socket options per connection), and gets it, with
// net.Listen's 15 s, once it carries a flushed stream or is hijacked,
// also under a wrapper that exposes the socket with Unwrap.
func TestKeepAliveOnlyWhereNeeded(t *testing.T) {
	lc := net.ListenConfig{KeepAlive: -1}
	ln, err := lc.Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	conns := map[string]net.Conn{} // server side, by client address
	type report struct {
		on   bool
		idle int
	}
	hijacked := make(chan report, 1)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/stream":
			_, _ = io.WriteString(w, "event\n")
			w.(http.Flusher).Flush()
			_, _ = io.WriteString(w, "end\n")
		case "/hijack":
			c, _, err := w.(http.Hijacker).Hijack()
			if err != nil {
				t.Error(err)
				return
			}
			on, idle := keepAliveOf(t, c)
			hijacked <- report{on, idle}
			_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
			_ = c.Close()
		default:
			_, _ = io.WriteString(w, "ok")
		}
	})
	s := &Server{Handler: h, ErrorLog: quietLog, ConnState: func(c net.Conn, st http.ConnState) {
		if st == http.StateNew {
			mu.Lock()
			conns[c.RemoteAddr().String()] = c
			mu.Unlock()
		}
	}}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = s.Serve(wrapListener{ln})
	}()
	t.Cleanup(func() {
		_ = s.Close()
		<-done
	})
	addr := ln.Addr().String()

	c := dial(t, addr)
	br := bufio.NewReader(c)
	get := func(path string) {
		t.Helper()
		if _, err := io.WriteString(c, "GET "+path+" HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		res, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, res.Body)
		_ = res.Body.Close()
	}
	server := func() net.Conn {
		mu.Lock()
		defer mu.Unlock()
		sc := conns[c.LocalAddr().String()]
		if sc == nil {
			t.Fatal("the server's side of the connection was not reported")
		}
		return sc
	}

	for range 3 {
		get("/plain")
	}
	if on, _ := keepAliveOf(t, server()); on {
		t.Fatal("TCP keep-alive on after plain answers; want it left off")
	}
	get("/stream")
	if on, idle := keepAliveOf(t, server()); !on || idle != 15 {
		t.Fatalf("after a flushed stream: keep-alive %v, idle %d s; want on, 15 s", on, idle)
	}

	hc := dial(t, addr)
	if _, err := io.WriteString(hc, "GET /hijack HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-hijacked:
		if !r.on || r.idle != 15 {
			t.Fatalf("hijacked connection: keep-alive %v, idle %d s; want on, 15 s", r.on, r.idle)
		}
	case <-t.Context().Done():
		t.Fatal("the hijacking handler never ran")
	}
}

// TestTCPConnUnwraps: the socket is found under wrappers, and a
// connection without one (a pipe) or a wrapper that never ends gives nil.
func TestTCPConnUnwraps(t *testing.T) {
	p1, p2 := net.Pipe()
	defer p1.Close()
	defer p2.Close()
	if tcpConn(p1) != nil || tcpConn(unwrapConn{p1}) != nil {
		t.Fatal("a pipe has no TCP socket")
	}
	var loop selfWrap
	if tcpConn(&loop) != nil {
		t.Fatal("a wrapper that unwraps to itself must give nil")
	}
}

type selfWrap struct{ net.Conn }

func (c *selfWrap) Unwrap() net.Conn { return c }
