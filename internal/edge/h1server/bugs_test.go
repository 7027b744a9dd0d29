package h1server

// Regression tests for the bugs this suite found, one TestBug* per bug
// (each states the bug; most compare with net/http on the same server
// setup). They failed on the code as first reviewed; they can be
// skipped as a group with -skip TestBug. Bug 14 (a data race in the
// idle poller) shows in TestIdleBeyondHotWait under -race.

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
)

// both runs fn against an h1server and a net/http server serving h.
func both(t *testing.T, h http.Handler, fn func(t *testing.T, addr string)) {
	t.Helper()
	_, ours := startOurs(t, h, nil)
	_, std := startStd(t, h, nil)
	t.Run("net/http", func(t *testing.T) { fn(t, std) })
	t.Run("h1server", func(t *testing.T) { fn(t, ours) })
}

// Bug 1: the head of an answer whose commit was deferred (no
// Content-Length, short body) is written from the header map as it is
// when the handler returns, not as it was at WriteHeader. Declared
// trailers then also appear as header fields, and fields set after
// WriteHeader are sent.
func TestBugHeadAfterWriteHeader(t *testing.T) {
	_, ours := startOurs(t, http.HandlerFunc(diffHandler), nil)
	_, std := startStd(t, http.HandlerFunc(diffHandler), nil)
	for _, raw := range []string{
		get("/trailer"),
		"GET /trailer HTTP/1.0\r\n\r\n",
		get("/late"),
	} {
		t.Run(strings.Fields(raw)[1]+" "+strings.Fields(raw)[2], func(t *testing.T) {
			got := roundTrip(t, ours, raw, []string{"GET"})
			want := roundTrip(t, std, raw, []string{"GET"})
			for _, k := range []string{"X-Sum", "X-Other", "X-Late"} {
				if v := got.Answers[0].Header[k]; v != nil {
					t.Errorf("%s: %q in the head (set after WriteHeader)", k, v)
				}
				if v := want.Answers[0].Header[k]; v != nil {
					t.Errorf("net/http: %s in the head", k)
				}
			}
			if t.Failed() {
				t.Logf("h1server:\n%v\nnet/http:\n%v", got, want)
			}
		})
	}
}

// Bug 2: a status decided before Hijack (WriteHeader(101) for an
// upgrade, WriteHeader(200) for CONNECT) is never sent: Hijack flushes
// only a committed head, and such a head is not committed yet.
func TestBugWriteHeaderThenHijack(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodConnect {
			w.WriteHeader(http.StatusOK)
		} else {
			w.Header().Set("Connection", "Upgrade")
			w.Header().Set("Upgrade", "test")
			w.WriteHeader(http.StatusSwitchingProtocols)
		}
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		_, _ = brw.WriteString("RAW")
		_ = brw.Flush()
	})
	for _, tc := range []struct{ name, raw, status string }{
		{"upgrade 101", "GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: test\r\n\r\n", "HTTP/1.1 101 Switching Protocols\r\n"},
		{"CONNECT 200", "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n", "HTTP/1.1 200 OK\r\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			both(t, h, func(t *testing.T, addr string) {
				c := dial(t, addr)
				if _, err := io.WriteString(c, tc.raw); err != nil {
					t.Fatal(err)
				}
				b, _ := readAll(t, c)
				if !bytes.HasPrefix(b, []byte(tc.status)) || !bytes.HasSuffix(b, []byte("\r\n\r\nRAW")) {
					t.Fatalf("got %q, want %q, fields, then RAW", b, tc.status)
				}
			})
		})
	}
}

// Bug 3: asking for the request context's Done (or registering an
// AfterFunc, or deriving a context) after Hijack starts the background
// read on the hijacked connection: it takes bytes meant for the new
// owner, and a read through the returned bufio.Reader at the same time
// panics ("concurrent read on a connection").
func TestBugDoneAfterHijack(t *testing.T) {
	for _, tc := range []struct {
		name  string
		watch func(ctx context.Context)
	}{
		{"Done", func(ctx context.Context) { _ = ctx.Done() }},
		{"AfterFunc", func(ctx context.Context) { context.AfterFunc(ctx, func() {}) }},
		{"WithCancel", func(ctx context.Context) { _, cancel := context.WithCancel(ctx); _ = cancel }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := make(chan string, 1)
			h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				conn, _, err := http.NewResponseController(w).Hijack()
				if err != nil {
					res <- err.Error()
					return
				}
				defer conn.Close()
				tc.watch(r.Context())
				cr := &w.(*response).c.cr
				cr.mu.Lock()
				reading := cr.inRead
				cr.mu.Unlock()
				if reading {
					res <- "a background read runs on the hijacked connection"
					return
				}
				res <- ""
			})
			_, addr := startOurs(t, h, nil)
			c := dial(t, addr)
			if _, err := io.WriteString(c, get("/")); err != nil {
				t.Fatal(err)
			}
			if msg := waitChan(t, res, "the handler"); msg != "" {
				t.Fatal(msg)
			}
		})
	}
}

