package cache

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/portunus-gw/portunus/internal/gateway"
	"github.com/portunus-gw/portunus/internal/gateway/gatewaytest"
)

const (
	waitLimit  = 10 * time.Second
	adminToken = "cache-test-admin-token-0123456789"
)

// upstream is the origin: it counts requests per path and answers by path.
type upstream struct {
	srv   *httptest.Server
	mu    sync.Mutex
	calls map[string]int
	seen  map[string]http.Header
	// release lets /stream answers send their second part.
	release     chan struct{}
	releaseOnce sync.Once
}

func newUpstream(t *testing.T) *upstream {
	t.Helper()
	u := &upstream{calls: map[string]int{}, seen: map[string]http.Header{}, release: make(chan struct{})}
	u.srv = httptest.NewServer(http.HandlerFunc(u.serve))
	t.Cleanup(u.srv.Close)
	t.Cleanup(u.releaseStream) // first: a failed test must not leave a handler waiting
	return u
}

// releaseStream lets every /stream answer finish.
func (u *upstream) releaseStream() { u.releaseOnce.Do(func() { close(u.release) }) }

// Parts of the /stream answer: the first is flushed, the second waits for
// releaseStream.
const streamFirst, streamSecond = "first part;", "second part"

func (u *upstream) serve(w http.ResponseWriter, r *http.Request) {
	u.mu.Lock()
	u.calls[r.URL.Path]++
	n := u.calls[r.URL.Path]
	u.seen[r.URL.Path] = r.Header.Clone()
	u.mu.Unlock()
	h := w.Header()
	switch {
	case r.URL.Path == "/account.css":
		h.Set("Content-Type", "text/css")
		h.Set("Cache-Control", "private, max-age=600")
		fmt.Fprintf(w, "/* account of %s */", r.Header.Get("Cookie"))
	case strings.HasPrefix(r.URL.Path, "/me/public"):
		h.Set("Cache-Control", "public, max-age=600")
		fmt.Fprint(w, "the same for everyone")
	case strings.HasPrefix(r.URL.Path, "/me"):
		h.Set("Cache-Control", "max-age=600")
		fmt.Fprintf(w, "user=%s", r.Header.Get("X-User"))
	case strings.HasPrefix(r.URL.Path, "/big"):
		h.Set("Content-Type", "text/plain")
		h.Set("Cache-Control", "max-age=600")
		fmt.Fprint(w, strings.Repeat("compressible text ", 400))
	case strings.HasPrefix(r.URL.Path, "/stream"):
		h.Set("Content-Type", "text/plain")
		h.Set("Cache-Control", "max-age=600")
		fmt.Fprint(w, streamFirst)
		_ = http.NewResponseController(w).Flush()
		<-u.release
		fmt.Fprint(w, streamSecond)
	case strings.HasPrefix(r.URL.Path, "/flaky"):
		h.Set("Cache-Control", "max-age=1, stale-if-error=600")
		fmt.Fprintf(w, "generation %d", n)
	default:
		h.Set("Cache-Control", "max-age=600")
		fmt.Fprintf(w, "path=%s fwd-host=%s original-url=%s rewrite-url=%s authz=%t",
			r.URL.Path, r.Header.Get("X-Forwarded-Host"), r.Header.Get("X-Original-URL"),
			r.Header.Get("X-Rewrite-URL"), r.Header.Get("Authorization") != "")
	}
}

func (u *upstream) count(path string) int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.calls[path]
}

func (u *upstream) header(path string) http.Header {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.seen[path]
}

// gatewayConfig routes /me (API key auth, the consumer sent upstream as
// X-User), /big (compressed) and everything else, all cached.
func gatewayConfig(upURL, store string) string {
	return fmt.Sprintf(`
listeners: [{ address: "127.0.0.1:0" }]
admin: { address: "127.0.0.1:0", token: %q }
observability: { access_log: { path: "off" } }
%s
upstreams: [{ name: up, targets: [{ url: %q }] }]
consumers:
  - name: alice
    api_keys: ["alice-key-0123456789"]
  - name: bob
    api_keys: ["bob-key-0123456789"]
routes:
  - name: me
    match: { path_prefix: /me }
    upstream: up
    auth: [api_key]
    request_headers: { set: { X-User: "{consumer}" } }
    cache: { ttl: 60s }
  - name: big
    match: { path_prefix: /big }
    upstream: up
    compression: { algorithms: [gzip] }
    cache: { ttl: 60s }
  - name: site
    match: { path_prefix: / }
    upstream: up
    cache: { ttl: 60s }
`, adminToken, store, upURL)
}

// instance is one running gateway.
type instance struct {
	t   *testing.T
	rt  *gateway.Runtime
	url string
	adm string
}

func startInstance(t *testing.T, cfg string) *instance {
	rt := gatewaytest.Start(t, cfg)
	return &instance{t: t, rt: rt, adm: "http://" + rt.AdminAddr(), url: gatewaytest.URL(t, rt)}
}

// client does not ask for compression unless a test says so.
var client = &http.Client{Timeout: waitLimit, Transport: &http.Transport{DisableCompression: true}}

type answer struct {
	status int
	header http.Header
	body   string
}

// get sends GET path with header fields (name, value pairs).
func (in *instance) get(path string, kv ...string) answer {
	in.t.Helper()
	req, err := http.NewRequest("GET", in.url+path, nil)
	if err != nil {
		in.t.Fatal(err)
	}
	for i := 0; i+1 < len(kv); i += 2 {
		req.Header.Add(kv[i], kv[i+1])
	}
	resp, err := client.Do(req)
	if err != nil {
		in.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return answer{status: resp.StatusCode, header: resp.Header, body: string(b)}
}

// admin calls the admin API.
func (in *instance) admin(method, path, body string) (int, string) {
	in.t.Helper()
	req, _ := http.NewRequest(method, in.adm+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+adminToken)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := client.Do(req)
	if err != nil {
		in.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func isHit(a answer) bool { return strings.HasPrefix(a.header.Get("Cache-Status"), "portunus; hit") }
