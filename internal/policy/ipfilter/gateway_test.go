package ipfilter_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/portunus-gw/portunus/internal/gateway"
)

// startGateway runs the real gateway on cfg (with {UP} replaced by the
// upstream's URL) and returns its base URL.
func startGateway(t *testing.T, cfg, upURL string) string {
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
		return "http://" + a
	}
	t.Fatal("no listener")
	return ""
}

func TestGatewayIPFilter(t *testing.T) {
	t.Parallel()
	var reached atomic.Int64
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reached.Add(1)
		_, _ = io.WriteString(w, "upstream")
	}))
	t.Cleanup(up.Close)
	const routes = `
observability: { access_log: { path: "off" } }
upstreams: [{ name: up, targets: [{ url: "{UP}" }] }]
routes:
  - match: { path_prefix: /internal }
    upstream: up
    ip: { allow: [203.0.113.0/24, "2001:db8::/32"], deny: [203.0.113.66] }
  - match: { path_prefix: /open }
    upstream: up
    ip: { deny: [198.51.100.0/24] }
`
	behindProxy := startGateway(t, `
listeners: [{ address: "127.0.0.1:0" }]
trusted_proxies: [127.0.0.1]
`+routes, up.URL)
	direct := startGateway(t, `
listeners: [{ address: "127.0.0.1:0" }]
`+routes, up.URL)

	cases := []struct {
		name, base, path, xff string
		want                  int
	}{
		{"allowed client via trusted proxy", behindProxy, "/internal", "203.0.113.7", 200},
		{"other client via trusted proxy", behindProxy, "/internal", "198.51.100.1", 403},
		{"spoofed left-most hop ignored", behindProxy, "/internal", "203.0.113.7, 198.51.100.1", 403},
		{"right-most untrusted hop used", behindProxy, "/internal", "198.51.100.1, 203.0.113.7", 200},
		{"trusted hops skipped", behindProxy, "/internal", "203.0.113.7, 127.0.0.1", 200},
		{"ipv6 client", behindProxy, "/internal", "2001:db8::5", 200},
		{"ipv6 client outside", behindProxy, "/internal", "2001:db9::5", 403},
		{"mapped ipv4 client", behindProxy, "/internal", "::ffff:203.0.113.9", 200},
		{"deny wins", behindProxy, "/internal", "203.0.113.66", 403},
		{"no XFF: the proxy itself is the client", behindProxy, "/internal", "", 403},
		{"deny-only route lets others in", behindProxy, "/open", "203.0.113.7", 200},
		{"deny-only route refuses the listed", behindProxy, "/open", "198.51.100.200", 403},
		{"XFF from an untrusted peer is not believed", direct, "/internal", "203.0.113.7", 403},
		{"untrusted peer on deny-only route", direct, "/open", "198.51.100.1", 200},
	}
	client := &http.Client{Timeout: 30 * time.Second}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			// Not parallel: the upstream counter is shared.
			before := reached.Load()
			req, _ := http.NewRequest("GET", c.base+c.path, nil)
			if c.xff != "" {
				req.Header.Set("X-Forwarded-For", c.xff)
			}
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != c.want {
				t.Fatalf("status = %d (%s); want %d", resp.StatusCode, body, c.want)
			}
			gotReached := reached.Load() - before
			switch c.want {
			case 200:
				if gotReached != 1 || string(body) != "upstream" {
					t.Errorf("upstream reached %d times, body %q; want 1, \"upstream\"", gotReached, body)
				}
			case 403:
				if gotReached != 0 {
					t.Errorf("upstream reached %d times; want 0", gotReached)
				}
				if ct := resp.Header.Get("Content-Type"); ct != "application/problem+json" || !strings.Contains(string(body), "forbidden") {
					t.Errorf("answer Content-Type %q, body %q; want problem+json forbidden", ct, body)
				}
			}
		})
	}
}
