package h1server

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"net/http"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// goroutineID is the calling goroutine's number, from its stack header
// ("goroutine 42 [running]:"); tests only.
func goroutineID() int {
	var buf [64]byte
	b := buf[:runtime.Stack(buf[:], false)]
	b = bytes.TrimPrefix(b, []byte("goroutine "))
	id, _ := strconv.Atoi(string(b[:bytes.IndexByte(b, ' ')]))
	return id
}

// idleWorkers is how many workers wait for a connection.
func (s *Server) idleWorkers() int {
	s.workers.mu.Lock()
	defer s.workers.mu.Unlock()
	return len(s.workers.idle)
}

// waitFor polls cond until it holds, or fails the test after
// safetyTimeout.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(safetyTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestWorkersReused: connections that follow one another are served by
// the goroutine that served the one before (it waits for the next
// instead of ending), not by a new goroutine each.
func TestWorkersReused(t *testing.T) {
	var mu sync.Mutex
	ids := map[int]int{}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		ids[goroutineID()]++
		mu.Unlock()
		_, _ = io.WriteString(w, "ok")
	})
	s, addr := startOurs(t, h, nil)
	const conns = 20
	for i := range conns {
		c := dial(t, addr)
		if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		a, err := readAnswer(bufio.NewReader(c), "GET")
		if err != nil || a.Body != "ok" {
			t.Fatalf("connection %d: %+v %v", i, a, err)
		}
		_ = c.Close()
		// The goroutine is back among the waiting ones before the next
		// connection comes (the first time, after its first one).
		waitFor(t, "a waiting worker", func() bool { return s.idleWorkers() == 1 })
	}
	if len(ids) != 1 {
		t.Fatalf("%d connections were served by %d goroutines; want one, reused: %v", conns, len(ids), ids)
	}
}

// TestWorkersBounded: after a burst of concurrent connections at most
// maxIdleWorkers goroutines wait for more, the others end; Close ends
// the waiting ones, and no goroutine is left.
func TestWorkersBounded(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	const burst = maxIdleWorkers + 36
	release := make(chan struct{})
	var started sync.WaitGroup
	started.Add(burst)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		started.Done()
		<-release
		_, _ = io.WriteString(w, "ok")
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{Handler: h, ErrorLog: quietLog}
	served := make(chan error, 1)
	go func() { served <- s.Serve(ln) }()

	clients := make([]net.Conn, burst)
	for i := range clients {
		clients[i] = dial(t, ln.Addr().String())
		if _, err := io.WriteString(clients[i], "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
	}
	started.Wait() // every connection has a goroutine of its own
	before := runtime.NumGoroutine()
	close(release)
	for i, c := range clients {
		a, err := readAnswer(bufio.NewReader(c), "GET")
		if err != nil || a.Body != "ok" {
			t.Fatalf("connection %d: %+v %v", i, a, err)
		}
		_ = c.Close()
	}
	waitFor(t, "the burst's goroutines to end or wait", func() bool {
		return s.idleWorkers() == maxIdleWorkers && runtime.NumGoroutine() <= before-(burst-maxIdleWorkers)
	})
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-served; !errors.Is(err, http.ErrServerClosed) {
		t.Fatal(err)
	}
	if n := s.idleWorkers(); n != 0 {
		t.Fatalf("%d workers wait after Close", n)
	}
	waitGoroutinesGone(t)
}
