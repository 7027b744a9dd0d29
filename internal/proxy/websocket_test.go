package proxy_test

import (
	"bufio"
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/websocket"

	"github.com/portunus-gw/portunus/internal/config"
	"github.com/portunus-gw/portunus/internal/pipeline"
	"github.com/portunus-gw/portunus/internal/proxy"
)

func TestWebSocketEcho(t *testing.T) {
	t.Parallel()
	up := newUpstreamFunc(t, websocket.Handler(func(c *websocket.Conn) {
		for {
			var msg string
			if websocket.Message.Receive(c, &msg) != nil || websocket.Message.Send(c, msg) != nil {
				return
			}
		}
	}).ServeHTTP)
	states := make(chan pipeline.State, 1)
	front := startFront(t, proxy.New(proxy.Config{Pool: newPool(t, config.Upstream{}, up.URL), Timeout: 5 * time.Second}), frontOpts{states: states})
	wsURL := "ws" + strings.TrimPrefix(front.URL, "http") + "/ws"
	wcfg, err := websocket.NewConfig(wsURL, front.URL)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	ws, err := wcfg.DialContext(ctx)
	if err != nil {
		t.Fatalf("dial through proxy: %v", err)
	}
	ws.SetDeadline(time.Now().Add(waitLimit))
	for _, msg := range []string{"hello", strings.Repeat("big", 20000), "bye"} {
		if err := websocket.Message.Send(ws, msg); err != nil {
			t.Fatalf("send: %v", err)
		}
		var got string
		if err := websocket.Message.Receive(ws, &got); err != nil {
			t.Fatalf("receive: %v", err)
		}
		if got != msg {
			t.Errorf("echo: got %d bytes %.20q; want %d bytes %.20q", len(got), got, len(msg), msg)
		}
	}
	ws.Close()
	// The handler returns (both copiers ended) once the client closed.
	if s := receiveState(t, states); s.ErrorCode != "" {
		t.Errorf("state ErrorCode: got %q; want none", s.ErrorCode)
	}
}

// TestSwitchWithoutUpgradeRequest502: an upstream answering 101 to a
// request that did not ask to upgrade is broken.
func TestSwitchWithoutUpgradeRequest502(t *testing.T) {
	t.Parallel()
	up := newUpstreamFunc(t, func(w http.ResponseWriter, r *http.Request) {
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n")
		brw.Flush()
		conn.SetReadDeadline(time.Now().Add(waitLimit))
		bufio.NewReader(conn).ReadByte() // until the proxy hangs up
	})
	front := startFront(t, proxy.New(proxy.Config{Pool: newPool(t, config.Upstream{}, up.URL)}), frontOpts{})
	res, body := do(t, front, mustRequest(t, http.MethodGet, front.URL+"/", nil))
	checkProblem(t, res, body, 502, "bad-gateway")
}

func TestWebSocketAcceptRFCExample(t *testing.T) {
	t.Parallel()
	// RFC 6455 §1.3.
	if got, want := proxy.WebSocketAccept("dGhlIHNhbXBsZSBub25jZQ=="), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="; got != want {
		t.Errorf("WebSocketAccept: got %q; want %q", got, want)
	}
}

// TestWebSocketBadAccept502: a 101 whose Sec-WebSocket-Accept does not
// answer the forwarded key is 502, and the upstream connection is closed.
func TestWebSocketBadAccept502(t *testing.T) {
	t.Parallel()
	const key = "dGhlIHNhbXBsZSBub25jZQ=="
	cases := []struct {
		name   string
		accept string // "" = header absent
	}{
		{"missing", ""},
		{"wrong", "AAAAAAAAAAAAAAAAAAAAAAAAAAA="},
		{"key echoed", key},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			closed := make(chan error, 1)
			up := newUpstreamFunc(t, func(w http.ResponseWriter, r *http.Request) {
				conn, brw, err := http.NewResponseController(w).Hijack()
				if err != nil {
					closed <- err
					return
				}
				defer conn.Close()
				head := "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
				if tc.accept != "" {
					head += "Sec-WebSocket-Accept: " + tc.accept + "\r\n"
				}
				brw.WriteString(head + "\r\n")
				brw.Flush()
				conn.SetReadDeadline(time.Now().Add(waitLimit))
				_, err = brw.Reader.ReadByte() // until the proxy hangs up
				closed <- err
			})
			front := startFront(t, proxy.New(proxy.Config{Pool: newPool(t, config.Upstream{}, up.URL)}), frontOpts{})
			req := mustRequest(t, http.MethodGet, front.URL+"/ws", nil)
			req.Header.Set("Connection", "Upgrade")
			req.Header.Set("Upgrade", "websocket")
			req.Header.Set("Sec-WebSocket-Key", key)
			req.Header.Set("Sec-WebSocket-Version", "13")
			res, body := do(t, front, req)
			checkProblem(t, res, body, 502, "bad-gateway")
			select {
			case err := <-closed:
				if ne, ok := err.(interface{ Timeout() bool }); ok && ne.Timeout() {
					t.Errorf("upstream connection: still open after %v; want closed", waitLimit)
				}
			case <-time.After(2 * waitLimit):
				t.Fatal("upstream handler never returned")
			}
		})
	}
}
