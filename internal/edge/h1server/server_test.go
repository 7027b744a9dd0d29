package h1server

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// readAll reads c until the server closes it (or the safety deadline).
func readAll(t *testing.T, c net.Conn) ([]byte, error) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(safetyTimeout))
	b, err := io.ReadAll(c)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("server did not close the connection; read %q", b)
	}
	return b, err
}

// waitChan waits for ch under the safety timeout.
func waitChan[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(safetyTimeout):
		t.Fatalf("timed out waiting for %s", what)
		panic("unreachable")
	}
}

func TestReadHeaderTimeout(t *testing.T) {
	_, addr := startOurs(t, http.HandlerFunc(diffHandler), func(s *Server) {
		s.ReadHeaderTimeout = 50 * time.Millisecond
	})
	t.Run("slow head", func(t *testing.T) {
		c := dial(t, addr)
		if _, err := io.WriteString(c, "GET /cl?n=1 HTTP/1.1\r\nHost: x\r\n"); err != nil {
			t.Fatal(err)
		}
		b, _ := readAll(t, c)
		if len(b) != 0 {
			t.Fatalf("got an answer to an unfinished head: %q", b)
		}
	})
	t.Run("nothing sent", func(t *testing.T) {
		c := dial(t, addr)
		b, _ := readAll(t, c)
		if len(b) != 0 {
			t.Fatalf("got %q", b)
		}
	})
	t.Run("slow second head", func(t *testing.T) {
		c := dial(t, addr)
		br := bufio.NewReader(c)
		if _, err := io.WriteString(c, get("/cl?n=1")+"GET /cl?n=1 HTTP/1.1\r\n"); err != nil {
			t.Fatal(err)
		}
		if _, err := readAnswer(br, "GET"); err != nil {
			t.Fatal(err)
		}
		rest, _ := io.ReadAll(br)
		if len(rest) != 0 {
			t.Fatalf("got %q after the first answer", rest)
		}
	})
}

func TestIdleTimeout(t *testing.T) {
	_, addr := startOurs(t, http.HandlerFunc(diffHandler), func(s *Server) {
		s.ReadHeaderTimeout = safetyTimeout
		s.IdleTimeout = 50 * time.Millisecond
	})
	c := dial(t, addr)
	br := bufio.NewReader(c)
	for range 2 {
		if _, err := io.WriteString(c, get("/cl?n=3")); err != nil {
			t.Fatal(err)
		}
		a, err := readAnswer(br, "GET")
		if err != nil || a.Status != 200 || a.Close {
			t.Fatalf("%+v %v", a, err)
		}
	}
	_ = c.SetReadDeadline(time.Now().Add(safetyTimeout))
	b, err := io.ReadAll(br)
	if err != nil || len(b) != 0 {
		t.Fatalf("idle connection: read %q, %v; want a clean close", b, err)
	}
}

func TestWriteTimeout(t *testing.T) {
	for _, tc := range []struct {
		name string
		cl   bool
	}{{"content-length", true}, {"chunked", false}} {
		t.Run(tc.name, func(t *testing.T) {
			werr := make(chan error, 1)
			h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if tc.cl {
					w.Header().Set("Content-Length", "1073741824")
				}
				// The client never reads: a write must fail on the
				// deadline once the socket buffers are full.
				p := make([]byte, 64<<10)
				for range 1 << 14 {
					if _, err := w.Write(p); err != nil {
						werr <- err
						return
					}
					if !tc.cl {
						if err := http.NewResponseController(w).Flush(); err != nil {
							werr <- err
							return
						}
					}
				}
				werr <- errors.New("1 GiB written to a client that reads nothing")
			})
			_, addr := startOurs(t, h, func(s *Server) { s.WriteTimeout = 100 * time.Millisecond })
			c := dial(t, addr)
			if _, err := io.WriteString(c, get("/")); err != nil {
				t.Fatal(err)
			}
			err := waitChan(t, werr, "the handler's write error")
			if !errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatalf("write error %v, want a deadline error", err)
			}
			// The connection is closed: reading drains what was sent.
			if _, err := readAll(t, c); err != nil && !isEOFish(err) {
				t.Fatal(err)
			}
		})
	}
}

