package h1

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// waitLimit bounds every wait so a bug fails instead of hanging; nothing
// asserts on speed.
const waitLimit = 10 * time.Second

func newClient(t *testing.T, o Options) *Client {
	t.Helper()
	tr := &http.Transport{}
	if o.Fallback == nil {
		o.Fallback = tr
	}
	c := New(o)
	t.Cleanup(func() { c.Close(); tr.CloseIdleConnections() })
	return c
}

func get(t *testing.T, c *Client, url string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	res, err := c.RoundTrip(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	b, err := io.ReadAll(res.Body)
	res.Body.Close()
	if err != nil {
		t.Fatalf("GET %s body: %v", url, err)
	}
	return res, string(b)
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// rawServer answers each accepted connection with serve(i, conn), i the
// connection's index, on 127.0.0.1:0.
func rawServer(t *testing.T, serve func(i int, c net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				serve(i, c)
			}()
		}
	}()
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	return ln.Addr().String()
}

// answerOnce serves one request per connection with answer, then sends
// nothing more (the client must not wait for more) and reads until the
// client closes; closed is closed then.
func answerOnce(t *testing.T, answer string) (addr string, closed <-chan struct{}) {
	t.Helper()
	done := make(chan struct{})
	var once sync.Once
	addr = rawServer(t, func(_ int, c net.Conn) {
		br := bufio.NewReader(c)
		if _, err := readRequest(br); err != nil {
			return
		}
		io.WriteString(c, answer)
		c.(*net.TCPConn).CloseWrite()
		io.Copy(io.Discard, br)
		once.Do(func() { close(done) })
	})
	return addr, done
}

// readRequest reads one request head (and body) off c.
func readRequest(br *bufio.Reader) (*http.Request, error) {
	req, err := http.ReadRequest(br)
	if err != nil {
		return nil, err
	}
	_, err = io.Copy(io.Discard, req.Body)
	return req, err
}

func TestReusesConnections(t *testing.T) {
	t.Parallel()
	var conns atomic.Int32
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello %s", r.URL.Query().Get("n"))
	}))
	srv.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()
	c := newClient(t, Options{})
	for i := range 20 {
		res, body := get(t, c, fmt.Sprintf("%s/x?n=%d", srv.URL, i))
		if res.StatusCode != 200 || body != fmt.Sprintf("hello %d", i) {
			t.Fatalf("request %d: %d %q", i, res.StatusCode, body)
		}
	}
	host := strings.TrimPrefix(srv.URL, "http://")
	if st := c.HostStats(host); st.Dials != 1 || st.Idle != 1 {
		t.Errorf("stats %+v; want 1 dial and 1 idle connection after 20 sequential requests", st)
	}
	if n := conns.Load(); n != 1 {
		t.Errorf("server saw %d connections; want 1", n)
	}
}

