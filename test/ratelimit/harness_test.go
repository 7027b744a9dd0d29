package ratelimit

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/portunus-gw/portunus/internal/gateway"
	"github.com/portunus-gw/portunus/internal/gateway/gatewaytest"
)

// waitLimit bounds every wait so a regression fails instead of hanging.
const waitLimit = 20 * time.Second

// instance is one running gateway.
type instance struct {
	rt  *gateway.Runtime
	url string
}

// gatewayConfig is one instance's config: a route /limited with limit
// per 1h (burst = limit, by route: one bucket shared by every client) on
// the Redis at addr under prefix.
func gatewayConfig(upURL, addr, prefix, onError string, limit int) string {
	return fmt.Sprintf(`
listeners: [{ address: "127.0.0.1:0" }]
observability: { access_log: { path: "off" } }
store:
  backend: redis
  redis: { addresses: [%q], key_prefix: %q }
  on_error: %s
upstreams: [{ name: up, targets: [{ url: %q }] }]
routes:
  - name: limited
    match: { path_prefix: /limited }
    upstream: up
    rate_limits: [{ name: shared, limit: %d, window: 1h, by: route, burst: %d }]
`, addr, prefix, onError, upURL, limit, limit)
}

// startInstance starts a gateway on cfg, from its own config file.
func startInstance(t *testing.T, cfg string) *instance {
	rt := gatewaytest.Start(t, cfg)
	return &instance{rt: rt, url: gatewaytest.URL(t, rt)}
}

func newUpstream(t *testing.T) *httptest.Server {
	t.Helper()
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "ok")
	}))
	t.Cleanup(up.Close)
	return up
}

// answer is what a test keeps of one response.
type answer struct {
	status     int
	retryAfter string
	err        error
}

func get(c *http.Client, url string) answer {
	resp, err := c.Get(url)
	if err != nil {
		return answer{err: err}
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return answer{status: resp.StatusCode, retryAfter: resp.Header.Get("Retry-After")}
}

func newClient() *http.Client {
	return &http.Client{
		Timeout:   waitLimit,
		Transport: &http.Transport{MaxIdleConnsPerHost: 64},
	}
}
