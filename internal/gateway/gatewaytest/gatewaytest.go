// Package gatewaytest starts in-process gateways for tests: the config is
// written to a file (so reloads and relative paths behave as in
// production), logs are discarded, and the gateway is shut down when the
// test ends.
package gatewaytest

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/portunus-gw/portunus/internal/gateway"
)

// ShutdownLimit bounds the drain when a test ends, so a stuck request
// fails the test run instead of hanging it.
const ShutdownLimit = 20 * time.Second

// Start runs a gateway on the YAML config cfg.
func Start(t testing.TB, cfg string) *gateway.Runtime {
	t.Helper()
	path := filepath.Join(t.TempDir(), "portunus.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	rt, err := gateway.Start(gateway.Options{ConfigPath: path, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatalf("start gateway: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), ShutdownLimit)
		defer cancel()
		rt.Shutdown(ctx)
	})
	return rt
}

// Addr is the address of the gateway's listener. Configs with several
// listeners should pick theirs from rt.ListenerAddrs() by name.
func Addr(t testing.TB, rt *gateway.Runtime) string {
	t.Helper()
	for _, a := range rt.ListenerAddrs() {
		return a
	}
	t.Fatal("gateway has no listener")
	return ""
}

// URL is "http://" + Addr.
func URL(t testing.TB, rt *gateway.Runtime) string {
	t.Helper()
	return "http://" + Addr(t, rt)
}
