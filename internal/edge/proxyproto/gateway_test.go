package proxyproto_test

import (
	"bufio"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/portunus-gw/portunus/internal/gateway"
)

// TestGatewayProxyProtocol runs the real gateway with proxy_protocol on
// and checks the upstream sees the announced client in X-Forwarded-For.
func TestGatewayProxyProtocol(t *testing.T) {
	t.Parallel()
	xff := make(chan string, 4)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		xff <- r.Header.Get("X-Forwarded-For")
	}))
	t.Cleanup(up.Close)
	dir := t.TempDir()
	path := filepath.Join(dir, "portunus.yaml")
	cfg := `
listeners: [{ address: "127.0.0.1:0", proxy_protocol: true }]
trusted_proxies: [127.0.0.1/32]
observability: { access_log: { path: "off" } }
upstreams: [{ name: up, targets: [{ url: "` + up.URL + `" }] }]
routes: [{ match: { path_prefix: / }, upstream: up }]
`
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	rt, err := gateway.Start(gateway.Options{ConfigPath: path, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		rt.Shutdown(ctx)
	})
	var addr string
	for _, a := range rt.ListenerAddrs() {
		addr = a
	}
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	// The client's own X-Forwarded-For is not believed: the announced
	// client is not a trusted proxy.
	_, err = io.WriteString(c, "PROXY TCP4 203.0.113.50 192.0.2.2 40000 80\r\n"+
		"GET /x HTTP/1.1\r\nHost: example.com\r\nX-Forwarded-For: 6.6.6.6\r\nConnection: close\r\n\r\n")
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("read answer: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("status = %d; want 200", resp.StatusCode)
	}
	select {
	case got := <-xff:
		if got != "203.0.113.50" {
			t.Errorf("upstream X-Forwarded-For = %q; want the announced client 203.0.113.50", got)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("upstream saw no request")
	}
}
