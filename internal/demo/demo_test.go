package demo

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/websocket"
)

func server(t *testing.T) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(Handler("demo-1"))
	t.Cleanup(srv.Close)
	return srv
}

var client = &http.Client{Timeout: 30 * time.Second}

func TestEcho(t *testing.T) {
	t.Parallel()
	srv := server(t)
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/v1/a%2Fb/c?x=1&y=2", strings.NewReader("hello body"))
	req.Header.Add("X-Multi", "one")
	req.Header.Add("X-Multi", "two")
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var got Echo
	if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
		t.Fatalf("decode: %v", err)
	}
	for _, c := range []struct{ name, got, want string }{
		{"service", got.Service, "demo-1"},
		{"method", got.Method, "POST"},
		{"path", got.Path, "/v1/a/b/c"},
		{"raw_path", got.RawPath, "/v1/a%2Fb/c"},
		{"query", got.Query, "x=1&y=2"},
		{"body", got.Body, "hello body"},
		{"header", got.Headers["X-Multi"], "one, two"},
		{"service header", resp.Header.Get("X-Demo-Service"), "demo-1"},
	} {
		if c.got != c.want {
			t.Errorf("%s: got %q; want %q", c.name, c.got, c.want)
		}
	}
}

func TestEchoBodyCapped(t *testing.T) {
	t.Parallel()
	srv := server(t)
	resp, err := client.Post(srv.URL+"/big", "text/plain", bytes.NewReader(make([]byte, MaxEchoBody+1000)))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var got Echo
	_ = json.NewDecoder(resp.Body).Decode(&got)
	if len(got.Body) != MaxEchoBody {
		t.Errorf("got %d body bytes echoed; want %d", len(got.Body), MaxEchoBody)
	}
}

func TestSimpleEndpoints(t *testing.T) {
	t.Parallel()
	srv := server(t)
	for _, tc := range []struct {
		name, path string
		wantStatus int
		wantBody   string // substring
	}{
		{"healthz", "/healthz", 200, "ok"},
		{"status 418", "/status/418", 418, `"status":418`},
		{"status 503", "/status/503", 503, `"service":"demo-1"`},
		{"status out of range", "/status/700", 400, "100..599"},
		{"status not a number", "/status/abc", 400, "100..599"},
		{"delay", "/delay/10ms", 200, `"path":"/delay/10ms"`},
		{"delay too long", "/delay/31s", 400, "30s"},
		{"delay not a duration", "/delay/soon", 400, "30s"},
		{"bytes too many", "/bytes/1073741825", 400, "n must"},
		{"sse too many", "/sse?n=1001", 400, "n must"},
		{"sse bad interval", "/sse?interval=1h", 400, "interval"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			resp, err := client.Get(srv.URL + tc.path)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tc.wantStatus || !strings.Contains(string(body), tc.wantBody) {
				t.Errorf("got %d %q; want %d containing %q", resp.StatusCode, body, tc.wantStatus, tc.wantBody)
			}
		})
	}
}

func TestDelayEndsWhenClientLeaves(t *testing.T) {
	t.Parallel()
	srv := server(t)
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/delay/30s", nil)
	errc := make(chan error, 1)
	go func() {
		resp, err := client.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		errc <- err
	}()
	time.Sleep(50 * time.Millisecond)
	cancel()
	select {
	case err := <-errc:
		if err == nil {
			t.Error("got an answer after cancelling; want the request cancelled")
		}
	case <-time.After(20 * time.Second):
		t.Fatal("request still running 20s after the client cancelled")
	}
	// httptest.Server.Close (in Cleanup) waits for handlers: it would hang
	// for 30s if the handler ignored the client leaving.
}

func TestBytes(t *testing.T) {
	t.Parallel()
	srv := server(t)
	get := func() []byte {
		resp, err := client.Get(srv.URL + "/bytes/100000")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.ContentLength != 100000 {
			t.Errorf("Content-Length: got %d; want 100000", resp.ContentLength)
		}
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	a, b := get(), get()
	if len(a) != 100000 {
		t.Fatalf("got %d bytes; want 100000", len(a))
	}
	if !bytes.Equal(a, b) {
		t.Error("two requests for the same n: got different bytes; want the same")
	}
	if bytes.Count(a, []byte{0}) > 2000 {
		t.Error("got mostly zero bytes; want pseudo-random ones")
	}
}

func TestSSE(t *testing.T) {
	t.Parallel()
	srv := server(t)
	resp, err := client.Get(srv.URL + "/sse?n=3&interval=1ms")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Errorf("Content-Type: got %q; want text/event-stream", ct)
	}
	var data []string
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if d, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
			data = append(data, d)
		}
	}
	want := []string{`{"seq":0,"service":"demo-1"}`, `{"seq":1,"service":"demo-1"}`, `{"seq":2,"service":"demo-1"}`}
	if strings.Join(data, "|") != strings.Join(want, "|") {
		t.Errorf("got events %q; want %q", data, want)
	}
}

func TestSSEFlushesEachEvent(t *testing.T) {
	t.Parallel()
	srv := server(t)
	// With a long interval the first event must arrive before the second
	// is due: it was flushed on its own.
	resp, err := client.Get(srv.URL + "/sse?n=2&interval=10s")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	r := bufio.NewReader(resp.Body)
	got := make(chan string, 1)
	go func() {
		for {
			line, err := r.ReadString('\n')
			if err != nil || strings.HasPrefix(line, "data: ") {
				got <- line
				return
			}
		}
	}()
	select {
	case line := <-got:
		if !strings.Contains(line, `"seq":0`) {
			t.Errorf("got %q; want the first event", line)
		}
	case <-time.After(9 * time.Second):
		t.Fatal("first event not received before the second was due; want each event flushed")
	}
}

func TestWebSocketEcho(t *testing.T) {
	t.Parallel()
	srv := server(t)
	ws, err := websocket.Dial("ws"+strings.TrimPrefix(srv.URL, "http")+"/ws", "", srv.URL)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer ws.Close()
	_ = ws.SetDeadline(time.Now().Add(20 * time.Second))
	if err := websocket.Message.Send(ws, "hello"); err != nil {
		t.Fatal(err)
	}
	var text string
	if err := websocket.Message.Receive(ws, &text); err != nil || text != "hello" {
		t.Errorf("text echo: got %q, %v; want \"hello\"", text, err)
	}
	if err := websocket.Message.Send(ws, []byte{0, 1, 2}); err != nil {
		t.Fatal(err)
	}
	var bin []byte
	if err := websocket.Message.Receive(ws, &bin); err != nil || !bytes.Equal(bin, []byte{0, 1, 2}) {
		t.Errorf("binary echo: got %v, %v; want [0 1 2]", bin, err)
	}
}

func TestStartAndStop(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stop := Serve(ctx, ln, "started")
	resp, err := client.Get("http://" + ln.Addr().String() + "/healthz")
	if err != nil {
		t.Fatalf("GET after Serve: %v", err)
	}
	resp.Body.Close()
	stop()
	stop() // idempotent
	if _, err := net.DialTimeout("tcp", ln.Addr().String(), time.Second); err == nil {
		t.Error("dial after stop: got a connection; want the listener closed")
	}

	// Start on a port, stopped by its context.
	ctx2, cancel2 := context.WithCancel(context.Background())
	stop2, err := Start(ctx2, "127.0.0.1:0", "x")
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	cancel2()
	stop2() // returns once shut down
	if _, err := Start(context.Background(), "127.0.0.1:bad", "x"); err == nil {
		t.Error("Start on a bad address: got nil error; want one")
	}
}
