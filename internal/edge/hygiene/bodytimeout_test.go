package hygiene_test

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/portunus-gw/portunus/internal/edge/hygiene"
)

const waitLimit = 20 * time.Second

// bodyOutcome is what a handler saw reading a watched body.
type bodyOutcome struct {
	body       string
	timeout    bool
	err        error
	ctxErr     error
	origCtxErr error
}

func watchServer(t *testing.T, d time.Duration) (string, <-chan bodyOutcome) {
	t.Helper()
	out := make(chan bodyOutcome, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r2, release := hygiene.WatchBody(w, r, d)
		defer release()
		b, err := io.ReadAll(r2.Body)
		var ne net.Error
		o := bodyOutcome{body: string(b), err: err, timeout: errors.As(err, &ne) && ne.Timeout(), ctxErr: r2.Context().Err()}
		o.origCtxErr = r.Context().Err()
		out <- o
		if o.timeout {
			w.Header().Set("Connection", "close")
			w.WriteHeader(http.StatusRequestTimeout)
			return
		}
		io.WriteString(w, "got "+string(b))
	}))
	t.Cleanup(srv.Close)
	return srv.Listener.Addr().String(), out
}

func TestWatchBodyStalls(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		send string
		body string
	}{
		{"content-length", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nhello", "hello"},
		{"chunked without the last CRLF", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n", "hello"},
		{"nothing after the header", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\n", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			addr, out := watchServer(t, 300*time.Millisecond)
			c, err := net.DialTimeout("tcp", addr, waitLimit)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(waitLimit))
			io.WriteString(c, tc.send)
			var o bodyOutcome
			select {
			case o = <-out:
			case <-time.After(waitLimit):
				t.Fatal("handler never finished reading")
			}
			if !o.timeout {
				t.Errorf("read error: got %v; want a timeout", o.err)
			}
			if o.body != tc.body {
				t.Errorf("body: got %q; want %q", o.body, tc.body)
			}
			if o.ctxErr != nil {
				t.Errorf("watched context: got %v; want not cancelled by the body timeout (original: %v)", o.ctxErr, o.origCtxErr)
			}
			res, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				t.Fatalf("read answer: %v", err)
			}
			if res.StatusCode != http.StatusRequestTimeout {
				t.Errorf("status: got %d; want 408", res.StatusCode)
			}
		})
	}
}

// TestWatchBodySlowButSteady: a body that keeps arriving, each piece
// within the timeout, is read whole even though it takes longer than
// the timeout in total.
func TestWatchBodySlowButSteady(t *testing.T) {
	t.Parallel()
	addr, out := watchServer(t, 400*time.Millisecond)
	c, err := net.DialTimeout("tcp", addr, waitLimit)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(waitLimit))
	parts := []string{"aa", "bb", "cc", "dd", "ee", "ff"}
	io.WriteString(c, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 12\r\n\r\n")
	for _, p := range parts {
		time.Sleep(100 * time.Millisecond)
		io.WriteString(c, p)
	}
	o := <-out
	if o.err != nil || o.body != strings.Join(parts, "") {
		t.Errorf("body: got %q, %v; want %q, nil", o.body, o.err, strings.Join(parts, ""))
	}
	res, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("read answer: %v", err)
	}
	if res.StatusCode != http.StatusOK {
		t.Errorf("status: got %d; want 200", res.StatusCode)
	}
}