func TestMalformedAnswersAreErrors(t *testing.T) {
	t.Parallel()
	cases := []struct{ name, answer string }{
		{"CL and TE", "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"},
		{"two CL", "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc"},
		{"different CL", "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd"},
		{"CL list", "HTTP/1.1 200 OK\r\nContent-Length: 3, 3\r\n\r\nabc"},
		{"negative CL", "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\nabc"},
		{"CL not a number", "HTTP/1.1 200 OK\r\nContent-Length: abc\r\n\r\nabc"},
		{"TE gzip", "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nabc"},
		{"TE gzip, chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n"},
		{"TE on HTTP/1.0", "HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"},
		{"status line", "HTTP/1.1 2000 OK\r\nContent-Length: 0\r\n\r\n"},
		{"HTTP/2 status line", "HTTP/2 200 OK\r\nContent-Length: 0\r\n\r\n"},
		{"header without colon", "HTTP/1.1 200 OK\r\nBroken header\r\nContent-Length: 0\r\n\r\n"},
		{"space before colon", "HTTP/1.1 200 OK\r\nContent-Length : 0\r\n\r\n"},
		{"bad trailer key", "HTTP/1.1 200 OK\r\nTrailer: Content-Length\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"},
		{"204 with body", "HTTP/1.1 204 No Content\r\nContent-Length: 3\r\n\r\nabc"},
		{"bad chunk size", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n"},
		{"chunk shorter than size", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nabc\r\n0\r\n\r\n"},
		{"chunked cut short", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n"},
		{"CL body cut short", "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc"},
		{"huge header", "HTTP/1.1 200 OK\r\nX-Big: " + strings.Repeat("a", 70<<10) + "\r\nContent-Length: 0\r\n\r\n"},
		{"no answer", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			addr, closed := answerOnce(t, tc.answer)
			c := newClient(t, Options{MaxResponseHeaderBytes: 64 << 10})
			req, _ := http.NewRequest(http.MethodGet, "http://"+addr+"/", nil)
			res, err := c.RoundTrip(req)
			// A head that breaks the rules is a malformed answer; no
			// answer at all is a failed connection.
			if err != nil && MalformedAnswer(err) != (tc.answer != "") {
				t.Errorf("MalformedAnswer(%v) = %v", err, MalformedAnswer(err))
			}
			if err == nil {
				_, err = io.ReadAll(res.Body)
				res.Body.Close()
			}
			if err == nil {
				t.Fatalf("no error for %q", tc.answer)
			}
			select {
			case <-closed:
			case <-time.After(waitLimit):
				t.Fatal("the client kept the connection open")
			}
			if st := c.HostStats(addr); st.Open != 0 || st.Idle != 0 {
				t.Errorf("stats %+v; want the connection gone", st)
			}
		})
	}
}

func TestBytesAfterResponseCloseConnection(t *testing.T) {
	t.Parallel()
	addr := rawServer(t, func(_ int, c net.Conn) {
		br := bufio.NewReader(c)
		if _, err := readRequest(br); err != nil {
			return
		}
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
		io.Copy(io.Discard, br)
	})
	c := newClient(t, Options{})
	_, body := get(t, c, "http://"+addr+"/")
	if body != "ok" {
		t.Fatalf("body %q", body)
	}
	if st := c.HostStats(addr); st.Open != 0 {
		t.Errorf("stats %+v: a connection with unsolicited bytes was kept", st)
	}
}

func TestChunkedAndTrailersBothWays(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		w.Header().Set("Trailer", "X-Sum")
		w.Header().Set("X-Req-Trailer", r.Trailer.Get("X-Check"))
		w.Header().Set("X-Req-TE", strings.Join(r.TransferEncoding, ","))
		w.WriteHeader(200)
		w.Write(b)
		w.(http.Flusher).Flush()
		w.Write([]byte("!"))
		w.Header().Set("X-Sum", "42")
		w.Header().Set(http.TrailerPrefix+"X-Late", "yes")
	}))
	defer srv.Close()
	c := newClient(t, Options{})
	for i := range 3 {
		pr, pw := io.Pipe()
		req, _ := http.NewRequest(http.MethodPost, srv.URL, pr)
		req.ContentLength = -1
		req.Trailer = http.Header{"X-Check": nil}
		go func() {
			for _, part := range []string{"a", strings.Repeat("b", 10000), "c"} {
				io.WriteString(pw, part)
			}
			req.Trailer.Set("X-Check", "v")
			pw.Close()
		}()
		res, err := c.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := res.Trailer["X-Sum"]; !ok {
			t.Errorf("round %d: declared trailer missing before the body: %v", i, res.Trailer)
		}
		if res.ContentLength != -1 || len(res.TransferEncoding) != 1 || res.Header.Get("Transfer-Encoding") != "" {
			t.Errorf("round %d: framing fields CL %d TE %v header %v", i, res.ContentLength, res.TransferEncoding, res.Header)
		}
		b, err := io.ReadAll(res.Body)
		res.Body.Close()
		if err != nil || string(b) != "a"+strings.Repeat("b", 10000)+"c!" {
			t.Fatalf("round %d: body %d bytes, err %v", i, len(b), err)
		}
		if res.Trailer.Get("X-Sum") != "42" || res.Trailer.Get("X-Late") != "yes" {
			t.Errorf("round %d: trailers %v", i, res.Trailer)
		}
		if res.Header.Get("X-Req-Trailer") != "v" || res.Header.Get("X-Req-TE") != "chunked" {
			t.Errorf("round %d: upstream saw request trailer %q TE %q", i, res.Header.Get("X-Req-Trailer"), res.Header.Get("X-Req-TE"))
		}
	}
	if st := c.HostStats(strings.TrimPrefix(srv.URL, "http://")); st.Dials != 1 {
		t.Errorf("stats %+v: chunked exchanges did not reuse the connection", st)
	}
}

