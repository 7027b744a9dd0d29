package proxy_test

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/portunus-gw/portunus/internal/config"
	"github.com/portunus-gw/portunus/internal/pipeline"
	"github.com/portunus-gw/portunus/internal/policy/bodylimit"
	"github.com/portunus-gw/portunus/internal/proxy"
)

type problemBody struct {
	Type      string `json:"type"`
	Status    int    `json:"status"`
	RequestID string `json:"request_id"`
}

func checkProblem(t *testing.T, res *http.Response, body string, status int, code string) {
	t.Helper()
	if res.StatusCode != status {
		t.Errorf("status: got %d; want %d (body %s)", res.StatusCode, status, body)
	}
	if ct := res.Header.Get("Content-Type"); ct != "application/problem+json" {
		t.Errorf("Content-Type: got %q; want application/problem+json", ct)
	}
	var p problemBody
	if err := json.Unmarshal([]byte(body), &p); err != nil {
		t.Fatalf("problem body %q: %v", body, err)
	}
	if want := "urn:portunus:problem:" + code; p.Type != want || p.Status != status || p.RequestID != "req-42" {
		t.Errorf("problem: got %+v; want type %s status %d request_id req-42", p, want, status)
	}
}

func receiveState(t *testing.T, ch <-chan pipeline.State) pipeline.State {
	t.Helper()
	select {
	case s := <-ch:
		return s
	case <-time.After(waitLimit):
		t.Fatal("handler did not finish")
		return pipeline.State{}
	}
}

func TestNoTargets503(t *testing.T) {
	t.Parallel()
	states := make(chan pipeline.State, 1)
	front := startFront(t, proxy.New(proxy.Config{Pool: newPool(t, config.Upstream{Name: "empty"})}), frontOpts{states: states})
	res, body := do(t, front, mustRequest(t, http.MethodGet, front.URL+"/", nil))
	checkProblem(t, res, body, 503, "upstream-unavailable")
	if got := res.Header.Get("Retry-After"); got != "1" {
		t.Errorf("Retry-After: got %q; want 1", got)
	}
	if s := receiveState(t, states); s.ErrorCode != "upstream-unavailable" || s.Upstream != "empty" {
		t.Errorf("state: got ErrorCode %q Upstream %q; want upstream-unavailable, empty", s.ErrorCode, s.Upstream)
	}
}

func TestClosedPort502(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	states := make(chan pipeline.State, 1)
	front := startFront(t, proxy.New(proxy.Config{Pool: newPool(t, config.Upstream{}, "http://"+addr)}), frontOpts{states: states})
	res, body := do(t, front, mustRequest(t, http.MethodGet, front.URL+"/", nil))
	checkProblem(t, res, body, 502, "upstream-unavailable")
	s := receiveState(t, states)
	if s.Target != "http://"+addr || s.ErrorCode != "upstream-unavailable" {
		t.Errorf("state: got Target %q ErrorCode %q; want http://%s, upstream-unavailable", s.Target, s.ErrorCode, addr)
	}
}

func TestRouteTimeout504(t *testing.T) {
	t.Parallel()
	up := newUpstreamFunc(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(waitLimit):
		}
	})
	front := startFront(t, proxy.New(proxy.Config{Pool: newPool(t, config.Upstream{}, up.URL), Timeout: 50 * time.Millisecond}), frontOpts{})
	res, body := do(t, front, mustRequest(t, http.MethodGet, front.URL+"/", nil))
	checkProblem(t, res, body, 504, "upstream-timeout")
}

func TestResponseHeaderTimeout504(t *testing.T) {
	t.Parallel()
	up := newUpstreamFunc(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(waitLimit):
		}
	})
	pool := newPool(t, config.Upstream{Timeouts: config.UpstreamTimeouts{ResponseHeader: config.Duration(50 * time.Millisecond)}}, up.URL)
	front := startFront(t, proxy.New(proxy.Config{Pool: pool}), frontOpts{})
	res, body := do(t, front, mustRequest(t, http.MethodGet, front.URL+"/", nil))
	checkProblem(t, res, body, 504, "upstream-timeout")
}

// TestSlowBodyNotCutByRouteTimeout: the route timeout covers the wait for
// headers only; a body that takes longer still arrives whole.
func TestSlowBodyNotCutByRouteTimeout(t *testing.T) {
	t.Parallel()
	up := newUpstreamFunc(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		w.WriteHeader(200)
		io.WriteString(w, "first,")
		http.NewResponseController(w).Flush()
		// Well past the 1 s route timeout; the timeout leaves room for
		// the headers to arrive on a loaded machine.
		time.Sleep(1500 * time.Millisecond)
		io.WriteString(w, "second")
	})
	states := make(chan pipeline.State, 1)
	front := startFront(t, proxy.New(proxy.Config{Pool: newPool(t, config.Upstream{}, up.URL), Timeout: time.Second}), frontOpts{states: states})
	res, body := do(t, front, mustRequest(t, http.MethodGet, front.URL+"/", nil))
	if res.StatusCode != 200 || body != "first,second" {
		t.Errorf("got %d %q; want 200 %q", res.StatusCode, body, "first,second")
	}
	if s := receiveState(t, states); s.ErrorCode != "" || s.UpstreamDuration <= 0 {
		t.Errorf("state: got ErrorCode %q UpstreamDuration %v; want none and > 0", s.ErrorCode, s.UpstreamDuration)
	}
}