// TestClientGone: the request's context ends when the client leaves,
// whether the handler waits on Done or only polls Err.
func TestClientGone(t *testing.T) {
	for _, tc := range []struct {
		name string
		wait func(ctx context.Context) error
		raw  string
	}{
		{"Done", func(ctx context.Context) error {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(safetyTimeout):
				return errors.New("Done never closed")
			}
		}, get("/")},
		{"Err", func(ctx context.Context) error {
			tk := time.NewTicker(5 * time.Millisecond)
			defer tk.Stop()
			limit := time.After(safetyTimeout)
			for {
				if err := ctx.Err(); err != nil {
					return err
				}
				select {
				case <-tk.C:
				case <-limit:
					return errors.New("Err stayed nil")
				}
			}
		}, get("/")},
		{"Done after body", func(ctx context.Context) error {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(safetyTimeout):
				return errors.New("Done never closed")
			}
		}, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"},
		{"Err after chunked body", func(ctx context.Context) error {
			for deadline := time.Now().Add(safetyTimeout); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
				if err := ctx.Err(); err != nil {
					return err
				}
			}
			return errors.New("Err stayed nil")
		}, "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" + chunked([]byte("hello"), 2, "")},
		{"derived context", func(ctx context.Context) error {
			ctx, cancel := context.WithTimeout(ctx, time.Hour)
			defer cancel()
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(safetyTimeout):
				return errors.New("derived Done never closed")
			}
		}, get("/")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			started, result := make(chan struct{}), make(chan error, 1)
			h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if _, err := io.ReadAll(r.Body); err != nil {
					result <- err
					return
				}
				if err := r.Context().Err(); err != nil {
					result <- errors.New("context ended before the client left")
					return
				}
				close(started)
				result <- tc.wait(r.Context())
			})
			_, addr := startOurs(t, h, nil)
			c := dial(t, addr)
			if _, err := io.WriteString(c, tc.raw); err != nil {
				t.Fatal(err)
			}
			waitChan(t, started, "the handler")
			_ = c.Close()
			if err := waitChan(t, result, "the handler's result"); !errors.Is(err, context.Canceled) {
				t.Fatalf("got %v, want context.Canceled", err)
			}
		})
	}
}

// TestContextEndsAfterHandler: a request's context is cancelled once its
// handler returns, even when nobody asked for Done while it ran.
func TestContextEndsAfterHandler(t *testing.T) {
	ctxs := make(chan context.Context, 2)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctxs <- r.Context()
		_, _ = io.WriteString(w, "ok")
	})
	_, addr := startOurs(t, h, nil)
	c := dial(t, addr)
	br := bufio.NewReader(c)
	for range 2 {
		if _, err := io.WriteString(c, get("/")); err != nil {
			t.Fatal(err)
		}
		if _, err := readAnswer(br, "GET"); err != nil {
			t.Fatal(err)
		}
	}
	first, second := <-ctxs, <-ctxs
	// The second request was read after the first handler returned.
	if !errors.Is(first.Err(), context.Canceled) {
		t.Fatalf("first request's context: %v", first.Err())
	}
	select {
	case <-first.Done():
	default:
		t.Fatal("first request's Done still open")
	}
	waitChan(t, second.Done(), "the second request's context")
	if first.Value(http.ServerContextKey) != nil || first.Value("x") != nil {
		t.Fatal("the request context carries no values")
	}
	if _, ok := first.Deadline(); ok {
		t.Fatal("the request context has no deadline")
	}
}

func TestAfterFuncOnClientClose(t *testing.T) {
	fired, registered := make(chan struct{}), make(chan struct{})
	stopResult := make(chan bool, 1)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// A registration stopped before the end never runs.
		stop := context.AfterFunc(r.Context(), func() { t.Error("stopped AfterFunc ran") })
		stopResult <- stop()
		context.AfterFunc(r.Context(), func() { close(fired) })
		close(registered)
		// Returning only when the client left: the callback must have
		// fired from the client's departure, not from the return.
		select {
		case <-fired:
		case <-time.After(safetyTimeout):
		}
	})
	_, addr := startOurs(t, h, nil)
	c := dial(t, addr)
	if _, err := io.WriteString(c, get("/")); err != nil {
		t.Fatal(err)
	}
	waitChan(t, registered, "the handler")
	if !<-stopResult {
		t.Fatal("stop reported false before the context ended")
	}
	_ = c.Close()
	waitChan(t, fired, "AfterFunc")
}

func TestHijack(t *testing.T) {
	states := newStateLog()
	got := make(chan string, 1)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			got <- "hijack: " + err.Error()
			return
		}
		defer conn.Close()
		if _, _, err := http.NewResponseController(w).Hijack(); !errors.Is(err, http.ErrHijacked) {
			got <- "second hijack: " + errString(err)
			return
		}
		if _, err := w.Write([]byte("x")); !errors.Is(err, http.ErrHijacked) {
			got <- "write after hijack: " + errString(err)
			return
		}
		if err := r.Context().Err(); err != nil {
			got <- "context ended at hijack"
			return
		}
		// The bytes pipelined after the head are in brw.
		p := make([]byte, len("PIPELINED"))
		if _, err := io.ReadFull(brw, p); err != nil {
			got <- "read: " + err.Error()
			return
		}
		if _, err := conn.Write([]byte("RAW " + string(p))); err != nil {
			got <- "write: " + err.Error()
			return
		}
		got <- ""
	})
	_, addr := startOurs(t, h, func(s *Server) { s.ConnState = states.hook })
	c := dial(t, addr)
	if _, err := io.WriteString(c, get("/")+"PIPELINED"); err != nil {
		t.Fatal(err)
	}
	if msg := waitChan(t, got, "the handler"); msg != "" {
		t.Fatal(msg)
	}
	b, _ := readAll(t, c)
	if string(b) != "RAW PIPELINED" {
		t.Fatalf("got %q", b)
	}
	states.wait(t, c.LocalAddr().String(), http.StateHijacked)
	if s := states.get(c.LocalAddr().String()); !equalStates(s, http.StateNew, http.StateActive, http.StateHijacked) {
		t.Fatalf("states %v", s)
	}
}

