package connlimit

import (
	"errors"
	"net"
	"syscall"
	"testing"
	"time"
)

const waitLimit = 10 * time.Second

// accepted runs Accept in the background; the connection or error comes
// out of the channel.
func accepted(ln net.Listener) <-chan net.Conn {
	ch := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			close(ch)
			return
		}
		ch <- c
	}()
	return ch
}

// mustAccept returns the connection ch delivers, failing after waitLimit.
func mustAccept(t *testing.T, ch <-chan net.Conn, what string) net.Conn {
	t.Helper()
	select {
	case c, ok := <-ch:
		if !ok {
			t.Fatalf("%s: Accept failed", what)
		}
		return c
	case <-time.After(waitLimit):
		t.Fatalf("%s was not accepted", what)
		return nil
	}
}

// mustWait checks that ch delivers nothing for a while: Accept is held.
func mustWait(t *testing.T, ch <-chan net.Conn, why string) {
	t.Helper()
	select {
	case <-ch:
		t.Fatal(why)
	case <-time.After(100 * time.Millisecond):
	}
}

func dial(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestLimitKeepsRawSocket(t *testing.T) {
	base, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := Listener(base, 1)
	defer ln.Close()
	addr := base.Addr().String()

	dial(t, addr)
	first := mustAccept(t, accepted(ln), "the first connection")
	// What the HTTP/1.x server needs of the socket is still there.
	sc, ok := first.(syscall.Conn)
	if !ok {
		t.Fatal("a limited connection hides SyscallConn")
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		t.Fatalf("SyscallConn: %v", err)
	}
	fd := -1
	if err := raw.Control(func(f uintptr) { fd = int(f) }); err != nil || fd < 0 {
		t.Fatalf("Control: fd %d, %v", fd, err)
	}
	if _, ok := first.(interface{ CloseWrite() error }); !ok {
		t.Fatal("a limited connection hides CloseWrite")
	}

	// Over the limit, Accept waits until a connection closes; closing it
	// twice frees one slot only.
	dial(t, addr)
	second := accepted(ln)
	mustWait(t, second, "a second connection was accepted over a limit of 1")
	first.Close()
	first.Close()
	c2 := mustAccept(t, second, "the second connection, after the first closed,")
	dial(t, addr)
	third := accepted(ln)
	mustWait(t, third, "a double Close freed two slots")
	c2.Close()
	mustAccept(t, third, "the third connection").Close()
}

func TestAcceptAfterClose(t *testing.T) {
	base, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := Listener(base, 1)
	ln.Close()
	if _, err := ln.Accept(); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Accept after Close: %v; want net.ErrClosed", err)
	}
}

// A listener full of connections still ends its waiting Accept on Close.
func TestCloseEndsWaitingAccept(t *testing.T) {
	base, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := Listener(base, 1)
	dial(t, base.Addr().String())
	c := mustAccept(t, accepted(ln), "the first connection")
	defer c.Close()
	waiting := accepted(ln)
	time.Sleep(20 * time.Millisecond)
	ln.Close()
	select {
	case c, ok := <-waiting:
		if ok {
			c.Close()
			t.Fatal("Accept returned a connection after Close")
		}
	case <-time.After(waitLimit):
		t.Fatal("Accept kept waiting after Close")
	}
}
