package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/portunus-gw/portunus/internal/gateway"
)

const cliToken = "cli-test-admin-token-0123"

// startCLIGateway runs a gateway with runtime consumers in a bbolt file
// and returns its admin URL.
func startCLIGateway(t *testing.T) string {
	t.Helper()
	return "http://" + startCLIRuntime(t).AdminAddr()
}

// startCLIRuntime is startCLIGateway returning the runtime: /k needs an
// API key, /b basic auth.
func startCLIRuntime(t *testing.T) *gateway.Runtime {
	t.Helper()
	dir := t.TempDir()
	cfg := fmt.Sprintf(`
listeners: [{ address: "127.0.0.1:0" }]
admin: { address: "127.0.0.1:0", token: %q }
observability: { access_log: { path: "off" } }
store: { consumers_file: %q }
consumers: [{ name: from-file, api_keys: ["file-key-0123456789"] }]
routes:
  - { name: r, match: { path: /k }, auth: [api_key], respond: { status: 200 } }
  - { name: b, match: { path: /b }, auth: [basic], respond: { status: 200 } }
`, cliToken, filepath.Join(dir, "c.db"))
	path := filepath.Join(dir, "portunus.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	rt, err := gateway.Start(gateway.Options{ConfigPath: path, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		rt.Shutdown(ctx)
	})
	return rt
}

func runCLI(args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := run(args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestConsumersCLI(t *testing.T) {
	t.Parallel()
	adm := startCLIGateway(t)
	base := []string{"consumers", "--admin", adm, "--token", cliToken}
	cli := func(want int, args ...string) string {
		t.Helper()
		code, out, errs := runCLI(append(append([]string{}, base...), args...)...)
		if code != want {
			t.Fatalf("%v: exit %d (stdout %q, stderr %q); want %d", args, code, out, errs, want)
		}
		return out + errs
	}
	cli(0, "create", "acme", "--role", "buyer", "--meta", "plan=gold")
	if out := cli(1, "create", "acme"); !strings.Contains(out, "409") || !strings.Contains(out, "exists") {
		t.Errorf("duplicate create: %q", out)
	}
	if out := cli(0, "list"); !strings.Contains(out, "acme") || !strings.Contains(out, "runtime") {
		t.Errorf("list: %q", out)
	}
	if out := cli(0, "get", "acme"); !strings.Contains(out, `"plan": "gold"`) {
		t.Errorf("get: %q", out)
	}
	out := cli(0, "keys", "issue", "acme", "--expires-in", "720h")
	key := regexp.MustCompile(`key:\s+(pk_\S+)`).FindStringSubmatch(out)
	id := regexp.MustCompile(`key id:\s+(\S+)`).FindStringSubmatch(out)
	if key == nil || id == nil || !strings.Contains(out, "shown this once") {
		t.Fatalf("issue output: %q", out)
	}
	if out := cli(0, "keys", "list", "acme"); !strings.Contains(out, id[1]) || strings.Contains(out, key[1]) {
		t.Errorf("keys list: %q (must list the id, never the key)", out)
	}
	out = cli(0, "keys", "rotate", "acme", id[1], "--overlap", "0s")
	if !strings.Contains(out, "replaces: "+id[1]) {
		t.Errorf("rotate output: %q", out)
	}
	newID := regexp.MustCompile(`key id:\s+(\S+)`).FindStringSubmatch(out)
	cli(0, "keys", "revoke", "acme", newID[1])
	if out := cli(1, "keys", "revoke", "acme", newID[1]); !strings.Contains(out, "404") {
		t.Errorf("second revoke: %q", out)
	}
	cli(0, "delete", "acme")
	if out := cli(1, "get", "acme"); !strings.Contains(out, "404") {
		t.Errorf("get after delete: %q", out)
	}

	// Usage errors: 2.
	for _, args := range [][]string{{}, {"frobnicate"}, {"keys"}, {"keys", "rotate", "acme"}, {"get"}, {"create", "x", "--meta", "novalue"}} {
		if code, _, _ := runCLI(append(append([]string{}, base...), args...)...); code != 2 {
			t.Errorf("%v: exit %d; want 2", args, code)
		}
	}
	if code, _, _ := runCLI("consumers", "--admin", "ftp://x", "list"); code != 2 {
		t.Errorf("bad --admin: exit %d; want 2", code)
	}
	// Wrong token, and the token from the environment is not set here.
	if code, _, errs := runCLI("consumers", "--admin", adm, "--token", "wrong-token-000000000", "list"); code != 1 || !strings.Contains(errs, "401") {
		t.Errorf("wrong token: exit %d, %q; want 1 and the 401", code, errs)
	}
	// Nothing listening: 1 with a clear message.
	if code, _, errs := runCLI("consumers", "--admin", "http://127.0.0.1:1", "list"); code != 1 || !strings.Contains(errs, "cannot reach") {
		t.Errorf("unreachable: exit %d, %q", code, errs)
	}
}