func errString(err error) string {
	if err == nil {
		return "<nil>"
	}
	return err.Error()
}

func TestResponseController(t *testing.T) {
	t.Run("SetReadDeadline", func(t *testing.T) {
		res := make(chan error, 1)
		h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			rc := http.NewResponseController(w)
			if err := rc.SetReadDeadline(time.Now().Add(20 * time.Millisecond)); err != nil {
				res <- err
				return
			}
			_, err := io.ReadAll(r.Body) // the client sends 1 of 10 bytes
			res <- err
		})
		_, addr := startOurs(t, h, nil)
		c := dial(t, addr)
		if _, err := io.WriteString(c, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nx"); err != nil {
			t.Fatal(err)
		}
		if err := waitChan(t, res, "the body read"); !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("body read: %v, want the deadline", err)
		}
	})
	t.Run("SetWriteDeadline", func(t *testing.T) {
		res := make(chan error, 1)
		h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			rc := http.NewResponseController(w)
			if err := rc.SetWriteDeadline(time.Unix(1, 0)); err != nil {
				res <- err
				return
			}
			w.Header().Set("Content-Length", "1000000")
			_, err := w.Write(make([]byte, 1000000))
			res <- err
		})
		_, addr := startOurs(t, h, nil)
		c := dial(t, addr)
		if _, err := io.WriteString(c, get("/")); err != nil {
			t.Fatal(err)
		}
		if err := waitChan(t, res, "the write"); !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("write: %v, want the deadline", err)
		}
	})
	t.Run("Flush", func(t *testing.T) {
		release := make(chan struct{})
		h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/plain")
			_, _ = io.WriteString(w, "first")
			if err := http.NewResponseController(w).Flush(); err != nil {
				t.Error(err)
			}
			<-release // the client reads "first" while the handler waits
			_, _ = io.WriteString(w, "second")
		})
		_, addr := startOurs(t, h, nil)
		c := dial(t, addr)
		br := bufio.NewReader(c)
		if _, err := io.WriteString(c, get("/")); err != nil {
			t.Fatal(err)
		}
		res, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		p := make([]byte, 5)
		if _, err := io.ReadFull(res.Body, p); err != nil || string(p) != "first" {
			t.Fatalf("%q %v", p, err)
		}
		close(release)
		rest, err := io.ReadAll(res.Body)
		if err != nil || string(rest) != "second" {
			t.Fatalf("%q %v", rest, err)
		}
	})
	t.Run("EnableFullDuplex", func(t *testing.T) {
		// The handler echoes each line of the body as it arrives; the
		// client sends the next line only after reading the echo.
		h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			rc := http.NewResponseController(w)
			if err := rc.EnableFullDuplex(); err != nil {
				t.Error(err)
				return
			}
			w.Header().Set("Content-Type", "text/plain")
			w.WriteHeader(http.StatusOK)
			_ = rc.Flush()
			sc := bufio.NewScanner(r.Body)
			for sc.Scan() {
				_, _ = io.WriteString(w, "echo "+sc.Text()+"\n")
				_ = rc.Flush()
			}
		})
		_, addr := startOurs(t, h, nil)
		c := dial(t, addr)
		br := bufio.NewReader(c)
		if _, err := io.WriteString(c, "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		res, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		body := bufio.NewReader(res.Body)
		for _, line := range []string{"one", "two", "three"} {
			if _, err := io.WriteString(c, chunkOf(line+"\n")); err != nil {
				t.Fatal(err)
			}
			got, err := body.ReadString('\n')
			if err != nil || got != "echo "+line+"\n" {
				t.Fatalf("%q %v", got, err)
			}
		}
		if _, err := io.WriteString(c, "0\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		if rest, err := io.ReadAll(body); err != nil || len(rest) != 0 {
			t.Fatalf("%q %v", rest, err)
		}
	})
}

func chunkOf(s string) string {
	return strings.ToUpper(strconvHex(len(s))) + "\r\n" + s + "\r\n"
}

func strconvHex(n int) string {
	const digits = "0123456789abcdef"
	if n == 0 {
		return "0"
	}
	var b []byte
	for ; n > 0; n >>= 4 {
		b = append([]byte{digits[n&15]}, b...)
	}
	return string(b)
}