func TestEarlyCloseDropsConnection(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write(make([]byte, 1<<20))
	}))
	defer srv.Close()
	c := newClient(t, Options{})
	host := strings.TrimPrefix(srv.URL, "http://")
	req, _ := http.NewRequest(http.MethodGet, srv.URL, nil)
	res, err := c.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(res.Body, make([]byte, 10)); err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if st := c.HostStats(host); st.Open != 0 || st.Idle != 0 {
		t.Errorf("stats %+v after an early close; want the connection closed, not pooled", st)
	}
	if _, err := res.Body.Read(make([]byte, 1)); err == nil {
		t.Error("read after Close succeeded")
	}
	// The next request still works, on a new connection.
	if res, body := get(t, c, srv.URL); res.StatusCode != 200 || len(body) != 1<<20 {
		t.Fatalf("second request: %d, %d bytes", res.StatusCode, len(body))
	}
	if st := c.HostStats(host); st.Dials != 2 || st.Idle != 1 {
		t.Errorf("stats %+v; want a second dial and it pooled after a full read", st)
	}
}

// A cancelled request waiting for its head ends, and its connection is
// closed: at once with RoundTrip's watcher, within a polling slice with
// RoundTripUntil.
func TestCancelWhileWaiting(t *testing.T) {
	t.Parallel()
	for _, mode := range []struct {
		name string
		send func(*Client, *http.Request) error
	}{
		{"watched", func(c *Client, r *http.Request) error { _, err := c.RoundTrip(r); return err }},
		{"polled", func(c *Client, r *http.Request) error { _, err := c.RoundTripUntil(r, time.Time{}); return err }},
	} {
		t.Run(mode.name, func(t *testing.T) {
			t.Parallel()
			var received atomic.Int32
			addr := silentServer(t, &received)
			c := newClient(t, Options{})
			ctx, cancel := context.WithCancel(context.Background())
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/", nil)
			errc := make(chan error, 1)
			go func() { errc <- mode.send(c, req) }()
			waitFor(t, "the request to arrive", func() bool { return received.Load() == 1 })
			cancel()
			select {
			case err := <-errc:
				if !errors.Is(err, context.Canceled) {
					t.Errorf("error %v; want context.Canceled", err)
				}
			case <-time.After(waitLimit):
				t.Fatal("the request did not end after cancel")
			}
			waitFor(t, "the connection to close", func() bool { return c.HostStats(addr).Open == 0 })
		})
	}
}

func TestCancelDuringBody(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("first"))
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	}))
	defer srv.Close()
	c := newClient(t, Options{})
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL, nil)
	res, err := c.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 5)
	if _, err := io.ReadFull(res.Body, buf); err != nil {
		t.Fatal(err)
	}
	cancel()
	_, err = io.ReadAll(res.Body)
	res.Body.Close()
	if !errors.Is(err, context.Canceled) {
		t.Errorf("body error %v; want context.Canceled", err)
	}
	srv.CloseClientConnections()
}

func TestResponseHeaderTimeout(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	addr := rawServer(t, func(_ int, c net.Conn) {
		readRequest(bufio.NewReader(c))
		select {
		case <-release:
		case <-time.After(waitLimit):
		}
	})
	defer close(release)
	c := newClient(t, Options{ResponseHeaderTimeout: 50 * time.Millisecond})
	req, _ := http.NewRequest(http.MethodGet, "http://"+addr+"/", nil)
	_, err := c.RoundTrip(req)
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("error %v; want a timeout", err)
	}
	if MalformedAnswer(err) {
		t.Errorf("a silent upstream's timeout counted as a malformed answer")
	}
}

func TestIdleConnectionsExpire(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer srv.Close()
	c := newClient(t, Options{IdleTimeout: 30 * time.Millisecond})
	host := strings.TrimPrefix(srv.URL, "http://")
	get(t, c, srv.URL)
	waitFor(t, "the idle connection to expire", func() bool {
		st := c.HostStats(host)
		return st.Idle == 0 && st.Open == 0
	})
}

