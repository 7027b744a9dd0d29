package gateway

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/portunus-gw/portunus/internal/config"
)

func versionConfig(n int, upstreamURL string) string {
	return fmt.Sprintf(`
listeners: [{ address: "127.0.0.1:0" }]
observability: { access_log: { path: "off" } }
upstreams: [{ name: up, targets: [{ url: %q }] }]
routes:
  - name: version
    match: { path: /version }
    respond: { status: 200, body: "v%d" }
  - name: proxied
    match: { path_prefix: /p }
    upstream: up
    response_headers: { set: { X-Version: "v%d" } }
`, upstreamURL, n, n)
}

// TestReloadUnderLoad reloads 100 times, valid and invalid configs mixed,
// while 50 clients send requests; no request may fail, and every answer
// comes from one whole config.
func TestReloadUnderLoad(t *testing.T) {
	t.Parallel()
	up := newUpstream(t, "up")
	g := startGateway(t, versionConfig(0, up.URL))

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}, Timeout: 10 * time.Second}
	var failures, requests atomic.Int64
	var firstErr atomic.Value
	var wg sync.WaitGroup
	for c := 0; c < 50; c++ {
		wg.Add(1)
		go func(c int) {
			defer wg.Done()
			for ctx.Err() == nil {
				path := "/version"
				if c%2 == 1 {
					path = "/p/x"
				}
				resp, err := client.Get(g.url + path)
				requests.Add(1)
				if err != nil {
					failures.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
					continue
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					failures.Add(1)
					firstErr.CompareAndSwap(nil, fmt.Sprintf("%s: %d %s", path, resp.StatusCode, b))
				}
			}
		}(c)
	}

	valid, invalid := 0, 0
	for i := 1; i <= 100; i++ {
		var cfg string
		if i%3 == 0 {
			cfg = "listeners: [{ address: \"127.0.0.1:0\" }]\nroutes: [{ match: { path: nope }, upstream: missing }]\n"
		} else {
			cfg = versionConfig(i, up.URL)
		}
		g.rewrite(cfg)
		err := g.rt.Reload("test")
		if i%3 == 0 {
			var el config.ErrorList
			if !errors.As(err, &el) {
				t.Fatalf("reload %d: invalid config accepted (err %v)", i, err)
			}
			invalid++
		} else {
			if err != nil {
				t.Fatalf("reload %d: %v", i, err)
			}
			valid++
		}
		time.Sleep(2 * time.Millisecond)
	}
	// Let the clients run on the final config too.
	time.Sleep(50 * time.Millisecond)
	cancel()
	wg.Wait()
	if f := failures.Load(); f != 0 {
		t.Fatalf("%d of %d requests failed during reloads; first: %v", f, requests.Load(), firstErr.Load())
	}
	if requests.Load() < 100 {
		t.Fatalf("only %d requests were sent; the load did not run", requests.Load())
	}
	resp := g.do("GET", "/version", nil, "")
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != "v100" {
		t.Errorf("final config answers %q; want v100", b)
	}
	t.Logf("%d requests, %d valid and %d invalid reloads, 0 failures", requests.Load(), valid, invalid)
}

func TestInvalidReloadKeepsServingAndReports(t *testing.T) {
	t.Parallel()
	up := newUpstream(t, "up")
	g := startGateway(t, versionConfig(1, up.URL))
	g.rewrite("listeners: [{ address: \"127.0.0.1:0\" }]\nroutes:\n  - match: { pth: /x }\n    respond: {}\n")
	err := g.rt.Reload("test")
	var el config.ErrorList
	if !errors.As(err, &el) || len(el) == 0 {
		t.Fatalf("reload error = %v; want a config.ErrorList", err)
	}
	if el[0].Line != 3 || el[0].Path == "" {
		t.Errorf("first error = %+v; want line 3 with a path", el[0])
	}
	if st := g.rt.LastReload(); st == nil || st.OK {
		t.Errorf("LastReload = %+v; want a failed reload", st)
	}
	resp := g.do("GET", "/version", nil, "")
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != "v1" {
		t.Errorf("after an invalid reload the gateway answers %q; want v1 from the last good config", b)
	}
}

// TestStateCarriesOver checks that an upstream pool whose config did not
// change is the same object after a reload (its connections stay warm),
// and a changed one is new.
func TestStateCarriesOver(t *testing.T) {
	t.Parallel()
	up := newUpstream(t, "up")
	up2 := newUpstream(t, "up2")
	cfg := func(secondURL string, body string) string {
		return fmt.Sprintf(`
listeners: [{ address: "127.0.0.1:0" }]
observability: { access_log: { path: "off" } }
upstreams:
  - { name: same, targets: [{ url: %q }] }
  - { name: changes, targets: [{ url: %q }] }
routes:
  - { match: { path: /a }, upstream: same }
  - { match: { path: /b }, upstream: changes }
  - { match: { path: /c }, respond: { body: %q } }
`, up.URL, secondURL, body)
	}
	g := startGateway(t, cfg(up.URL, "one"))
	before := g.rt.gw.Snapshot()
	g.rewrite(cfg(up2.URL, "two"))
	if err := g.rt.Reload("test"); err != nil {
		t.Fatal(err)
	}
	after := g.rt.gw.Snapshot()
	if before.upstreams["same"] != after.upstreams["same"] {
		t.Error("unchanged upstream pool was rebuilt; want it carried over")
	}
	if before.upstreams["changes"] == after.upstreams["changes"] {
		t.Error("changed upstream pool was reused; want a new one")
	}
	resp := g.do("GET", "/b", nil, "")
	if resp.Header.Get("X-Upstream") != "up2" {
		t.Errorf("after reload /b went to %q; want up2", resp.Header.Get("X-Upstream"))
	}
	resp.Body.Close()
}