// Bug 4: once the head of a chunked answer is out, Write reports no
// error when the client is gone: writeChunk drops the bufio.Writer's
// error, so a handler copying a stream (io.Copy) never stops.
func TestBugChunkedWriteAfterClientGone(t *testing.T) {
	res := make(chan string, 1)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		w.WriteHeader(http.StatusOK)
		_ = http.NewResponseController(w).Flush()
		select {
		case <-r.Context().Done(): // the client closed the connection
		case <-time.After(safetyTimeout):
			res <- "client departure not seen"
			return
		}
		p := make([]byte, 64<<10)
		for range 4096 {
			if _, err := w.Write(p); err != nil {
				res <- ""
				return
			}
		}
		res <- "256 MiB written to a closed connection without an error"
	})
	both(t, h, func(t *testing.T, addr string) {
		c := dial(t, addr)
		br := bufio.NewReader(c)
		if _, err := io.WriteString(c, get("/")); err != nil {
			t.Fatal(err)
		}
		if _, err := http.ReadResponse(br, nil); err != nil {
			t.Fatal(err)
		}
		_ = c.Close()
		if msg := waitChan(t, res, "the handler"); msg != "" {
			t.Fatal(msg)
		}
	})
}

// Bug 5: a write deadline a handler sets through ResponseController
// outlives its request: with WriteTimeout zero nothing resets it, and
// the next request on the connection fails to answer once it passes.
func TestBugWriteDeadlineLeaksToNextRequest(t *testing.T) {
	var mu sync.Mutex
	var deadline time.Time
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		switch r.URL.Path {
		case "/first":
			dl := time.Now().Add(20 * time.Millisecond)
			_ = http.NewResponseController(w).SetWriteDeadline(dl)
			mu.Lock()
			deadline = dl
			mu.Unlock()
			_, _ = io.WriteString(w, "first")
		case "/second":
			// Not a timed assertion: the second answer starts only
			// after the first request's deadline is in the past.
			mu.Lock()
			dl := deadline
			mu.Unlock()
			time.Sleep(time.Until(dl) + 10*time.Millisecond)
			_, _ = io.WriteString(w, "second")
		}
	})
	both(t, h, func(t *testing.T, addr string) {
		e := roundTrip(t, addr, get("/first")+get("/second"), []string{"GET", "GET"})
		if len(e.Answers) != 2 || e.Answers[1].Body != "second" || e.Closed {
			t.Fatalf("want two answers on a kept connection: %v", e)
		}
	})
}

// Bug 6: when a handler panics, or returns with Connection: close before
// its body was read to the end, the request is not torn down: its
// context is not cancelled (when Done was asked before the body ended),
// and the body stays readable although its bufio.Reader went back to
// the pool (Reset(nil)): a late read panics on a nil reader, or reads
// another connection's bytes.
func TestBugRequestNotTornDown(t *testing.T) {
	t.Run("panic: context cancelled", func(t *testing.T) {
		cancelled := make(chan error, 1)
		h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			ctx := r.Context()
			done := ctx.Done() // before the body is read: no watch yet
			go func() {
				select {
				case <-done:
					cancelled <- nil
				case <-time.After(2 * time.Second):
					cancelled <- errors.New("the context of a panicked request never ended")
				}
			}()
			panic(http.ErrAbortHandler)
		})
		both(t, h, func(t *testing.T, addr string) {
			c := dial(t, addr)
			if _, err := io.WriteString(c, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nhello"); err != nil {
				t.Fatal(err)
			}
			if err := waitChan(t, cancelled, "the watcher"); err != nil {
				t.Fatal(err)
			}
		})
	})
	for _, mode := range []string{"panic", "close"} {
		t.Run(mode+": late body read", func(t *testing.T) {
			release, result := make(chan struct{}), make(chan string, 1)
			states := newStateLog()
			h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				body := r.Body
				go func() {
					defer func() {
						if v := recover(); v != nil {
							result <- fmt.Sprintf("late body read panicked: %v", v)
						}
					}()
					<-release
					_, err := body.Read(make([]byte, 10))
					if err == nil {
						result <- "late body read succeeded"
						return
					}
					result <- ""
				}()
				if mode == "panic" {
					panic(http.ErrAbortHandler)
				}
				w.Header().Set("Connection", "close")
			})
			_, ours := startOurs(t, h, func(s *Server) { s.ConnState = states.hook })
			c := dial(t, ours)
			if _, err := io.WriteString(c, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\nhello"); err != nil {
				t.Fatal(err)
			}
			states.wait(t, c.LocalAddr().String(), http.StateClosed)
			close(release)
			if msg := waitChan(t, result, "the late read"); msg != "" {
				t.Fatal(msg)
			}
		})
	}
}

