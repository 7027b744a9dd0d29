//go:build unix

package sockio

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"syscall"
	"testing"
	"time"
)

// pair is a connected loopback pair: the Writer's side (a *net.TCPConn) and
// the peer.
func pair(t *testing.T) (*net.TCPConn, net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	peer, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { peer.Close() })
	c, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c.(*net.TCPConn), peer
}

func writerOn(t *testing.T, c *net.TCPConn) *Writer {
	t.Helper()
	rc, err := c.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	w := new(Writer)
	w.Reset(rc)
	return w
}

// A write far larger than the socket buffers returns only when every byte
// is written, waiting through the poller while the peer reads slowly, and
// the peer receives exactly the bytes.
func TestWriterWritesEverything(t *testing.T) {
	c, peer := pair(t)
	w := writerOn(t, c)
	want := make([]byte, 32<<20) // more than loopback buffers hold: the writer must wait
	for i := range want {
		want[i] = byte(i * 7)
	}
	got := make(chan []byte, 1)
	go func() {
		var buf bytes.Buffer
		chunk := make([]byte, 64<<10)
		for buf.Len() < len(want) {
			n, err := peer.Read(chunk)
			buf.Write(chunk[:n])
			if err != nil {
				break
			}
		}
		got <- buf.Bytes()
	}()
	n, err := w.Write(want)
	if n != len(want) || err != nil {
		t.Fatalf("Write = %d, %v; want %d, nil", n, err, len(want))
	}
	if b := <-got; !bytes.Equal(b, want) {
		t.Fatalf("peer received %d bytes, not the %d written (or other bytes)", len(b), len(want))
	}
	// The Writer is reusable: a second, small write.
	if n, err := w.Write([]byte("again")); n != 5 || err != nil {
		t.Fatalf("second Write = %d, %v", n, err)
	}
	buf := make([]byte, 5)
	if _, err := io.ReadFull(peer, buf); err != nil || string(buf) != "again" {
		t.Fatalf("peer read %q, %v", buf, err)
	}
}

// The connection's write deadline bounds a write the peer never reads: the
// Writer reports a timeout and how much it wrote.
func TestWriterDeadline(t *testing.T) {
	c, _ := pair(t)
	w := writerOn(t, c)
	if err := c.SetWriteDeadline(time.Now().Add(100 * time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	big := make([]byte, 64<<20) // more than loopback buffers hold
	n, err := w.Write(big)
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("Write = %d, %v; want a deadline error", n, err)
	}
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("error %v is not a timeout net.Error", err)
	}
	var oe *net.OpError
	if !errors.As(err, &oe) || oe.Op != "write" {
		t.Fatalf("deadline error %v: want a *net.OpError with Op \"write\"", err)
	}
	if n <= 0 || n >= len(big) {
		t.Fatalf("wrote %d of %d bytes before the deadline; want some, not all", n, len(big))
	}
}

// Closing the connection ends a write that waits for room.
func TestWriterClose(t *testing.T) {
	c, _ := pair(t)
	w := writerOn(t, c)
	closeEnds(t, c, "Write", func() error {
		_, err := w.Write(make([]byte, 64<<20))
		return err
	})
}

// closeEnds runs call, which waits on c, closes c while it waits, and
// checks that the call ends with net.ErrClosed.
func closeEnds(t *testing.T, c net.Conn, name string, call func() error) {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- call() }()
	time.Sleep(50 * time.Millisecond)
	c.Close()
	select {
	case err := <-done:
		if !errors.Is(err, net.ErrClosed) {
			t.Fatalf("%s after Close: %v; want net.ErrClosed", name, err)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("%s still waiting 10 s after Close", name)
	}
}

// A peer that is gone makes the write fail with the socket's error, as a
// *net.OpError like net.Conn's Write reports it.
func TestWriterPeerGone(t *testing.T) {
	c, peer := pair(t)
	w := writerOn(t, c)
	// Closing with unread bytes makes the peer send a reset.
	if _, err := c.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	peer.(*net.TCPConn).SetLinger(0)
	peer.Close()
	var err error
	for i := 0; i < 100 && err == nil; i++ {
		_, err = w.Write([]byte("after the peer left"))
		time.Sleep(5 * time.Millisecond)
	}
	var oe *net.OpError
	if !errors.As(err, &oe) || oe.Op != "write" {
		t.Fatalf("Write to a reset peer: %v; want a *net.OpError from write", err)
	}
	if !errors.Is(err, syscall.ECONNRESET) && !errors.Is(err, syscall.EPIPE) {
		t.Fatalf("Write to a reset peer: %v; want ECONNRESET or EPIPE", err)
	}
}

