package gateway

import (
	"net"
	"syscall"
	"testing"

	"github.com/portunus-gw/portunus/internal/config"
	"github.com/portunus-gw/portunus/internal/edge/tlsconf"
)

// acceptedKeepAlive opens l's socket, connects to it and reports whether
// the accepted connection has TCP keep-alive on.
func acceptedKeepAlive(t *testing.T, l *listener) bool {
	t.Helper()
	ln, err := l.listen()
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	sc, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer sc.Close()
	rc, err := sc.(*net.TCPConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var ka int
	var gerr error
	if err := rc.Control(func(fd uintptr) {
		ka, gerr = syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_KEEPALIVE)
	}); err != nil {
		t.Fatal(err)
	}
	if gerr != nil {
		t.Fatal(gerr)
	}
	return ka != 0
}

// TestListenKeepAlive: a plain listener, served by the HTTP/1.x server,
// accepts without TCP keep-alive (the server switches it on for streams
// and hijacked connections); TLS and h2c listeners, served by net/http,
// keep it on every connection, as does a plain one when
// PORTUNUS_HTTP1_SERVER=stdlib hands it to net/http.
func TestListenKeepAlive(t *testing.T) {
	plain := &listener{cfg: config.Listener{Address: "127.0.0.1:0"}}
	if acceptedKeepAlive(t, plain) {
		t.Error("plain listener: keep-alive on at accept; want off")
	}
	h2c := &listener{cfg: config.Listener{Address: "127.0.0.1:0", H2C: true}}
	if !acceptedKeepAlive(t, h2c) {
		t.Error("h2c listener: keep-alive off at accept; want on")
	}
	tls := &listener{cfg: config.Listener{Address: "127.0.0.1:0"}, tls: &tlsconf.Manager{}}
	if !acceptedKeepAlive(t, tls) {
		t.Error("TLS listener: keep-alive off at accept; want on")
	}
	t.Setenv(envHTTP1Server, "stdlib")
	if !acceptedKeepAlive(t, plain) {
		t.Error("plain listener on net/http: keep-alive off at accept; want on")
	}
}