// A pooled connection the upstream closed (here: after reading the next
// request, the worst moment) is redialled for an idempotent bodiless
// request, and never for a POST.
func TestStaleConnection(t *testing.T) {
	t.Parallel()
	var received atomic.Int32
	addr := rawServer(t, func(i int, c net.Conn) {
		br := bufio.NewReader(c)
		for n := 0; ; n++ {
			if _, err := readRequest(br); err != nil {
				return
			}
			received.Add(1)
			if n == 1 {
				return // took the request, closed without a word
			}
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		}
	})
	c := newClient(t, Options{})
	url := "http://" + addr + "/"
	get(t, c, url)
	if _, body := get(t, c, url); body != "ok" {
		t.Fatalf("GET on a stale connection: body %q", body)
	}
	if st := c.HostStats(addr); st.Dials != 2 {
		t.Errorf("stats %+v; want one redial", st)
	}
	// The pool now holds the second connection, which has served one
	// request; the next request on it is dropped again.
	req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader("payload"))
	before := received.Load()
	if _, err := c.RoundTrip(req); err == nil {
		t.Fatal("POST on a connection closed without an answer succeeded")
	}
	if got := received.Load() - before; got != 1 {
		t.Errorf("the POST reached the upstream %d times; want exactly once", got)
	}
}

func TestMaxConnsPerHost(t *testing.T) {
	t.Parallel()
	var cur, peak atomic.Int32
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(time.Millisecond) // let requests overlap; asserts nothing about time
		w.Write([]byte("x"))
	}))
	srv.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		switch st {
		case http.StateNew:
			if n := cur.Add(1); n > peak.Load() {
				peak.Store(n)
			}
		case http.StateClosed, http.StateHijacked:
			cur.Add(-1)
		}
	}
	srv.Start()
	defer srv.Close()
	c := newClient(t, Options{MaxConnsPerHost: 2})
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 8 {
				req, _ := http.NewRequest(http.MethodGet, srv.URL, nil)
				res, err := c.RoundTrip(req)
				if err != nil {
					errs <- err
					return
				}
				io.Copy(io.Discard, res.Body)
				res.Body.Close()
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if p := peak.Load(); p > 2 || p < 1 {
		t.Errorf("upstream saw %d concurrent connections; want at most 2", p)
	}
	if st := c.HostStats(strings.TrimPrefix(srv.URL, "http://")); st.Open > 2 {
		t.Errorf("stats %+v", st)
	}
}

// recordingRT notes that it was used and forwards to a real transport.
type recordingRT struct {
	used atomic.Int32
	rt   http.RoundTripper
}

func (r *recordingRT) RoundTrip(req *http.Request) (*http.Response, error) {
	r.used.Add(1)
	return r.rt.RoundTrip(req)
}

func TestFallback(t *testing.T) {
	t.Parallel()
	tlsSrv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("tls")) }))
	defer tlsSrv.Close()
	plain := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("plain")) }))
	defer plain.Close()
	tr := tlsSrv.Client().Transport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{RootCAs: tlsSrv.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs}
	defer tr.CloseIdleConnections()
	fb := &recordingRT{rt: tr}
	c := newClient(t, Options{Fallback: fb})
	if _, body := get(t, c, tlsSrv.URL); body != "tls" || fb.used.Load() != 1 {
		t.Errorf("https: body %q, fallback used %d times", body, fb.used.Load())
	}
	req, _ := http.NewRequest(http.MethodGet, plain.URL, nil)
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", "websocket")
	if res, err := c.RoundTrip(req); err != nil {
		t.Fatal(err)
	} else {
		res.Body.Close()
	}
	req, _ = http.NewRequest(http.MethodPut, plain.URL, strings.NewReader("x"))
	req.Header.Set("Expect", "100-continue")
	if res, err := c.RoundTrip(req); err != nil {
		t.Fatal(err)
	} else {
		res.Body.Close()
	}
	if n := fb.used.Load(); n != 3 {
		t.Errorf("fallback used %d times; want 3 (https, upgrade, expect)", n)
	}
	if _, body := get(t, c, plain.URL); body != "plain" || fb.used.Load() != 3 {
		t.Errorf("plain GET went to the fallback (%d) or failed (%q)", fb.used.Load(), body)
	}
}

