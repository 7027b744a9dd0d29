package compress_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"

	"github.com/portunus-gw/portunus/internal/gateway"
)

// TestGatewayRoute runs the real gateway with compression: {} on one
// route and checks the answer through the whole chain.
func TestGatewayRoute(t *testing.T) {
	t.Parallel()
	body := `{"rows":[` + strings.Repeat(`{"a":1,"b":"two"},`, 300) + `{}]}`
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("ETag", `"rev-7"`)
		_, _ = io.WriteString(w, body)
	}))
	t.Cleanup(up.Close)
	path := filepath.Join(t.TempDir(), "portunus.yaml")
	cfg := `
listeners: [{ address: "127.0.0.1:0" }]
observability: { access_log: { path: "off" } }
upstreams: [{ name: up, targets: [{ url: "` + up.URL + `" }] }]
routes:
  - { match: { path_prefix: /z }, upstream: up, compression: {} }
  - { match: { path_prefix: /plain }, upstream: up }
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
	var base string
	for _, a := range rt.ListenerAddrs() {
		base = "http://" + a
	}
	client := &http.Client{Transport: &http.Transport{DisableCompression: true}, Timeout: 30 * time.Second}
	get := func(p string) (*http.Response, []byte) {
		req, _ := http.NewRequest("GET", base+p, nil)
		req.Header.Set("Accept-Encoding", "gzip")
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, b
	}

	resp, b := get("/z")
	if resp.StatusCode != 200 || resp.Header.Get("Content-Encoding") != "gzip" {
		t.Fatalf("compressed route: status %d, Content-Encoding %q; want 200 gzip", resp.StatusCode, resp.Header.Get("Content-Encoding"))
	}
	if got := resp.Header.Get("Vary"); !strings.Contains(got, "Accept-Encoding") {
		t.Errorf("Vary = %q; want it to name Accept-Encoding", got)
	}
	if got := resp.Header.Get("ETag"); got != `W/"rev-7"` {
		t.Errorf("ETag = %q; want the weakened W/\"rev-7\"", got)
	}
	zr, err := gzip.NewReader(strings.NewReader(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := io.ReadAll(zr); string(got) != body {
		t.Errorf("decoded body: %d bytes; want the upstream's %d", len(got), len(body))
	}

	resp, b = get("/plain")
	if enc := resp.Header.Get("Content-Encoding"); enc != "" || string(b) != body {
		t.Errorf("route without compression: Content-Encoding %q, %d bytes; want identity, %d bytes", enc, len(b), len(body))
	}
}
