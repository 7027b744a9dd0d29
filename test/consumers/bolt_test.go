package consumers

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
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
	notDir := filepath.Join(dir, "plain-file")
	if err := os.WriteFile(notDir, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	ro, cause := unwritablePath(t, dir)
	// The unwritable cases run as root too (CI containers often are):
	// a parent that is a regular file stops root as it stops anyone.
	for _, tc := range []struct{ name, path, want string }{
		{"corrupt", garbage, "invalid"},
		{"parent is a file", filepath.Join(notDir, "consumers.db"), notDir + " is not a directory"},
		{"unwritable directory", ro, cause},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.path == "" {
				t.Skip(tc.want)
			}
			cfgPath := filepath.Join(t.TempDir(), "portunus.yaml")
			if err := os.WriteFile(cfgPath, []byte(gatewayConfig(up.URL, storeFile(tc.path))), 0o600); err != nil {
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
			// FILE:LINE:COL: store.consumers_file: consumers file PATH: ... CAUSE
			msg := err.Error()
			if !strings.Contains(msg, cfgPath+":") || !strings.Contains(msg, "store.consumers_file: consumers file "+tc.path+": ") || !strings.Contains(msg, tc.want) {
				t.Errorf("error %q: want file:line:col, store.consumers_file, the path and %q", msg, tc.want)
			}
		})
	}
}

// unwritablePath is a file path in a directory the test's user cannot
// create files in, with the cause the system gives. Not root: a 0500
// directory under dir. Root (permission bits do not stop it): a file
// under /sys, where the kernel refuses new files to root too. The
// cause is what a probe create there was told; when no such place
// exists, the path is "" and the cause says why.
func unwritablePath(t *testing.T, dir string) (path, cause string) {
	t.Helper()
	if os.Getuid() != 0 {
		ro := filepath.Join(dir, "ro")
		if err := os.Mkdir(ro, 0o500); err != nil {
			t.Fatal(err)
		}
		return filepath.Join(ro, "consumers.db"), "permission denied"
	}
	path = fmt.Sprintf("/sys/portunus-consumers-e2e-%d.db", os.Getpid())
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err == nil {
		f.Close()
		_ = os.Remove(path)
		return "", "root can create files in /sys here"
	}
	var pe *os.PathError
	if !errors.As(err, &pe) || !(errors.Is(err, fs.ErrPermission) || errors.Is(err, syscall.EROFS)) {
		return "", fmt.Sprintf("no place root cannot write: %v", err)
	}
	return path, pe.Err.Error()
}