func TestInvalidRequestsRefused(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer srv.Close()
	c := newClient(t, Options{})
	for name, mod := range map[string]func(*http.Request){
		"CRLF in value": func(r *http.Request) { r.Header["X-A"] = []string{"a\r\nX-Injected: 1"} },
		"bad name":      func(r *http.Request) { r.Header["X A"] = []string{"a"} },
		"bad host":      func(r *http.Request) { r.Host = "a b" },
		"space in query": func(r *http.Request) {
			r.URL.RawQuery = "a=b c"
		},
	} {
		req, _ := http.NewRequest(http.MethodGet, srv.URL, nil)
		mod(req)
		if res, err := c.RoundTrip(req); err == nil {
			res.Body.Close()
			t.Errorf("%s: request sent", name)
		}
	}
}

func TestHeadAndNoContent(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/204" {
			w.WriteHeader(204)
			return
		}
		w.Header().Set("Content-Length", "5")
		w.Write([]byte("hello"))
	}))
	defer srv.Close()
	c := newClient(t, Options{})
	req, _ := http.NewRequest(http.MethodHead, srv.URL, nil)
	res, err := c.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.ContentLength != 5 || len(b) != 0 {
		t.Errorf("HEAD: CL %d, body %q", res.ContentLength, b)
	}
	if res, body := get(t, c, srv.URL+"/204"); res.StatusCode != 204 || body != "" {
		t.Errorf("204: %d %q", res.StatusCode, body)
	}
	if _, body := get(t, c, srv.URL); body != "hello" {
		t.Errorf("GET after HEAD and 204: %q", body)
	}
	if st := c.HostStats(strings.TrimPrefix(srv.URL, "http://")); st.Dials != 1 {
		t.Errorf("stats %+v; want HEAD, 204 and GET on one connection", st)
	}
}

// A request waiting on its upstream holds neither buffer: at a thousand
// requests in flight that is the memory of a thousand connections.
// Not parallel: the hook is package-wide.
func TestNoBuffersWhileAwaitingAnswer(t *testing.T) {
	held := make(chan bool, 16)
	hook := func(cn *conn) { held <- cn.br != nil || cn.bw != nil }
	testHookAwaitAnswer.Store(&hook)
	defer testHookAwaitAnswer.Store(nil)
	release := make(chan struct{})
	addr := rawServer(t, func(_ int, c net.Conn) {
		br := bufio.NewReader(c)
		for {
			if _, err := readRequest(br); err != nil {
				return
			}
			<-release
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		}
	})
	c := newClient(t, Options{})
	done := make(chan string, 1)
	go func() {
		req, _ := http.NewRequest(http.MethodPost, "http://"+addr+"/", strings.NewReader("body"))
		res, err := c.RoundTrip(req)
		if err != nil {
			done <- err.Error()
			return
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		done <- string(b)
	}()
	if waitChan(t, held, "the wait for the answer") {
		t.Error("the connection held a buffer while it waited for the answer")
	}
	close(release)
	if got := waitChan(t, done, "the answer"); got != "ok" {
		t.Fatalf("answer %q, want ok", got)
	}
}

func waitChan[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(waitLimit):
		t.Fatalf("timed out waiting for %s", what)
		panic("unreachable")
	}
}

// A connection the upstream closed right after answering is taken again
// at once (no liveness probe that soon): the next bodiless request, sent
// from inside the wait for its answer, meets the close there and is sent
// again on a new connection.
func TestClosedAfterAnswerIsReplayed(t *testing.T) {
	t.Parallel()
	closed := make(chan struct{}, 4)
	addr := rawServer(t, func(i int, c net.Conn) {
		br := bufio.NewReader(c)
		if _, err := readRequest(br); err != nil {
			return
		}
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		c.Close() // without Connection: close
		closed <- struct{}{}
	})
	c := newClient(t, Options{})
	url := "http://" + addr + "/"
	get(t, c, url)
	waitChan(t, closed, "the upstream's close")
	time.Sleep(10 * time.Millisecond) // the FIN has arrived
	if _, body := get(t, c, url); body != "ok" {
		t.Fatalf("GET after the upstream closed: body %q", body)
	}
	if st := c.HostStats(addr); st.Dials != 2 {
		t.Errorf("stats %+v; want one redial", st)
	}
}
