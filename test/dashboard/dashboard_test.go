package dashboard

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/portunus-gw/portunus/internal/gateway"
)

const (
	chromium = "/usr/bin/chromium"
	// scriptLimit bounds the browser run; the script itself aims at well
	// under a minute.
	scriptLimit = 150 * time.Second
)

// Route names the script must find on the Routes view.
var routeNames = []string{"users-api", "orders-api", "status-page", "catalog-api"}

// requireTools skips when the browser toolchain is missing, except in CI
// (CI=true), where a missing tool is a failure: .ci/run installs them.
func requireTools(t *testing.T) string {
	t.Helper()
	missing := func(what string) {
		msg := what + " (install: apt-get install -y chromium nodejs npm; cd test/dashboard && npm ci)"
		if os.Getenv("CI") == "true" {
			t.Fatalf("CI=true but %s", msg)
		}
		t.Skipf("skipping the browser test: %s", msg)
	}
	node, err := exec.LookPath("node")
	if err != nil {
		missing("node is not installed")
	}
	if _, err := os.Stat(chromium); err != nil {
		missing(chromium + " is missing")
	}
	for _, m := range []string{"playwright-core", "axe-core"} {
		if _, err := os.Stat(filepath.Join("node_modules", m, "package.json")); err != nil {
			missing("test/dashboard/node_modules/" + m + " is missing")
		}
	}
	return node
}

// backend is one upstream target that can be stopped.
type backend struct {
	srv  *httptest.Server
	once sync.Once
}

func newBackend(t *testing.T, name string) *backend {
	t.Helper()
	b := &backend{}
	b.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == "/healthz":
			_, _ = io.WriteString(w, "ok")
		case strings.HasSuffix(r.URL.Path, "/fail"):
			http.Error(w, "upstream failure", http.StatusInternalServerError)
		default:
			_, _ = io.Copy(io.Discard, r.Body)
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprintf(w, `{"from":%q,"path":%q}`, name, r.URL.Path)
		}
	}))
	t.Cleanup(b.stop)
	return b
}

func (b *backend) stop() {
	b.once.Do(func() {
		b.srv.CloseClientConnections()
		b.srv.Close()
	})
}

func randomToken(t *testing.T) string {
	t.Helper()
	buf := make([]byte, 16)
	if _, err := rand.Read(buf); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(buf)
}

