package concurrency_test

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

// TestGatewayConcurrencyAcrossReload runs the real gateway: a route with
// max 2 refuses the third concurrent request with 503 + Retry-After, and
// after a reload that leaves the block unchanged the two requests still
// in flight still count.
func TestGatewayConcurrencyAcrossReload(t *testing.T) {
	t.Parallel()
	var inUpstream atomic.Int64
	entered := make(chan struct{}, 8)
	release := make(chan struct{})
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		inUpstream.Add(1)
		defer inUpstream.Add(-1)
		if r.URL.Path == "/slow" {
			entered <- struct{}{}
			<-release
		}
		_, _ = io.WriteString(w, "ok")
	}))
	t.Cleanup(up.Close)

	cfg := func(timeout string) string {
		return strings.ReplaceAll(`
listeners: [{ address: "127.0.0.1:0" }]
observability: { access_log: { path: "off" } }
upstreams: [{ name: up, targets: [{ url: "{UP}" }] }]
routes:
  - name: limited
    match: { path_prefix: / }
    upstream: up
    timeout: `+timeout+`
    concurrency: { max: 2 }
`, "{UP}", up.URL)
	}
	path := filepath.Join(t.TempDir(), "portunus.yaml")
	if err := os.WriteFile(path, []byte(cfg("30s")), 0o600); err != nil {
		t.Fatal(err)
	}
	rt, err := gateway.Start(gateway.Options{ConfigPath: path, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	var base string
	for _, a := range rt.ListenerAddrs() {
		base = "http://" + a
	}
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 30 * time.Second}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		rt.Shutdown(ctx)
	})

	done := make(chan int, 2)
	for range 2 {
		go func() {
			resp, err := client.Get(base + "/slow")
			if err != nil {
				done <- 0
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			done <- resp.StatusCode
		}()
	}
	<-entered
	<-entered

	refusedNow := func(when string) {
		t.Helper()
		resp, err := client.Get(base + "/fast")
		if err != nil {
			t.Fatalf("%s: %v", when, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusServiceUnavailable {
			t.Fatalf("%s: status %d; want 503", when, resp.StatusCode)
		}
		if got := resp.Header.Get("Retry-After"); got != "1" {
			t.Errorf("%s: Retry-After = %q; want 1", when, got)
		}
		if !strings.Contains(string(body), "concurrency limit reached") || !strings.Contains(string(body), "upstream-unavailable") {
			t.Errorf("%s: body %s; want the concurrency problem", when, body)
		}
	}
	refusedNow("before reload")

	// Reload with an unrelated change: the limiter (and its counts) carry over.
	if err := os.WriteFile(path, []byte(cfg("29s")), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := rt.Reload("test"); err != nil {
		t.Fatalf("reload: %v", err)
	}
	refusedNow("after reload")
	if got := inUpstream.Load(); got != 2 {
		t.Errorf("upstream in flight = %d; want 2", got)
	}

	close(release)
	for range 2 {
		if code := <-done; code != http.StatusOK {
			t.Errorf("held request: status %d; want 200", code)
		}
	}
	resp, err := client.Get(base + "/fast")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("after release: status %d; want 200", resp.StatusCode)
	}
}
