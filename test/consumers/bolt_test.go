package consumers

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/portunus-gw/portunus/internal/config"
	"github.com/portunus-gw/portunus/internal/gateway"
)

// TestEmbeddedStoreRestart: with the memory store and consumers_file, a
// restart keeps consumers and keys.
func TestEmbeddedStoreRestart(t *testing.T) {
	t.Parallel()
	up := newUpstream(t)
	db := filepath.Join(t.TempDir(), "consumers.db")
	cfg := gatewayConfig(up.URL, storeFile(db))
	a := startInstance(t, cfg, "")
	a.mustAdmin("POST", "/api/v1/consumers", `{"name":"local"}`, 201)
	k := a.issue("local")
	if got := a.call("/api/x", k.Key); got != 200 {
		t.Fatalf("new key: %d", got)
	}
	a.stop()
	b := startInstance(t, cfg, "")
	if got := b.call("/api/x", k.Key); got != 200 {
		t.Errorf("after restart: %d; want 200", got)
	}
	// A reload that changes another store setting keeps the file open
	// once (bbolt locks it) and keeps serving the consumers.
	if err := os.WriteFile(b.path, []byte(strings.Replace(cfg, "store:\n", "store:\n  on_error: fail_closed\n", 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := b.rt.Reload("test"); err != nil {
		t.Fatalf("reload: %v", err)
	}
	if got := b.call("/api/x", k.Key); got != 200 {
		t.Errorf("after reload: %d; want 200", got)
	}
}

// TestEmbeddedStoreStartupErrors: a damaged file or an unwritable path
// stops start-up with the path and the cause, at store.consumers_file.
func TestEmbeddedStoreStartupErrors(t *testing.T) {
	t.Parallel()
	up := newUpstream(t)
	dir := t.TempDir()
	garbage := filepath.Join(dir, "garbage.db")
	if err := os.WriteFile(garbage, []byte(strings.Repeat("definitely not bbolt ", 1000)), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := map[string]string{"corrupt": garbage}
	if os.Getuid() != 0 {
		ro := filepath.Join(dir, "ro")
		if err := os.Mkdir(ro, 0o500); err != nil {
			t.Fatal(err)
		}
		cases["unwritable"] = filepath.Join(ro, "consumers.db")
	}
	for name, path := range cases {
		t.Run(name, func(t *testing.T) {
			cfgPath := filepath.Join(t.TempDir(), "portunus.yaml")
			if err := os.WriteFile(cfgPath, []byte(gatewayConfig(up.URL, storeFile(path))), 0o600); err != nil {
				t.Fatal(err)
			}
			rt, err := gateway.Start(gateway.Options{ConfigPath: cfgPath})
			if err == nil {
				rt.Shutdown(t.Context())
				t.Fatal("started; want an error")
			}
			var el config.ErrorList
			if !errors.As(err, &el) {
				t.Errorf("error %T; want a config.ErrorList (exit 1)", err)
			}
			msg := err.Error()
			if !strings.Contains(msg, path) || !strings.Contains(msg, "store.consumers_file") || !strings.Contains(msg, cfgPath+":") {
				t.Errorf("error %q: want file:line:col, store.consumers_file and the path", msg)
			}
		})
	}
}