func TestDashboardInBrowser(t *testing.T) {
	t.Parallel()
	node := requireTools(t)

	usersA, usersB, orders := newBackend(t, "users-a"), newBackend(t, "users-b"), newBackend(t, "orders")
	catalog := newBackend(t, "catalog")
	token := randomToken(t)
	// catalog-api shows auth, cache and transform policies, and alice's
	// traffic to it (sent when the script asks) moves her rate-limit
	// bucket (by consumer; the by-ip limit is "not per consumer") and her
	// quota count.
	cfg := fmt.Sprintf(`
listeners: [{ address: "127.0.0.1:0" }]
admin: { address: "127.0.0.1:0", token: %q }
observability: { access_log: { path: "off" } }
upstreams:
  - name: users
    targets: [{ url: %q }, { url: %q }]
    health_check: { path: /healthz, interval: 500ms, timeout: 400ms, healthy_threshold: 1, unhealthy_threshold: 1 }
  - name: orders
    targets: [{ url: %q }]
  - name: catalog
    targets: [{ url: %q }]
consumers:
  - name: alice
    roles: [admin, ops]
    api_keys: ["alice-key-0123456789"]
  - name: bob
    roles: [reader]
    api_keys: ["bob-key-0123456789"]
routes:
  - name: users-api
    match: { path_prefix: /users }
    upstream: users
  - name: orders-api
    match: { path_prefix: /orders, methods: [GET, POST] }
    upstream: orders
    rate_limits: [{ limit: 100000, window: 1m, by: ip }]
  - name: status-page
    match: { path: /status }
    respond: { status: 200, body: "up" }
  - name: catalog-api
    match: { path_prefix: /catalog }
    auth: [api_key]
    upstream: catalog
    rate_limits:
      - { name: per-consumer, limit: 1000, window: 1h, by: consumer }
      - { limit: 100000, window: 1m, by: ip }
      - { name: whole-route, limit: 10000, window: 24h, by: route }
    quotas: [{ limit: 100000, period: day, by: consumer }]
    cache: { ttl: 30s }
    request_transform: { query: { set: { source: gateway } } }
    response_headers: { remove: [Server] }
`, token, usersA.srv.URL, usersB.srv.URL, orders.srv.URL, catalog.srv.URL)
	path := filepath.Join(t.TempDir(), "portunus.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	rt, err := gateway.Start(gateway.Options{ConfigPath: path, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatalf("start gateway: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		rt.Shutdown(ctx)
	})
	var public string
	for _, a := range rt.ListenerAddrs() {
		public = "http://" + a
	}
	admin := "http://" + rt.AdminAddr()

	// Steady traffic while the browser runs: about 60 requests a second
	// over three routes, one in ten of the orders calls failing upstream,
	// so every chart has something to draw.
	ctx, stopTraffic := context.WithCancel(context.Background())
	var sent atomic.Int64
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		client := &http.Client{Timeout: 5 * time.Second}
		paths := []string{"/users/1", "/users/2", "/orders/9", "/status", "/users/3", "/orders/fail", "/orders/7", "/users/4", "/orders/8", "/orders/6"}
		tick := time.NewTicker(16 * time.Millisecond)
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, public+paths[i%len(paths)], nil)
			if resp, err := client.Do(req); err == nil {
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				sent.Add(1)
			}
		}
	}()
	t.Cleanup(func() { stopTraffic(); wg.Wait() })

	// The script asks this loopback control server to stop users-b when
	// it is ready to watch the target go unhealthy, to send a batch of
	// alice's requests when it watches her usage, and to break and mend
	// the config file around the reloads it makes.
	control := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			http.NotFound(w, r)
			return
		}
		switch r.URL.Path {
		case "/stop-users-b":
			usersB.stop()
		case "/alice-traffic":
			ok, err := aliceBatch(r.Context(), public, aliceRequests)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadGateway)
				return
			}
			fmt.Fprintf(w, `{"ok":%d}`, ok)
			return
		case "/break-config":
			if err := os.WriteFile(path, []byte(cfg+"\nroutes: this is not a list\n"), 0o600); err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
		case "/mend-config":
			if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
		default:
			http.NotFound(w, r)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(control.Close)

	artifacts := os.Getenv("ARTIFACTS_DIR")
	if artifacts == "" {
		artifacts = "artifacts"
	}
	artifacts, err = filepath.Abs(filepath.Join(artifacts, "dashboard"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(artifacts, 0o755); err != nil {
		t.Fatal(err)
	}
	params, _ := json.Marshal(map[string]any{
		"admin":         admin,
		"token":         token,
		"control":       control.URL,
		"routes":        routeNames,
		"stoppedURL":    usersB.srv.URL,
		"healthyURL":    usersA.srv.URL,
		"explainURL":    "http://gw.test/orders/42?x=1",
		"explainRoute":  "orders-api",
		"consumer":      "alice",
		"limitRow":      "catalog-api/per-consumer",
		"ipLimitRow":    "catalog-api/ip1",
		"routeLimitRow": "catalog-api/whole-route",
		"quotaRow":      "catalog-api/quota-0",
		"batch":         aliceRequests,
		"policyRoute":   "catalog-api",
		"topRoutes":     []string{"orders-api", "users-api", "status-page"},
		"errorRoute":    "orders-api",
		"secrets":       []string{"alice-key-0123456789", "bob-key-0123456789", token},
		"chromium":      chromium,
		"artifacts":     artifacts,
	})
	runCtx, cancel := context.WithTimeout(context.Background(), scriptLimit)
	defer cancel()
	cmd := exec.CommandContext(runCtx, node, "dashboard.mjs")
	cmd.Env = append(os.Environ(), "DASHBOARD_TEST="+string(params))
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	runErr := cmd.Run()
	if stderr.Len() > 0 {
		t.Logf("script stderr:\n%s", stderr.String())
	}
	t.Logf("traffic sent while the browser ran: %d requests; screenshots in %s", sent.Load(), artifacts)

	// The script prints one JSON object: a list of named checks.
	var out struct {
		Checks []struct {
			Name   string `json:"name"`
			OK     bool   `json:"ok"`
			Detail string `json:"detail"`
		} `json:"checks"`
		Fatal string `json:"fatal"`
	}
	if err := json.Unmarshal(lastLine(stdout.Bytes()), &out); err != nil {
		var exit *exec.ExitError
		if errors.As(runErr, &exit) || runErr != nil {
			t.Fatalf("script failed (%v) without a result; stdout:\n%s", runErr, stdout.String())
		}
		t.Fatalf("script output is not a result (%v):\n%s", err, stdout.String())
	}
	if out.Fatal != "" {
		t.Errorf("script stopped early: %s", out.Fatal)
	}
	want := []string{
		"page loads and asks for the token", "shows the configured routes", "route search filters",
		"charts move while traffic runs", "explain box works with the keyboard alone",
		"target goes unhealthy when its upstream stops", "no horizontal scroll at 320 px",
		"routes show auth, cache and transform policies",
		"consumers shows roles and credential kinds, never secrets",
		"consumer rate-limit and quota usage move with traffic",
		"overview shows top routes and the reload result",
		"screenshots: light and dark of each view",
		"axe-core: no serious or critical violations", "no console errors",
	}
	seen := map[string]bool{}
	for _, c := range out.Checks {
		seen[c.Name] = true
		t.Run(c.Name, func(t *testing.T) {
			if !c.OK {
				t.Error(c.Detail)
			} else if c.Detail != "" {
				t.Log(c.Detail)
			}
		})
	}
	for _, w := range want {
		if !seen[w] {
			t.Errorf("check %q did not run", w)
		}
	}
	if runErr != nil && !t.Failed() {
		t.Errorf("script exited with %v although every check passed", runErr)
	}
}

// aliceRequests is how many requests one batch of alice's traffic sends.
const aliceRequests = 20

// aliceBatch sends n GETs to catalog-api with alice's key and reports how
// many were answered 200.
func aliceBatch(ctx context.Context, public string, n int) (int, error) {
	client := &http.Client{Timeout: 5 * time.Second}
	ok := 0
	for i := range n {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("%s/catalog/items/%d", public, i), nil)
		if err != nil {
			return ok, err
		}
		req.Header.Set("X-API-Key", "alice-key-0123456789")
		resp, err := client.Do(req)
		if err != nil {
			return ok, err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			ok++
		}
	}
	return ok, nil
}

func lastLine(b []byte) []byte {
	b = bytes.TrimSpace(b)
	if i := bytes.LastIndexByte(b, '\n'); i >= 0 {
		return b[i+1:]
	}
	return b
}
