//go:build unix

package sockio

import (
	"errors"
	"io"
	"net"
	"syscall"
	"testing"
)

// ReadNow on a real loopback socket: nothing yet, then the bytes, then the
// end of the stream.
func TestReadNow(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	server, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer server.Close()
	raw, err := server.(syscall.Conn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	read := func() (int, error) {
		var n int
		var rerr error
		buf := make([]byte, 16)
		// Control does not wait: each call is one ReadNow.
		if err := raw.Control(func(fd uintptr) { n, rerr = ReadNow(int(fd), buf) }); err != nil {
			t.Fatal(err)
		}
		return n, rerr
	}
	if n, err := read(); n != 0 || !errors.Is(err, ErrWouldBlock) {
		t.Fatalf("before any byte: %d, %v; want 0, ErrWouldBlock", n, err)
	}
	client.Write([]byte("hello"))
	var got int
	for got == 0 { // the bytes cross loopback asynchronously
		n, err := read()
		if err != nil && !errors.Is(err, ErrWouldBlock) {
			t.Fatalf("read: %v", err)
		}
		got = n
	}
	if got != 5 {
		t.Fatalf("read %d bytes; want 5", got)
	}
	client.Close()
	for {
		n, err := read()
		if errors.Is(err, ErrWouldBlock) {
			continue
		}
		if n != 0 || err != io.EOF {
			t.Fatalf("after close: %d, %v; want 0, io.EOF", n, err)
		}
		break
	}
}