func TestShutdown(t *testing.T) {
	inHandler, release := make(chan struct{}), make(chan struct{})
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			close(inHandler)
			<-release
		}
		w.Header().Set("Content-Type", "text/plain")
		_, _ = io.WriteString(w, "done")
	})
	s, addr := startOurs(t, h, nil)

	// An idle keep-alive connection.
	idle := dial(t, addr)
	idleBr := bufio.NewReader(idle)
	if _, err := io.WriteString(idle, get("/")); err != nil {
		t.Fatal(err)
	}
	if a, err := readAnswer(idleBr, "GET"); err != nil || a.Close {
		t.Fatalf("%+v %v", a, err)
	}
	// A connection with a request in flight.
	busy := dial(t, addr)
	busyBr := bufio.NewReader(busy)
	if _, err := io.WriteString(busy, get("/slow")); err != nil {
		t.Fatal(err)
	}
	waitChan(t, inHandler, "the slow handler")

	shut := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), safetyTimeout)
		defer cancel()
		shut <- s.Shutdown(ctx)
	}()

	// The idle connection is closed without an answer.
	_ = idle.SetReadDeadline(time.Now().Add(safetyTimeout))
	if b, err := io.ReadAll(idleBr); len(b) != 0 || (err != nil && !isEOFish(err)) {
		t.Fatalf("idle connection: %q %v", b, err)
	}
	select {
	case err := <-shut:
		t.Fatalf("Shutdown returned (%v) with a request in flight", err)
	default:
	}
	// New connections are refused.
	if c, err := net.Dial("tcp", addr); err == nil {
		_ = c.SetReadDeadline(time.Now().Add(safetyTimeout))
		if n, _ := c.Read(make([]byte, 1)); n != 0 {
			t.Error("a connection accepted after Shutdown was served")
		}
		_ = c.Close()
	}

	close(release)
	a, err := readAnswer(busyBr, "GET")
	if err != nil || a.Body != "done" || !a.Close {
		t.Fatalf("in-flight answer %+v %v; want it whole with Connection: close", a, err)
	}
	if err := waitChan(t, shut, "Shutdown"); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if b, err := io.ReadAll(busyBr); len(b) != 0 || (err != nil && !isEOFish(err)) {
		t.Fatalf("after the answer: %q %v", b, err)
	}
	if err := s.Serve(mustListen(t)); !errors.Is(err, http.ErrServerClosed) {
		t.Fatalf("Serve after Shutdown: %v", err)
	}
}

func mustListen(t *testing.T) net.Listener {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	return ln
}

func TestShutdownContextEnds(t *testing.T) {
	inHandler, release := make(chan struct{}), make(chan struct{})
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(inHandler)
		<-release
	})
	s, addr := startOurs(t, h, nil)
	defer close(release)
	c := dial(t, addr)
	if _, err := io.WriteString(c, get("/")); err != nil {
		t.Fatal(err)
	}
	waitChan(t, inHandler, "the handler")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.Shutdown(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Shutdown: %v, want the context's error", err)
	}
}

func TestClose(t *testing.T) {
	inHandler := make(chan struct{})
	ended := make(chan error, 1)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/wait" {
			return
		}
		close(inHandler)
		select {
		case <-r.Context().Done():
			ended <- r.Context().Err()
		case <-time.After(safetyTimeout):
			ended <- errors.New("context not cancelled by Close")
		}
	})
	ln := mustListen(t)
	s := &Server{Handler: h, ErrorLog: quietLog}
	served := make(chan error, 1)
	go func() { served <- s.Serve(ln) }()
	addr := ln.Addr().String()

	idle := dial(t, addr)
	br := bufio.NewReader(idle)
	if _, err := io.WriteString(idle, get("/")); err != nil {
		t.Fatal(err)
	}
	if _, err := readAnswer(br, "GET"); err != nil {
		t.Fatal(err)
	}
	busy := dial(t, addr)
	if _, err := io.WriteString(busy, get("/wait")); err != nil {
		t.Fatal(err)
	}
	waitChan(t, inHandler, "the handler")
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := waitChan(t, served, "Serve"); !errors.Is(err, http.ErrServerClosed) {
		t.Fatalf("Serve: %v", err)
	}
	for _, c := range []net.Conn{idle, busy} {
		_ = c.SetReadDeadline(time.Now().Add(safetyTimeout))
		if b, err := io.ReadAll(c); len(b) != 0 || (err != nil && !isEOFish(err)) {
			t.Fatalf("%q %v", b, err)
		}
	}
	if err := waitChan(t, ended, "the handler's context"); !errors.Is(err, context.Canceled) {
		t.Fatal(err)
	}
}

// stateLog records ConnState changes per client address.
type stateLog struct {
	mu     sync.Mutex
	cond   *sync.Cond
	states map[string][]http.ConnState
}

func newStateLog() *stateLog {
	l := &stateLog{states: map[string][]http.ConnState{}}
	l.cond = sync.NewCond(&l.mu)
	return l
}

func (l *stateLog) hook(c net.Conn, st http.ConnState) {
	l.mu.Lock()
	defer l.mu.Unlock()
	k := c.RemoteAddr().String()
	l.states[k] = append(l.states[k], st)
	l.cond.Broadcast()
}