// Bug 7 (minor): an HTTP/1.1 request in absolute form without a Host
// field is served; RFC 9112 §3.2 and net/http answer 400.
func TestBugAbsoluteFormWithoutHost(t *testing.T) {
	for _, tc := range []struct{ name, raw string }{
		{"short head", "GET http://example.com/echo HTTP/1.1\r\n\r\n"},
		// A head larger than the connection's 4 KiB read buffer.
		{"head over 4 KiB", "GET http://example.com/echo HTTP/1.1\r\nX-Pad: " + strings.Repeat("p", 5000) + "\r\n\r\n"},
		{"head split", "GET http://example.com/echo HTTP/1.1\r\nX-A: 1\r\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			both(t, http.HandlerFunc(diffHandler), func(t *testing.T, addr string) {
				if tc.name != "head split" {
					e := roundTrip(t, addr, tc.raw, []string{"GET"})
					one(t, e, http.StatusBadRequest, true)
					return
				}
				// The head arrives in two writes: the first is parsed
				// alone only if the server reads between them; the
				// answer must be 400 either way.
				c := dial(t, addr)
				if _, err := io.WriteString(c, tc.raw); err != nil {
					t.Fatal(err)
				}
				waitRead(c)
				if _, err := io.WriteString(c, "X-B: 2\r\n\r\n"); err != nil {
					t.Fatal(err)
				}
				br := bufio.NewReader(c)
				e := readExchange(c, br, []string{"GET"})
				one(t, e, http.StatusBadRequest, true)
			})
		})
	}
}

// waitRead gives the server the chance to read what was sent: it is not
// an assertion (the outcome must not depend on it).
func waitRead(net.Conn) { time.Sleep(20 * time.Millisecond) }

// Bug 8 (minor): the empty line some clients send after a POST body
// (RFC 9112 §2.2: a server SHOULD ignore at least one empty line before
// a request line) fails the next request with 400; net/http skips it.
func TestBugCRLFAfterPost(t *testing.T) {
	raw := "POST /echo HTTP/1.1\r\n" + host + "Content-Length: 2\r\n\r\nhi\r\n" + get("/cl?n=1")
	_, ours := startOurs(t, http.HandlerFunc(diffHandler), nil)
	_, std := startStd(t, http.HandlerFunc(diffHandler), nil)
	got := roundTrip(t, ours, raw, []string{"POST", "GET"})
	want := roundTrip(t, std, raw, []string{"POST", "GET"})
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("h1server:\n%v\nnet/http:\n%v", got, want)
	}
}

// Bug 9 (minor): an answer after which the server will close the
// connection because of the request body (a chunked body over 256 KiB
// left unread, a malformed chunked body) does not say Connection: close;
// net/http decides before it writes the head. The client learns only
// from the close, and may already have sent its next request.
func TestBugCloseNotAnnounced(t *testing.T) {
	big := patternBody(300 << 10)
	for _, tc := range []struct{ name, raw string }{
		{"chunked 300K unread", "POST /noread HTTP/1.1\r\n" + host + "Transfer-Encoding: chunked\r\n\r\n" + chunked(big, 16<<10, "")},
		{"bad chunk size", "POST /echo HTTP/1.1\r\n" + host + "Transfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			both(t, http.HandlerFunc(diffHandler), func(t *testing.T, addr string) {
				e := roundTrip(t, addr, tc.raw, []string{"POST"})
				a := one(t, e, http.StatusOK, true)
				if !a.Close {
					t.Fatalf("closed without Connection: close: %v", e)
				}
			})
		})
	}
}

