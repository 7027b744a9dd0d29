package consumers

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/portunus-gw/portunus/internal/gateway"
)

// waitLimit bounds every wait so a regression fails instead of hanging.
const waitLimit = 15 * time.Second

const adminToken = "test-admin-token-0123456789"

// instance is one running gateway.
type instance struct {
	t    *testing.T
	rt   *gateway.Runtime
	url  string // public listener
	adm  string // admin listener
	path string // config file
}

// storeRedis and storeFile are the store sections of the two backends.
func storeRedis(addr, prefix string) string {
	return fmt.Sprintf("store:\n  backend: redis\n  redis: { addresses: [%q], key_prefix: %q }\n", addr, prefix)
}

func storeFile(path string) string {
	return fmt.Sprintf("store:\n  consumers_file: %q\n", path)
}

// gatewayConfig: /api needs an API key; /limited also has a route limit
// that a consumer's own rate_limits replace.
func gatewayConfig(upURL, store string) string {
	return fmt.Sprintf(`
listeners: [{ address: "127.0.0.1:0" }]
admin: { address: "127.0.0.1:0", token: %q }
observability: { access_log: { path: "off" } }
%s
upstreams: [{ name: up, targets: [{ url: %q }] }]
consumers:
  - name: from-file
    api_keys: ["file-key-0123456789"]
routes:
  - name: api
    match: { path_prefix: /api }
    upstream: up
    auth: [api_key]
  - name: limited
    match: { path_prefix: /limited }
    upstream: up
    auth: [api_key]
    rate_limits: [{ name: route, limit: 1000, window: 1h, by: consumer }]
`, adminToken, store, upURL)
}

// startInstance starts a gateway from cfg written to path ("" = a new
// temporary file).
func startInstance(t *testing.T, cfg, path string) *instance {
	t.Helper()
	if path == "" {
		path = filepath.Join(t.TempDir(), "portunus.yaml")
	}
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	rt, err := gateway.Start(gateway.Options{ConfigPath: path, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatalf("start gateway: %v", err)
	}
	in := &instance{t: t, rt: rt, adm: "http://" + rt.AdminAddr(), path: path}
	t.Cleanup(in.stop)
	for _, a := range rt.ListenerAddrs() {
		in.url = "http://" + a
	}
	return in
}

func (in *instance) stop() {
	if in.rt == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	in.rt.Shutdown(ctx)
	in.rt = nil
}

func newUpstream(t *testing.T) *httptest.Server {
	t.Helper()
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "ok")
	}))
	t.Cleanup(up.Close)
	return up
}

var client = &http.Client{Timeout: waitLimit, Transport: &http.Transport{MaxIdleConnsPerHost: 64}}

// admin calls the admin API and returns the status and body.
func (in *instance) admin(method, path, body string) (int, []byte) {
	in.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, _ := http.NewRequest(method, in.adm+path, rd)
	req.Header.Set("Authorization", "Bearer "+adminToken)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := client.Do(req)
	if err != nil {
		in.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// mustAdmin is admin expecting status want.
func (in *instance) mustAdmin(method, path, body string, want int) []byte {
	in.t.Helper()
	st, b := in.admin(method, path, body)
	if st != want {
		in.t.Fatalf("%s %s: %d %s; want %d", method, path, st, b, want)
	}
	return b
}

type issued struct {
	ID  string `json:"id"`
	Key string `json:"key"`
}

func (in *instance) issue(consumer string) issued {
	in.t.Helper()
	var k issued
	if err := json.Unmarshal(in.mustAdmin("POST", "/api/v1/consumers/"+consumer+"/keys", "", 201), &k); err != nil || k.Key == "" {
		in.t.Fatalf("issue: %v", err)
	}
	return k
}

// call sends GET path with key and returns the status (0 on a transport error).
func (in *instance) call(path, key string) int {
	req, _ := http.NewRequest("GET", in.url+path, nil)
	if key != "" {
		req.Header.Set("X-API-Key", key)
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// waitStatus polls until path answers want with key, returning how long
// it took, or fails after waitLimit.
func (in *instance) waitStatus(path, key string, want int) time.Duration {
	in.t.Helper()
	start := time.Now()
	for {
		got := in.call(path, key)
		if got == want {
			return time.Since(start)
		}
		if time.Since(start) > waitLimit {
			in.t.Fatalf("%s %s: still %d after %s; want %d", in.url, path, got, waitLimit, want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func jsonBody(v any) string {
	var b bytes.Buffer
	_ = json.NewEncoder(&b).Encode(v)
	return b.String()
}