func (l *stateLog) get(k string) []http.ConnState {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]http.ConnState(nil), l.states[k]...)
}

// wait waits until k's last state is st.
func (l *stateLog) wait(t *testing.T, k string, st http.ConnState) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		l.mu.Lock()
		defer l.mu.Unlock()
		for {
			s := l.states[k]
			if len(s) > 0 && s[len(s)-1] == st {
				close(done)
				return
			}
			l.cond.Wait()
		}
	}()
	select {
	case <-done:
	case <-time.After(safetyTimeout):
		t.Fatalf("state %v never reached: %v", st, l.get(k))
	}
}

func equalStates(got []http.ConnState, want ...http.ConnState) bool {
	if len(got) != len(want) {
		return false
	}
	for i := range got {
		if got[i] != want[i] {
			return false
		}
	}
	return true
}

func TestConnState(t *testing.T) {
	states := newStateLog()
	_, addr := startOurs(t, http.HandlerFunc(diffHandler), func(s *Server) { s.ConnState = states.hook })

	c := dial(t, addr)
	br := bufio.NewReader(c)
	for range 2 {
		if _, err := io.WriteString(c, get("/cl?n=1")); err != nil {
			t.Fatal(err)
		}
		if _, err := readAnswer(br, "GET"); err != nil {
			t.Fatal(err)
		}
	}
	k := c.LocalAddr().String()
	states.wait(t, k, http.StateIdle)
	_ = c.Close()
	states.wait(t, k, http.StateClosed)
	want := []http.ConnState{http.StateNew, http.StateActive, http.StateIdle, http.StateActive, http.StateIdle, http.StateClosed}
	if got := states.get(k); !equalStates(got, want...) {
		t.Fatalf("states %v, want %v", got, want)
	}

	// A connection that sends nothing: New, Closed.
	c2 := dial(t, addr)
	k2 := c2.LocalAddr().String()
	states.wait(t, k2, http.StateNew)
	_ = c2.Close()
	states.wait(t, k2, http.StateClosed)
	if got := states.get(k2); !equalStates(got, http.StateNew, http.StateClosed) {
		t.Fatalf("states %v", got)
	}

	// The server closes after Connection: close: Active, then Closed.
	c3 := dial(t, addr)
	if _, err := io.WriteString(c3, "GET /cl?n=1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	if _, err := readAll(t, c3); err != nil {
		t.Fatal(err)
	}
	k3 := c3.LocalAddr().String()
	states.wait(t, k3, http.StateClosed)
	if got := states.get(k3); !equalStates(got, http.StateNew, http.StateActive, http.StateClosed) {
		t.Fatalf("states %v", got)
	}
}

// syncBuffer is a log destination read while servers write to it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestPanic(t *testing.T) {
	var logBuf syncBuffer
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/panic":
			_, _ = io.WriteString(w, "partial")
			panic("boom")
		case "/abort":
			w.Header().Set("Content-Length", "100")
			_, _ = io.WriteString(w, "partial")
			_ = http.NewResponseController(w).Flush()
			panic(http.ErrAbortHandler)
		}
		_, _ = io.WriteString(w, "fine")
	})
	states := newStateLog()
	_, addr := startOurs(t, h, func(s *Server) {
		s.ErrorLog = log.New(&logBuf, "", 0)
		s.ConnState = states.hook
	})
	for _, path := range []string{"/panic", "/abort"} {
		c := dial(t, addr)
		br := bufio.NewReader(c)
		if _, err := io.WriteString(c, get(path)); err != nil {
			t.Fatal(err)
		}
		_ = c.SetReadDeadline(time.Now().Add(safetyTimeout))
		// A panic before anything was sent: no answer. After a flush:
		// the answer is cut short.
		b, err := io.ReadAll(br)
		if err != nil && !isEOFish(err) {
			t.Fatalf("%s: %v", path, err)
		}
		if path == "/panic" && len(b) != 0 {
			t.Fatalf("%s: got %q", path, b)
		}
		if path == "/abort" && !bytes.HasSuffix(b, []byte("\r\n\r\npartial")) {
			t.Fatalf("%s: got %q", path, b)
		}
		states.wait(t, c.LocalAddr().String(), http.StateClosed)
	}
	// The server still serves.
	e := roundTrip(t, addr, get("/"), []string{"GET"})
	if len(e.Answers) != 1 || e.Answers[0].Body != "fine" {
		t.Fatalf("after the panics: %v", e)
	}
	logs := logBuf.String()
	if strings.Count(logs, "panic serving") != 1 || !strings.Contains(logs, "boom") {
		t.Fatalf("want one logged panic (boom), got %q", logs)
	}
	if strings.Contains(logs, "abort") {
		t.Fatalf("ErrAbortHandler was logged: %q", logs)
	}
}