// Bug 10: a handler that reads the body on another goroutine while it
// writes (what EnableFullDuplex allows) races with commit, which reads
// bodyReader.eof without the body's lock. The sleep only orders the two
// goroutines without a happens-before edge; the race detector reports.
func TestBugFullDuplexRace(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = http.NewResponseController(w).EnableFullDuplex()
		done := make(chan struct{})
		go func() {
			defer close(done)
			_, _ = io.Copy(io.Discard, r.Body)
		}()
		time.Sleep(50 * time.Millisecond)
		w.Header().Set("Content-Type", "text/plain")
		w.WriteHeader(http.StatusOK)
		_ = http.NewResponseController(w).Flush()
		<-done
	})
	_, ours := startOurs(t, h, nil)
	e := roundTrip(t, ours, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello", []string{"POST"})
	one(t, e, http.StatusOK, false)
}

// Bug 11 (minor): with ReadHeaderTimeout zero a head has no bound once
// its first byte arrived (the field's doc: "no bound when both are";
// net/http serves it), but awaitRequest leaves the wait's deadline armed
// (IdleTimeout, or hotWait): the rest of a slow head is cut there.
func TestBugSlowHeadWithoutHeaderTimeout(t *testing.T) {
	t.Parallel()
	_, ours := startOurs(t, http.HandlerFunc(diffHandler), func(s *Server) { s.IdleTimeout = 100 * time.Millisecond })
	_, std := startStd(t, http.HandlerFunc(diffHandler), func(s *http.Server) { s.IdleTimeout = 100 * time.Millisecond })
	for _, srv := range []struct{ name, addr string }{{"net/http", std}, {"h1server", ours}} {
		t.Run(srv.name, func(t *testing.T) {
			c := dial(t, srv.addr)
			br := bufio.NewReader(c)
			if _, err := io.WriteString(c, get("/cl?n=1")); err != nil {
				t.Fatal(err)
			}
			if _, err := readAnswer(br, "GET"); err != nil {
				t.Fatal(err)
			}
			// The second head starts within the idle timeout...
			if _, err := io.WriteString(c, "GET /cl?n=2 HTTP/1.1\r\n"); err != nil {
				t.Fatal(err)
			}
			// The rest of the second head comes after the idle timeout
			// has passed (ordering, not an assertion).
			time.Sleep(250 * time.Millisecond)
			if _, err := io.WriteString(c, "Host: x\r\n\r\n"); err != nil {
				t.Fatal(err)
			}
			if a, err := readAnswer(br, "GET"); err != nil || a.Body != "ab" {
				t.Fatalf("second request: %+v %v", a, err)
			}
		})
	}
}

// gatedListener holds each accepted connection until its listener is
// closed: Serve gets the connection only once Close has begun.
type gatedListener struct {
	net.Listener
	accepted chan struct{}
	gate     chan struct{}
	once     sync.Once
}

func (l *gatedListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	l.accepted <- struct{}{}
	<-l.gate
	return c, nil
}

func (l *gatedListener) Close() error {
	err := l.Listener.Close()
	l.once.Do(func() { close(l.gate) })
	return err
}

// Bug 12: Close does not wait for Serve's loop: a connection accepted
// just before it (Accept returned, not yet tracked) is tracked after
// Close went through the connections, and is served after Close
// returned. net/http's Close waits for its Serve loops first and then
// closes every connection.
func TestBugCloseRacesAccept(t *testing.T) {
	for _, name := range []string{"net/http", "h1server"} {
		t.Run(name, func(t *testing.T) {
			ln := &gatedListener{Listener: mustListen(t), accepted: make(chan struct{}, 1), gate: make(chan struct{})}
			var closeFn func() error
			served := make(chan error, 1)
			if name == "h1server" {
				s := &Server{Handler: http.HandlerFunc(diffHandler), ErrorLog: quietLog}
				closeFn = s.Close
				go func() { served <- s.Serve(ln) }()
			} else {
				s := &http.Server{Handler: http.HandlerFunc(diffHandler), ErrorLog: quietLog}
				closeFn = s.Close
				go func() { served <- s.Serve(ln) }()
			}
			c := dial(t, ln.Addr().String())
			waitChan(t, ln.accepted, "the accept")
			if err := closeFn(); err != nil {
				t.Fatal(err)
			}
			waitChan(t, served, "Serve")
			// Close has returned: the connection must not be served.
			_, _ = io.WriteString(c, get("/cl?n=1"))
			b, _ := readAll(t, c)
			if len(b) != 0 {
				t.Fatalf("a connection was served after Close returned: %q", b)
			}
		})
	}
}