func TestListenersOpenAndCloseOnReload(t *testing.T) {
	t.Parallel()
	up := newUpstream(t, "up")
	g := startGateway(t, versionConfig(1, up.URL))
	// Find a free port for the second listener.
	second := freeAddr(t)
	two := strings.Replace(versionConfig(2, up.URL), `listeners: [{ address: "127.0.0.1:0" }]`, fmt.Sprintf(`listeners: [{ address: "127.0.0.1:0" }, { address: %q }]`, second), 1)
	g.rewrite(two)
	if err := g.rt.Reload("test"); err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get("http://" + second + "/version")
	if err != nil {
		t.Fatalf("added listener does not answer: %v", err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != "v2" {
		t.Errorf("added listener answers %q; want v2", b)
	}
	g.rewrite(versionConfig(3, up.URL))
	if err := g.rt.Reload("test"); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: time.Second}
		resp, err := c.Get("http://" + second + "/version")
		if err != nil {
			break
		}
		resp.Body.Close()
		if time.Now().After(deadline) {
			t.Fatal("removed listener still accepts connections")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestFileChangeReloads(t *testing.T) {
	t.Parallel()
	up := newUpstream(t, "up")
	dir := t.TempDir()
	// Kubernetes-style layout: portunus.yaml -> ..data/portunus.yaml, and
	// ..data is a symlink swapped atomically to a new directory.
	mk := func(name string, n int) {
		if err := os.MkdirAll(filepath.Join(dir, name), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name, "portunus.yaml"), []byte(versionConfig(n, up.URL)), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	mk("v1", 1)
	if err := os.Symlink("v1", filepath.Join(dir, "..data")); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "portunus.yaml")
	if err := os.Symlink(filepath.Join("..data", "portunus.yaml"), path); err != nil {
		t.Fatal(err)
	}
	rt, err := Start(Options{ConfigPath: path, Log: discardLog(), Watch: true})
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Shutdown(context.Background())
	var base string
	for _, a := range rt.ListenerAddrs() {
		base = "http://" + a
	}
	waitFor := func(want string) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			resp, err := http.Get(base + "/version")
			if err == nil {
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if string(b) == want {
					return
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("config did not reload to %s", want)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	waitFor("v1")
	// Symlink swap.
	mk("v2", 2)
	tmp := filepath.Join(dir, "..data_tmp")
	if err := os.Symlink("v2", tmp); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, "..data")); err != nil {
		t.Fatal(err)
	}
	waitFor("v2")
	// Atomic rename of a plain file over the symlink.
	plain := filepath.Join(dir, "new.yaml")
	if err := os.WriteFile(plain, []byte(versionConfig(3, up.URL)), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(plain, path); err != nil {
		t.Fatal(err)
	}
	waitFor("v3")
}

// TestDrain: a slow request in flight when shutdown starts completes; new
// connections are refused.
func TestDrain(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	started := make(chan struct{}, 1)
	slow := newHoldUpstream(t, started, release)
	g := startGateway(t, `
listeners: [{ address: "127.0.0.1:0" }]
observability: { access_log: { path: "off" } }
upstreams: [{ name: up, targets: [{ url: "`+slow.URL+`" }] }]
routes: [{ match: { path_prefix: / }, upstream: up }]
`)
	type result struct {
		status int
		body   string
		err    error
	}
	done := make(chan result, 1)
	go func() {
		resp, err := http.Get(g.url + "/hold")
		if err != nil {
			done <- result{err: err}
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		done <- result{status: resp.StatusCode, body: string(b)}
	}()
	<-started
	shut := make(chan struct{})
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		g.rt.Shutdown(ctx)
		close(shut)
	}()
	// New connections are refused once shutdown began.
	deadline := time.Now().Add(5 * time.Second)
	for {
		c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: time.Second}
		resp, err := c.Get(g.url + "/other")
		if err != nil {
			break
		}
		resp.Body.Close()
		if time.Now().After(deadline) {
			t.Fatal("listener still accepts new connections while draining")
		}
		time.Sleep(10 * time.Millisecond)
	}
	select {
	case <-shut:
		t.Fatal("shutdown finished while a request was in flight")
	default:
	}
	close(release)
	r := <-done
	if r.err != nil || r.status != 200 || r.body != "held" {
		t.Fatalf("in-flight request: %+v; want 200 held", r)
	}
	select {
	case <-shut:
	case <-time.After(15 * time.Second):
		t.Fatal("shutdown did not finish after the last request")
	}
}
