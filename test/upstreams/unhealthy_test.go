package upstreams

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
)

// TestAllTargetsUnhealthy503: when active health checks have taken every
// target of an upstream out (the targets still run and would answer
// proxied requests), a request is answered at once with 503
// upstream-unavailable problem+json and Retry-After, not sent to a
// failing target and not held until the route timeout (a minute here,
// beyond the client's own limit); when one target passes its checks
// again, requests flow again.
func TestAllTargetsUnhealthy503(t *testing.T) {
	t.Parallel()
	var sick atomic.Bool
	sick.Store(true)
	var proxied atomic.Int64
	newTarget := func() string {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/healthz" {
				if sick.Load() {
					w.WriteHeader(http.StatusInternalServerError)
				}
				return
			}
			proxied.Add(1)
			io.WriteString(w, "ok")
		}))
		t.Cleanup(srv.Close)
		return srv.URL
	}
	a, b := newTarget(), newTarget()
	base, adm := startGatewayAdmin(t, fmt.Sprintf(`
listeners: [{ address: "127.0.0.1:0" }]
observability: { access_log: { path: "off" } }
admin: { address: "127.0.0.1:0", token: %q }
upstreams:
  - name: svc
    targets: [{ url: %q }, { url: %q }]
    health_check: { path: /healthz, interval: 50ms, timeout: 50ms, healthy_threshold: 1, unhealthy_threshold: 2 }
routes:
  - { name: svc, match: { path_prefix: /svc }, upstream: svc, timeout: 1m }
`, adminToken, a, b))
	poll(t, "both targets to be unhealthy", func() bool {
		return adm.target("svc", a).Health == "unhealthy" && adm.target("svc", b).Health == "unhealthy"
	})
	client := &http.Client{Timeout: waitLimit}
	defer client.CloseIdleConnections()
	before := proxied.Load()
	for i := range 5 {
		res, err := client.Get(base + "/svc/item")
		if err != nil {
			t.Fatalf("request %d: %v; want an answer at once", i, err)
		}
		var p struct {
			Type   string `json:"type"`
			Status int    `json:"status"`
		}
		err = json.NewDecoder(res.Body).Decode(&p)
		res.Body.Close()
		if res.StatusCode != 503 || res.Header.Get("Content-Type") != "application/problem+json" || err != nil ||
			p.Type != "urn:portunus:problem:upstream-unavailable" || p.Status != 503 {
			t.Fatalf("request %d: %d %s %+v (%v); want 503 problem+json upstream-unavailable", i, res.StatusCode, res.Header.Get("Content-Type"), p, err)
		}
		if ra := res.Header.Get("Retry-After"); ra != "1" {
			t.Errorf("request %d: Retry-After %q; want 1", i, ra)
		}
	}
	if n := proxied.Load() - before; n != 0 {
		t.Errorf("%d requests reached an unhealthy target", n)
	}

	sick.Store(false)
	poll(t, "a target to be healthy again", func() bool {
		return adm.target("svc", a).Health == "healthy" || adm.target("svc", b).Health == "healthy"
	})
	res, err := client.Get(base + "/svc/item")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || string(body) != "ok" {
		t.Fatalf("after recovery: %d %s; want 200 ok", res.StatusCode, body)
	}
}