// slowAddrListener's connections answer RemoteAddr only once released,
// as a proxyproto connection from a trusted peer does until its PROXY
// header arrived ("Accept wraps the next connection; it never reads from
// it"): the first accepted connection blocks, the others do not.
type slowAddrListener struct {
	net.Listener
	release chan struct{}
	first   sync.Once
}

func (l *slowAddrListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	slow := false
	l.first.Do(func() { slow = true })
	if !slow {
		return c, nil
	}
	return &slowAddrConn{Conn: c, release: l.release}, nil
}

type slowAddrConn struct {
	net.Conn
	release chan struct{}
}

func (c *slowAddrConn) RemoteAddr() net.Addr {
	<-c.release
	return c.Conn.RemoteAddr()
}

// Bug 13: Serve calls RemoteAddr in its accept loop (newConn). Behind
// the gateway's proxyproto listener RemoteAddr reads the PROXY header of
// a trusted peer, up to its 5 s timeout: one silent connection stalls
// every accept on the listener. net/http asks in the connection's own
// goroutine.
func TestBugAcceptLoopBlocksOnRemoteAddr(t *testing.T) {
	for _, name := range []string{"net/http", "h1server"} {
		t.Run(name, func(t *testing.T) {
			ln := &slowAddrListener{Listener: mustListen(t), release: make(chan struct{})}
			defer close(ln.release)
			if name == "h1server" {
				s := &Server{Handler: http.HandlerFunc(diffHandler), ErrorLog: quietLog}
				go func() { _ = s.Serve(ln) }()
				defer s.Close()
			} else {
				s := &http.Server{Handler: http.HandlerFunc(diffHandler), ErrorLog: quietLog}
				go func() { _ = s.Serve(ln) }()
				defer s.Close()
			}
			dial(t, ln.Addr().String()) // its RemoteAddr blocks
			c := dial(t, ln.Addr().String())
			// Bounded wait, not a timing assertion: the answer never
			// comes while the silent connection holds the accept loop.
			_ = c.SetDeadline(time.Now().Add(3 * time.Second))
			if _, err := io.WriteString(c, get("/cl?n=1")); err != nil {
				t.Fatal(err)
			}
			if _, err := readAnswer(bufio.NewReader(c), "GET"); err != nil {
				t.Fatalf("second connection not served while the first is silent: %v", err)
			}
		})
	}
}

// Bug 15: a trailer set through http.TrailerPrefix after the head was
// flushed is dropped: commit decides whether the chunked answer carries
// trailers from the header as it is then (w.trailers), and the prefix
// key is not there yet. net/http looks for prefixed keys when it ends
// the answer. This is what TrailerPrefix is for ("trailers not known
// before the header is written").
func TestBugTrailerPrefixAfterFlush(t *testing.T) {
	both(t, http.HandlerFunc(diffHandler), func(t *testing.T, addr string) {
		e := roundTrip(t, addr, get("/trailer-prefix-flushed"), []string{"GET"})
		a := one(t, e, http.StatusOK, false)
		if a.Body != "streamed body" || a.Trailer.Get("X-Sum") != "44" {
			t.Fatalf("want the X-Sum trailer: %v", e)
		}
	})
}

// Bug 16: the body drain before the head (commit → drainForAnswer, the
// fix of bug 9) runs even when the answer closes the connection anyway:
// the handler said Connection: close, the client did, or HTTP/1.0.
// Then the answer waits for a body nobody needs, up to discardTimeout
// (5 s) when the client sends it slowly or waits. net/http decides to
// close first and skips the drain.
func TestBugDrainBeforeClosingAnswer(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Has("close") {
			w.Header().Set("Connection", "close")
		}
		w.Header().Set("Content-Type", "text/plain")
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = io.WriteString(w, "no")
	})
	for _, tc := range []struct{ name, head string }{
		{"handler Connection: close", "POST /?close HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n"},
		{"client Connection: close", "POST / HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 100000\r\n\r\n"},
		{"HTTP/1.0", "POST / HTTP/1.0\r\nContent-Length: 100000\r\n\r\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			both(t, h, func(t *testing.T, addr string) {
				c := dial(t, addr)
				// The head and 5 bytes of the body; the rest never comes
				// while the client waits for the answer.
				if _, err := io.WriteString(c, tc.head+"hello"); err != nil {
					t.Fatal(err)
				}
				// A bound well under discardTimeout, not a timing
				// assertion: nothing should hold the answer back.
				_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
				a, err := readAnswer(bufio.NewReader(c), "POST")
				if err != nil || a.Status != http.StatusUnauthorized {
					t.Fatalf("answer held back by the body drain: %+v %v", a, err)
				}
			})
		})
	}
}