// TestKeepAliveNoLeak: 1000 requests on one connection, then the server
// closes, and no goroutine is left behind.
func TestKeepAliveNoLeak(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.ReadAll(r.Body)
		// Every kind of context watch, on every other request.
		if r.URL.Query().Has("watch") {
			_ = r.Context().Err()
			<-afterDone(r.Context())
			stop := context.AfterFunc(r.Context(), func() {})
			defer stop()
		}
		w.Header().Set("Content-Type", "text/plain")
		_, _ = io.WriteString(w, "ok")
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{Handler: h, ErrorLog: quietLog, ReadHeaderTimeout: time.Minute, IdleTimeout: time.Minute}
	served := make(chan error, 1)
	go func() { served <- s.Serve(ln) }()

	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	_ = c.SetDeadline(time.Now().Add(time.Minute))
	br := bufio.NewReader(c)
	for i := range 1000 {
		var req string
		switch i % 3 {
		case 0:
			req = get("/")
		case 1:
			req = get("/?watch")
		default:
			req = "POST /?watch HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc"
		}
		if _, err := io.WriteString(c, req); err != nil {
			t.Fatal(err)
		}
		a, err := readAnswer(br, "GET")
		if err != nil || a.Body != "ok" {
			t.Fatalf("request %d: %+v %v", i, a, err)
		}
	}
	_ = c.Close()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-served; !errors.Is(err, http.ErrServerClosed) {
		t.Fatal(err)
	}
	// The connection's goroutine ends on its own once it sees the close.
	waitGoroutinesGone(t)
}

// afterDone returns a channel closed by a context derived from ctx (it
// exercises the AfterFunc path of context.WithCancel); already closed
// when ctx has not ended, so the handler does not block.
func afterDone(ctx context.Context) <-chan struct{} {
	ctx, cancel := context.WithCancel(ctx)
	cancel()
	return ctx.Done()
}