func readerOn(t *testing.T, c *net.TCPConn) *Reader {
	t.Helper()
	rc, err := c.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	r := new(Reader)
	r.Reset(rc)
	return r
}

// A Reader waits for bytes through the poller, returns what arrived, and
// io.EOF at the end of the stream.
func TestReaderReads(t *testing.T) {
	c, peer := pair(t)
	r := readerOn(t, c)
	go func() {
		time.Sleep(20 * time.Millisecond) // the first Read waits
		peer.Write([]byte("hello"))
		time.Sleep(20 * time.Millisecond)
		peer.Write([]byte(", world"))
		peer.Close()
	}()
	got, err := io.ReadAll(r)
	if err != nil || string(got) != "hello, world" {
		t.Fatalf("ReadAll = %q, %v; want %q, nil", got, err, "hello, world")
	}
	if n, err := r.Read(make([]byte, 4)); n != 0 || err != io.EOF {
		t.Fatalf("Read after the end = %d, %v; want 0, io.EOF", n, err)
	}
}

// The read deadline ends a wait for bytes that never come, as a timeout
// that names the operation "read"; Close ends one too.
func TestReaderDeadlineAndClose(t *testing.T) {
	c, _ := pair(t)
	r := readerOn(t, c)
	if err := c.SetReadDeadline(time.Now().Add(50 * time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	n, err := r.Read(make([]byte, 8))
	var ne net.Error
	if n != 0 || !errors.Is(err, os.ErrDeadlineExceeded) || !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("Read past the deadline = %d, %v; want 0 and a timeout", n, err)
	}
	var oe *net.OpError
	if !errors.As(err, &oe) || oe.Op != "read" {
		t.Fatalf("deadline error %v: want a *net.OpError with Op \"read\"", err)
	}
	c.SetReadDeadline(time.Time{})
	closeEnds(t, c, "Read", func() error {
		_, err := r.Read(make([]byte, 8))
		return err
	})
}

// A write announces itself to the scheduler only when no waiting reader
// was woken by the poller for pollOverdue, and then at most once per
// pollOverdue; a Reader woken by the poller records the poll.
func TestAnnounceOnlyWhenPollOverdue(t *testing.T) {
	c, peer := pair(t)
	w := writerOn(t, c)
	write := func() {
		t.Helper()
		if _, err := w.Write([]byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	polledAt.Store(0)
	announcedAt.Store(0)
	time.Sleep(pollOverdue) // epoch is older still: the poll looks overdue
	write()
	first := announcedAt.Load()
	if first == 0 {
		t.Fatal("a write with the poll overdue was not announced")
	}
	write()
	if announcedAt.Load() != first {
		t.Fatal("a second write within pollOverdue was announced too")
	}

	// A Reader whose wait the poller ends records the poll.
	r := readerOn(t, c)
	go func() {
		time.Sleep(20 * time.Millisecond)
		peer.Write([]byte("y"))
	}()
	if _, err := r.Read(make([]byte, 1)); err != nil {
		t.Fatal(err)
	}
	if polledAt.Load() == 0 {
		t.Fatal("a Reader woken by the poller did not record the poll")
	}
	time.Sleep(pollOverdue)
	Polled()
	write()
	if announcedAt.Load() != first {
		t.Fatal("a write right after a poll was announced")
	}
}

// PolledWithin reports whether Polled recorded a poller wake-up within
// the span before the given time.
func TestPolledWithin(t *testing.T) {
	polledAt.Store(0)
	time.Sleep(2 * time.Millisecond) // epoch is older still
	if PolledWithin(time.Now(), time.Millisecond) {
		t.Fatal("no wake-up recorded, yet reported within 1 ms")
	}
	Polled()
	now := time.Now()
	if !PolledWithin(now, time.Millisecond) {
		t.Fatal("a wake-up just recorded is not reported within 1 ms")
	}
	if PolledWithin(now.Add(2*time.Millisecond), time.Millisecond) {
		t.Fatal("a wake-up 2 ms before is reported within 1 ms")
	}
	if !PolledWithin(now.Add(2*time.Millisecond), 3*time.Millisecond) {
		t.Fatal("a wake-up 2 ms before is not reported within 3 ms")
	}
}
