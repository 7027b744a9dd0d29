package ratelimit_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/portunus-gw/portunus/internal/gateway"
)

// startGateway runs the real gateway on cfg ({UP} = the upstream's URL)
// and returns its runtime and listener address.
func startGateway(t *testing.T, cfg, upURL string) (*gateway.Runtime, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "portunus.yaml")
	if err := os.WriteFile(path, []byte(strings.ReplaceAll(cfg, "{UP}", upURL)), 0o600); err != nil {
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
	for _, a := range rt.ListenerAddrs() {
		return rt, a
	}
	t.Fatal("no listener")
	return nil, ""
}

func upstream(t *testing.T) *httptest.Server {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "upstream")
	}))
	t.Cleanup(up.Close)
	return up
}

// rawGet sends a GET with the request target written as is (so path
// spellings reach the gateway unmodified) and returns the status and the
// RateLimit header.
func rawGet(t *testing.T, addr, target string, extra ...string) (int, string) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n", target)
	for _, h := range extra {
		fmt.Fprintf(c, "%s\r\n", h)
	}
	fmt.Fprint(c, "\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("GET %s: %v", target, err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, resp.Header.Get("RateLimit")
}

func TestGatewayPathSpellingsShareABucket(t *testing.T) {
	t.Parallel()
	up := upstream(t)
	_, addr := startGateway(t, `
listeners: [{ address: "127.0.0.1:0" }]
observability: { access_log: { path: "off" } }
upstreams: [{ name: up, targets: [{ url: "{UP}" }] }]
routes:
  - name: a
    match: { path_prefix: /a }
    upstream: up
    rate_limits: [{ name: per-ip, limit: 3, window: 1h, by: ip }]
`, up.URL)
	spellings := []string{"/a", "//a", "/./a", "/b/../a"}
	want := []int{200, 200, 200, 429}
	for i, p := range spellings {
		got, rl := rawGet(t, addr, p)
		if got != want[i] {
			t.Errorf("request %d (%s): status %d (RateLimit %q); want %d", i, p, got, rl, want[i])
		}
	}
}

func TestGatewaySpoofedXFFDoesNotChangeTheKey(t *testing.T) {
	t.Parallel()
	up := upstream(t)
	// No trusted_proxies: X-Forwarded-For from the peer is not believed.
	_, addr := startGateway(t, `
listeners: [{ address: "127.0.0.1:0" }]
observability: { access_log: { path: "off" } }
upstreams: [{ name: up, targets: [{ url: "{UP}" }] }]
routes:
  - name: a
    match: { path_prefix: /a }
    upstream: up
    rate_limits: [{ limit: 2, window: 1h, by: ip }]
`, up.URL)
	for i := range 4 {
		xff := fmt.Sprintf("X-Forwarded-For: 198.51.100.%d", i+1)
		got, rl := rawGet(t, addr, "/a", xff)
		want := 200
		if i >= 2 {
			want = 429
		}
		if got != want {
			t.Errorf("request %d with %s: status %d; want %d", i, xff, got, want)
		}
		if !strings.HasPrefix(rl, `"ip0";r=`) {
			t.Errorf("request %d: RateLimit %q; want the ip0 limit", i, rl)
		}
	}
}

func TestGatewayTrustedProxyKeysByClient(t *testing.T) {
	t.Parallel()
	up := upstream(t)
	_, addr := startGateway(t, `
listeners: [{ address: "127.0.0.1:0" }]
trusted_proxies: [127.0.0.1]
observability: { access_log: { path: "off" } }
upstreams: [{ name: up, targets: [{ url: "{UP}" }] }]
routes:
  - name: a
    match: { path_prefix: /a }
    upstream: up
    rate_limits: [{ limit: 1, window: 1h, by: ip }]
`, up.URL)
	cases := []struct {
		name, xff string
		want      int
	}{
		{"first client", "198.51.100.1", 200},
		{"first client again", "198.51.100.1", 429},
		{"left-most spoofed hop ignored", "203.0.113.9, 198.51.100.1", 429},
		{"second client", "198.51.100.2", 200},
	}
	for _, c := range cases {
		if got, _ := rawGet(t, addr, "/a", "X-Forwarded-For: "+c.xff); got != c.want {
			t.Errorf("%s: status %d; want %d", c.name, got, c.want)
		}
	}
}

func TestGatewayCountersSurviveReload(t *testing.T) {
	t.Parallel()
	up := upstream(t)
	cfg := `
listeners: [{ address: "127.0.0.1:0" }]
observability: { access_log: { path: "off" } }
upstreams: [{ name: up, targets: [{ url: "{UP}" }] }]
routes:
  - name: a
    match: { path_prefix: /a }
    upstream: up
    rate_limits: [{ name: l, limit: 2, window: 1h, by: route }]
`
	rt, addr := startGateway(t, cfg, up.URL)
	for i := range 2 {
		if got, _ := rawGet(t, addr, "/a"); got != 200 {
			t.Fatalf("request %d: status %d; want 200", i, got)
		}
	}
	if err := rt.Reload("test"); err != nil {
		t.Fatalf("reload: %v", err)
	}
	if got, _ := rawGet(t, addr, "/a"); got != 429 {
		t.Errorf("after reload: status %d; want 429 (the bucket survived)", got)
	}
}