// waitGoroutinesGone lets goleak's own retries see the exit of
// goroutines that are on their way out.
func waitGoroutinesGone(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(safetyTimeout)
	for time.Now().Before(deadline) {
		if goleak.Find(goleak.IgnoreCurrent()) == nil {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestResponseHeaderSanitised(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Type", "text/plain")
		h["X-Split"] = []string{"a\r\nSet-Cookie: evil=1", "b\rc\nd"}
		h["Bad Name"] = []string{"dropped"}
		h["X-Bad:Colon"] = []string{"dropped"}
		h["X-Ok"] = []string{"  padded  "}
		h["Location"] = []string{"/x\r\n\r\nHTTP/1.1 200 OK\r\n"}
		_, _ = io.WriteString(w, "body")
	})
	_, addr := startOurs(t, h, nil)
	c := dial(t, addr)
	if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	raw, err := readAll(t, c)
	if err != nil {
		t.Fatal(err)
	}
	head, body, ok := bytes.Cut(raw, []byte("\r\n\r\n"))
	if !ok || string(body) != "body" {
		t.Fatalf("answer %q", raw)
	}
	lines := strings.Split(string(head), "\r\n")
	seen := map[string][]string{}
	for _, l := range lines[1:] {
		if strings.ContainsAny(l, "\r\n") {
			t.Fatalf("bare CR or LF in %q", l)
		}
		k, v, ok := strings.Cut(l, ": ")
		if !ok {
			t.Fatalf("line %q", l)
		}
		seen[k] = append(seen[k], v)
	}
	if _, ok := seen["Set-Cookie"]; ok {
		t.Fatal("response splitting: Set-Cookie injected")
	}
	if got := seen["X-Split"]; len(got) != 2 || got[0] != "a  Set-Cookie: evil=1" && got[0] != "a Set-Cookie: evil=1" {
		t.Fatalf("X-Split %q", got)
	}
	if _, ok := seen["Bad Name"]; ok {
		t.Fatal("invalid name written")
	}
	if _, ok := seen["X-Bad:Colon"]; ok {
		t.Fatal("invalid name written")
	}
	if got := seen["X-Ok"]; len(got) != 1 || got[0] != "padded" {
		t.Fatalf("X-Ok %q", got)
	}
	if len(lines) < 2 || !strings.HasPrefix(lines[0], "HTTP/1.1 200 ") {
		t.Fatalf("status line %q", lines[0])
	}
	if got := seen["Location"]; len(got) != 1 || got[0] != "/x  HTTP/1.1 200 OK" {
		t.Fatalf("Location %q", got)
	}
}

// TestServeListenerError: Serve returns the listener's error when it is
// not a retryable one, and Serve after Close refuses.
func TestServeListenerError(t *testing.T) {
	ln := mustListen(t)
	s := &Server{Handler: http.HandlerFunc(diffHandler), ErrorLog: quietLog}
	_ = ln.Close()
	if err := s.Serve(ln); err == nil || errors.Is(err, http.ErrServerClosed) {
		t.Fatalf("Serve on a closed listener: %v", err)
	}
	_ = s.Close()
	if err := s.Serve(mustListen(t)); !errors.Is(err, http.ErrServerClosed) {
		t.Fatalf("Serve after Close: %v", err)
	}
}

// TestIdleBeyondHotWait: a connection idle for longer than hotWait gives
// its read buffer back and waits on the poller; its next request is
// served, and IdleTimeout still closes it.
func TestIdleBeyondHotWait(t *testing.T) {
	t.Parallel()
	idle := hotWait + 500*time.Millisecond
	_, addr := startOurs(t, http.HandlerFunc(diffHandler), func(s *Server) {
		s.ReadHeaderTimeout = safetyTimeout
		s.IdleTimeout = idle
	})
	c := dial(t, addr)
	br := bufio.NewReader(c)
	for i := range 2 {
		if i == 1 {
			// Into the buffer-less wait (not an assertion: the request
			// must be served whichever wait it meets).
			time.Sleep(hotWait + 200*time.Millisecond)
		}
		if _, err := io.WriteString(c, get("/cl?n=3")); err != nil {
			t.Fatal(err)
		}
		if a, err := readAnswer(br, "GET"); err != nil || a.Body != "abc" || a.Close {
			t.Fatalf("request %d: %+v %v", i, a, err)
		}
	}
	_ = c.SetReadDeadline(time.Now().Add(safetyTimeout))
	if b, err := io.ReadAll(br); err != nil || len(b) != 0 {
		t.Fatalf("idle connection: read %q, %v; want a clean close", b, err)
	}
}

// TestHotDeadlineKeptOnlyWhileUnchanged: a busy connection keeps the
// hot deadline an earlier wait set instead of setting it per request,
// but not once anything else changed the read deadline. Here the second
// handler clears it (http.ResponseController): kept, the connection
// would wait without a deadline, never park, and never meet its idle
// timeout; set again, it closes once IdleTimeout passes.
func TestHotDeadlineKeptOnlyWhileUnchanged(t *testing.T) {
	t.Parallel()
	idle := hotWait + 500*time.Millisecond
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/clear" {
			if err := http.NewResponseController(w).SetReadDeadline(time.Time{}); err != nil {
				t.Errorf("SetReadDeadline: %v", err)
			}
		}
		_, _ = io.WriteString(w, "ok")
	})
	_, addr := startOurs(t, h, func(s *Server) {
		s.ReadHeaderTimeout = safetyTimeout
		s.IdleTimeout = idle
	})
	c := dial(t, addr)
	br := bufio.NewReader(c)
	for _, path := range []string{"/", "/", "/clear"} {
		if _, err := io.WriteString(c, get(path)); err != nil {
			t.Fatal(err)
		}
		if a, err := readAnswer(br, "GET"); err != nil || a.Body != "ok" || a.Close {
			t.Fatalf("%s: %+v %v", path, a, err)
		}
	}
	start := time.Now()
	// Within the idle timeout, the hot wait and the idle sweeper's
	// period (sweepEvery on Linux, 1 s); without a deadline it would stay
	// open until the client's own deadline.
	bound := idle + hotWait + 2*time.Second
	_ = c.SetReadDeadline(start.Add(bound))
	if b, err := io.ReadAll(br); err != nil || len(b) != 0 {
		t.Fatalf("idle connection: read %q, %v after %v; want a clean close within %v", b, err, time.Since(start), bound)
	}
	if d := time.Since(start); d < idle-100*time.Millisecond {
		t.Fatalf("closed after %v; the idle timeout is %v", d, idle)
	}
}

// TestContextStarted: the request context reports when the head had
// been read, for handlers that time requests without reading the clock.
func TestContextStarted(t *testing.T) {
	t.Parallel()
	got := make(chan [2]time.Time, 1)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, ok := r.Context().(interface{ Started() time.Time })
		if !ok {
			t.Errorf("context %T has no Started", r.Context())
			return
		}
		got <- [2]time.Time{c.Started(), time.Now()}
	})
	_, addr := startOurs(t, h, nil)
	c := dial(t, addr)
	br := bufio.NewReader(c)
	sent := time.Now()
	if _, err := io.WriteString(c, get("/")); err != nil {
		t.Fatal(err)
	}
	if _, err := readAnswer(br, "GET"); err != nil {
		t.Fatal(err)
	}
	ts := <-got
	if ts[0].Before(sent) || ts[0].After(ts[1]) {
		t.Fatalf("Started %v: want between the send (%v) and the handler (%v)", ts[0], sent, ts[1])
	}
}