// chunkedReader hides its length so the client sends it chunked.
type chunkedReader struct{ r io.Reader }

func (c chunkedReader) Read(p []byte) (int, error) { return c.r.Read(p) }

func TestBodyLimit413(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		body   func() io.Reader
		wantUp bool // the upstream was reached (chunked: only found out while streaming)
		status int
	}{
		{"content-length over", func() io.Reader { return strings.NewReader(strings.Repeat("x", 4096)) }, false, 413},
		{"chunked over", func() io.Reader { return chunkedReader{strings.NewReader(strings.Repeat("x", 64<<10))} }, true, 413},
		{"content-length within", func() io.Reader { return strings.NewReader(strings.Repeat("x", 1024)) }, true, 200},
		{"chunked within", func() io.Reader { return chunkedReader{strings.NewReader(strings.Repeat("x", 1024))} }, true, 200},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			reached := make(chan int64, 1)
			up := newUpstreamFunc(t, func(w http.ResponseWriter, r *http.Request) {
				n, _ := io.Copy(io.Discard, r.Body)
				reached <- n
				io.WriteString(w, "ok")
			})
			states := make(chan pipeline.State, 1)
			front := startFront(t, proxy.New(proxy.Config{Pool: newPool(t, config.Upstream{}, up.URL)}), frontOpts{
				mws:    []pipeline.Middleware{bodylimit.New(2048)},
				states: states,
			})
			res, body := do(t, front, mustRequest(t, http.MethodPost, front.URL+"/upload", c.body()))
			if c.status == 413 {
				checkProblem(t, res, body, 413, "body-too-large")
				if s := receiveState(t, states); s.ErrorCode != "body-too-large" {
					t.Errorf("state ErrorCode: got %q; want body-too-large", s.ErrorCode)
				}
			} else if res.StatusCode != c.status {
				t.Errorf("status: got %d; want %d", res.StatusCode, c.status)
			}
			if !c.wantUp {
				select {
				case n := <-reached:
					t.Errorf("upstream was reached (%d bytes); want refused before forwarding", n)
				default:
				}
			}
		})
	}
}

// TestClientCancelCancelsUpstream: a client that goes away cancels the
// upstream request, and the State records 499.
func TestClientCancelCancelsUpstream(t *testing.T) {
	t.Parallel()
	started := make(chan struct{})
	cancelled := make(chan struct{})
	up := newUpstreamFunc(t, func(w http.ResponseWriter, r *http.Request) {
		close(started)
		select {
		case <-r.Context().Done():
			close(cancelled)
		case <-time.After(waitLimit):
		}
	})
	states := make(chan pipeline.State, 1)
	front := startFront(t, proxy.New(proxy.Config{Pool: newPool(t, config.Upstream{}, up.URL)}), frontOpts{states: states})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	errc := make(chan error, 1)
	go func() {
		req := mustRequest(t, http.MethodGet, front.URL+"/", nil).WithContext(ctx)
		res, err := front.Client().Do(req)
		if err == nil {
			res.Body.Close()
		}
		errc <- err
	}()
	select {
	case <-started:
	case <-time.After(waitLimit):
		t.Fatal("upstream never got the request")
	}
	cancel()
	select {
	case <-cancelled:
	case <-time.After(waitLimit):
		t.Fatal("upstream request was not cancelled when the client went away")
	}
	if err := <-errc; err == nil {
		t.Error("client request: got no error; want a cancellation error")
	}
	if s := receiveState(t, states); s.ErrorCode != proxy.CodeClientClosed {
		t.Errorf("state ErrorCode: got %q; want %q", s.ErrorCode, proxy.CodeClientClosed)
	}
}

// An answer that breaks HTTP/1.1's rules (here a folded field line) is a
// 502 bad-gateway that says so, not "could not be reached".
func TestMalformedAnswer502(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				buf := make([]byte, 4096)
				c.Read(buf) // the request head
				io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-A: a\r\n b\r\n\r\nok")
			}()
		}
	}()
	states := make(chan pipeline.State, 1)
	front := startFront(t, proxy.New(proxy.Config{Pool: newPool(t, config.Upstream{}, "http://"+ln.Addr().String())}), frontOpts{states: states})
	res, body := do(t, front, mustRequest(t, http.MethodGet, front.URL+"/", nil))
	checkProblem(t, res, body, 502, "bad-gateway")
	if !strings.Contains(body, "cannot be read safely") {
		t.Errorf("detail: %s", body)
	}
	if s := receiveState(t, states); s.ErrorCode != "bad-gateway" {
		t.Errorf("state: ErrorCode %q; want bad-gateway", s.ErrorCode)
	}
}
