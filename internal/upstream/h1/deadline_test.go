package h1

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// silentServer reads each request and never answers (until the test ends).
func silentServer(t *testing.T, received *atomic.Int32) string {
	t.Helper()
	release := make(chan struct{})
	addr := rawServer(t, func(_ int, c net.Conn) {
		br := bufio.NewReader(c)
		for {
			if _, err := readRequest(br); err != nil {
				return
			}
			if received != nil {
				received.Add(1)
			}
			select {
			case <-release:
				return
			case <-time.After(waitLimit):
				return
			}
		}
	})
	t.Cleanup(func() { close(release) }) // runs before rawServer's wait
	return addr
}

// RoundTripUntil fails with ErrDeadline once its deadline passes without
// a response head, and closes the connection (its answer may still come).
func TestRoundTripUntilDeadline(t *testing.T) {
	t.Parallel()
	addr := silentServer(t, nil)
	c := newClient(t, Options{})
	req, _ := http.NewRequest(http.MethodGet, "http://"+addr+"/", nil)
	_, err := c.RoundTripUntil(req, time.Now().Add(50*time.Millisecond))
	if !errors.Is(err, ErrDeadline) {
		t.Fatalf("error %v; want ErrDeadline", err)
	}
	if st := c.HostStats(addr); st.Open != 0 {
		t.Errorf("stats %+v; want the connection closed", st)
	}
}

// A deadline already past fails before anything is sent.
func TestRoundTripUntilPastDeadline(t *testing.T) {
	t.Parallel()
	var received atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { received.Add(1) }))
	defer srv.Close()
	c := newClient(t, Options{})
	get(t, c, srv.URL) // a pooled connection, so the check is not the dial's
	req, _ := http.NewRequest(http.MethodGet, srv.URL, nil)
	if _, err := c.RoundTripUntil(req, time.Now().Add(-time.Second)); !errors.Is(err, ErrDeadline) {
		t.Errorf("error %v; want ErrDeadline", err)
	}
	if n := received.Load(); n != 1 {
		t.Errorf("upstream received %d requests; want 1 (the past-deadline one never sent)", n)
	}
}

// With max_connections reached, the wait for a connection ends at the
// deadline too.
func TestRoundTripUntilWhileSaturated(t *testing.T) {
	t.Parallel()
	addr := silentServer(t, nil)
	c := newClient(t, Options{MaxConnsPerHost: 1})
	holder, cancel := context.WithCancel(context.Background())
	defer cancel()
	hold, _ := http.NewRequestWithContext(holder, http.MethodGet, "http://"+addr+"/", nil)
	done := make(chan struct{})
	go func() {
		defer close(done)
		c.RoundTrip(hold) // holds the only connection until cancelled
	}()
	waitFor(t, "the first request to hold the connection", func() bool { return c.HostStats(addr).Open == 1 })
	req, _ := http.NewRequest(http.MethodGet, "http://"+addr+"/", nil)
	if _, err := c.RoundTripUntil(req, time.Now().Add(50*time.Millisecond)); !errors.Is(err, ErrDeadline) {
		t.Errorf("error %v; want ErrDeadline", err)
	}
	cancel()
	<-done
}

// A connection that idled longer than a polling slice (its read deadline
// passed meanwhile) is still reused.
func TestIdleBeyondPollSliceIsReused(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	defer srv.Close()
	c := newClient(t, Options{ResponseHeaderTimeout: time.Second})
	get(t, c, srv.URL)
	time.Sleep(2*pollSlice + 50*time.Millisecond)
	if _, body := get(t, c, srv.URL); body != "ok" {
		t.Fatalf("body %q", body)
	}
	if st := c.HostStats(strings.TrimPrefix(srv.URL, "http://")); st.Dials != 1 {
		t.Errorf("stats %+v; want the idle connection reused (1 dial)", st)
	}
}

// An upstream that answers slower than a polling slice is waited for:
// the slices end, the request goes on.
func TestSlowAnswerOutlastsPollSlices(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(3 * pollSlice)
		io.WriteString(w, "late")
	}))
	defer srv.Close()
	c := newClient(t, Options{})
	req, _ := http.NewRequest(http.MethodGet, srv.URL, nil)
	res, err := c.RoundTripUntil(req, time.Time{}) // polled: no watcher
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if string(b) != "late" {
		t.Fatalf("body %q", b)
	}
}

// A header timeout on a reused connection is not a stale connection: the
// request is not sent again.
func TestHeaderTimeoutIsNotRetried(t *testing.T) {
	t.Parallel()
	var received atomic.Int32
	release := make(chan struct{})
	defer close(release)
	addr := rawServer(t, func(_ int, c net.Conn) {
		br := bufio.NewReader(c)
		for n := 0; ; n++ {
			if _, err := readRequest(br); err != nil {
				return
			}
			received.Add(1)
			if n == 0 {
				io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
				continue
			}
			select { // the second request is never answered
			case <-release:
			case <-time.After(waitLimit):
			}
			return
		}
	})
	c := newClient(t, Options{ResponseHeaderTimeout: 100 * time.Millisecond})
	get(t, c, "http://"+addr+"/")
	req, _ := http.NewRequest(http.MethodGet, "http://"+addr+"/", nil)
	_, err := c.RoundTrip(req)
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("error %v; want a timeout", err)
	}
	if n := received.Load(); n != 2 {
		t.Errorf("upstream received %d requests; want 2 (no resend after the timeout)", n)
	}
}

// A request head larger than the write buffer may block on an upstream
// that reads nothing: the context watcher is armed for it, so a cancel
// still ends the request.
func TestCancelWhileWritingLargeHead(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	defer close(release)
	addr := rawServer(t, func(_ int, c net.Conn) {
		select { // reads nothing
		case <-release:
		case <-time.After(waitLimit):
		}
	})
	c := newClient(t, Options{})
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/", nil)
	req.Header.Set("X-Big", strings.Repeat("b", 32<<20)) // more than any socket buffer holds
	errc := make(chan error, 1)
	go func() {
		_, err := c.RoundTripUntil(req, time.Time{}) // polled: armed at the first flush
		errc <- err
	}()
	time.Sleep(100 * time.Millisecond)
	cancel()
	select {
	case err := <-errc:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("error %v; want context.Canceled", err)
		}
	case <-time.After(waitLimit):
		t.Fatal("RoundTrip did not return after cancel")
	}
}