// TestStress runs many connections at once through every path of the
// request context (Done, Err, AfterFunc, derived contexts), bodies read
// or not, pipelining, and clients that leave mid-request; under -race
// it looks for data races and for the "concurrent read" panic.
func TestStress(t *testing.T) {
	var logBuf syncBuffer
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		ctx := r.Context()
		switch q.Get("watch") {
		case "done":
			_ = ctx.Done()
		case "err":
			_ = ctx.Err()
		case "after":
			stop := context.AfterFunc(ctx, func() {})
			defer stop()
		case "derived":
			d, cancel := context.WithCancel(ctx)
			defer cancel()
			_ = d.Err()
		}
		if q.Has("read") {
			_, _ = io.ReadAll(r.Body)
		}
		if q.Has("wait") {
			// Until the client leaves (or a bound).
			select {
			case <-ctx.Done():
				return
			case <-time.After(safetyTimeout):
			}
		}
		w.Header().Set("Content-Type", "text/plain")
		if q.Has("big") {
			_, _ = w.Write(patternBody(20000))
			return
		}
		_, _ = io.WriteString(w, "ok")
	})
	_, addr := startOurs(t, h, func(s *Server) {
		s.ErrorLog = log.New(&logBuf, "", 0)
		s.ReadHeaderTimeout = safetyTimeout
		s.IdleTimeout = safetyTimeout
	})
	watches := []string{"", "done", "err", "after", "derived"}
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for conn := range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := net.Dial("tcp", addr)
			if err != nil {
				errs <- err
				return
			}
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(safetyTimeout))
			br := bufio.NewReader(c)
			for i := range 24 {
				watch := watches[(conn+i)%len(watches)]
				path := "/?watch=" + watch
				if i%2 == 0 {
					path += "&read"
				}
				if i%5 == 0 {
					path += "&big"
				}
				var req string
				switch i % 4 {
				case 0:
					req = "GET " + path + " HTTP/1.1\r\nHost: x\r\n\r\n"
				case 1:
					req = "POST " + path + " HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"
				case 2:
					req = "POST " + path + " HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" + chunked([]byte("hello world"), 4, "")
				default:
					// Two pipelined.
					req = "GET " + path + " HTTP/1.1\r\nHost: x\r\n\r\nGET " + path + " HTTP/1.1\r\nHost: x\r\n\r\n"
				}
				if conn%8 == 7 && i == 23 {
					// Leave while the handler waits on the context.
					_, _ = io.WriteString(c, "GET /?wait&watch="+watch+" HTTP/1.1\r\nHost: x\r\n\r\n")
					return
				}
				if _, err := io.WriteString(c, req); err != nil {
					errs <- err
					return
				}
				n := 1
				if i%4 == 3 {
					n = 2
				}
				for range n {
					a, err := readAnswer(br, "GET")
					if err != nil || a.Status != 200 || (a.Body != "ok" && len(a.Body) != 20000) {
						errs <- fmt.Errorf("conn %d request %d: %+v %v", conn, i, a, err)
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if strings.Contains(logBuf.String(), "panic") {
		t.Fatalf("server log: %s", logBuf.String())
	}
}

// TestHijackKeepsWatchedByte: the byte the context's background read
// took from the socket before a Hijack is the new owner's first byte.
func TestHijackKeepsWatchedByte(t *testing.T) {
	ready := make(chan struct{})
	got := make(chan string, 1)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = r.Context().Done() // starts the background read
		close(ready)
		cr := &w.(*response).c.cr
		for deadline := time.Now().Add(safetyTimeout); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
			cr.mu.Lock()
			hb := cr.hasByte
			cr.mu.Unlock()
			if hb {
				break
			}
		}
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			got <- err.Error()
			return
		}
		defer conn.Close()
		p := make([]byte, len("PIPELINED"))
		n, err := io.ReadFull(brw, p)
		got <- string(p[:n]) + " " + errString(err)
	})
	_, addr := startOurs(t, h, nil)
	c := dial(t, addr)
	if _, err := io.WriteString(c, get("/")); err != nil {
		t.Fatal(err)
	}
	waitChan(t, ready, "the handler")
	if _, err := io.WriteString(c, "PIPELINED"); err != nil {
		t.Fatal(err)
	}
	if s := waitChan(t, got, "the hijacked read"); s != "PIPELINED <nil>" {
		t.Fatalf("got %q", s)
	}
}

// A keep-alive connection waiting for its client's next request holds no
// read buffer, from the first moment (not only once parked as idle).
// Not parallel: the hook is package-wide.
func TestNoReadBufferBetweenRequests(t *testing.T) {
	held := make(chan bool, 16)
	hook := func(c *conn) { held <- c.bufr != nil }
	testHookWaitReadable.Store(&hook)
	defer testHookWaitReadable.Store(nil)
	_, addr := startOurs(t, http.HandlerFunc(diffHandler), func(s *Server) {
		s.ReadHeaderTimeout = safetyTimeout
	})
	c := dial(t, addr)
	br := bufio.NewReader(c)
	for range 2 {
		if waitChan(t, held, "the wait for a request") {
			t.Fatal("the connection held its read buffer while it waited for a request")
		}
		if _, err := io.WriteString(c, get("/cl?n=3")); err != nil {
			t.Fatal(err)
		}
		if a, err := readAnswer(br, "GET"); err != nil || a.Status != 200 {
			t.Fatalf("%+v %v", a, err)
		}
	}
}
