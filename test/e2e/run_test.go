package e2e

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func e2eConfig(version, upstream string) string {
	return fmt.Sprintf(`
listeners: [{ address: "127.0.0.1:0" }]
observability: { access_log: { path: "off" } }
upstreams: [{ name: up, targets: [{ url: %q }] }]
routes:
  - { name: version, match: { path: /version }, respond: { body: %q } }
  - { name: proxied, match: { path_prefix: /p }, upstream: up }
`, upstream, version)
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	c := &http.Client{Timeout: 30 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp.StatusCode, string(b)
}

func waitBody(t *testing.T, url, want string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		_, body := get(t, url)
		if body == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET %s = %q; want %q", url, body, want)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// TestRunReloadAndDrain drives the real binary: SIGHUP and file edits
// reload, an invalid edit is reported with its line and the last good
// config keeps serving, and SIGTERM lets a slow request finish before
// exiting 0.
func TestRunReloadAndDrain(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	inFlight := make(chan struct{}, 1)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/p/slow" {
			inFlight <- struct{}{}
			<-release
		}
		_, _ = io.WriteString(w, "upstream")
	}))
	defer up.Close()

	dir := t.TempDir()
	path := filepath.Join(dir, "portunus.yaml")
	write := func(s string) {
		tmp := path + ".tmp"
		if err := os.WriteFile(tmp, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, path); err != nil {
			t.Fatal(err)
		}
	}
	write(e2eConfig("one", up.URL))
	srv := startServer(t, path)
	m, _ := srv.waitLog("listening", 0)
	base := "http://" + m["address"].(string)
	waitBody(t, base+"/version", "one")

	// A file change reloads by itself.
	write(e2eConfig("two", up.URL))
	waitBody(t, base+"/version", "two")

	// An invalid file is logged with FILE:LINE:COL and changes nothing.
	n := srv.logCount()
	write("listeners: [{ address: \"127.0.0.1:0\" }]\nroutes:\n  - match: { path: /x }\n    upstream: nope\n")
	failed, _ := srv.waitLog("config reload failed; the previous config keeps serving", n)
	if errs := fmt.Sprint(failed["errors"]); !strings.Contains(errs, path+":4:") {
		t.Errorf("reload failure log lacks %s:4:…: %v", path, errs)
	}
	if _, body := get(t, base+"/version"); body != "two" {
		t.Errorf("after an invalid edit: %q; want two", body)
	}

	// SIGHUP reloads too (the watcher would also see this write; either
	// way the answer must change).
	write(e2eConfig("three", up.URL))
	srv.signal(syscall.SIGHUP)
	waitBody(t, base+"/version", "three")

	// SIGTERM with a request in flight: it completes, then exit 0.
	slow := make(chan string, 1)
	go func() {
		resp, err := http.Get(base + "/p/slow")
		if err != nil {
			slow <- "error: " + err.Error()
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		slow <- fmt.Sprintf("%d %s", resp.StatusCode, b)
	}()
	<-inFlight
	srv.signal(syscall.SIGTERM)
	srv.waitLog("draining", 0)
	time.Sleep(100 * time.Millisecond)
	close(release)
	if got := <-slow; got != "200 upstream" {
		t.Errorf("in-flight request during drain: %q; want 200 upstream", got)
	}
	if code := srv.wait(40 * time.Second); code != 0 {
		t.Errorf("exit code after SIGTERM = %d; want 0\n%s", code, srv.log())
	}
}
