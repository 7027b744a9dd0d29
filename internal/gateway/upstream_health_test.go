package gateway

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"
)

// TestUpstreamHealthInAdminAPI: with active health checks, a target whose
// server stops is reported unhealthy by GET /api/v1/upstreams (and by the
// target_up metric), and the proxy stops sending it requests.
func TestUpstreamHealthInAdminAPI(t *testing.T) {
	t.Parallel()
	live := newUpstream(t, "live")
	doomed := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "doomed") }))
	t.Cleanup(doomed.Close)
	g := startGateway(t, fmt.Sprintf(`
listeners: [{ address: "127.0.0.1:0" }]
observability: { access_log: { path: "off" } }
admin: { address: "127.0.0.1:0", token: %q }
upstreams:
  - name: pool
    balancer: least_conn
    targets: [{ url: %q }, { url: %q }]
    health_check: { path: /healthz, interval: 200ms, timeout: 200ms, healthy_threshold: 1, unhealthy_threshold: 2 }
    passive_health: {}
    circuit_breaker: {}
routes:
  - { name: p, match: { path_prefix: /p }, upstream: pool }
`, apiToken, live.URL, doomed.URL))
	c := newAPIClient(t, g.rt.AdminAddr())

	target := func(url string) TargetStatus {
		var got UpstreamsAnswer
		c.call("GET", "/api/v1/upstreams", "", apiToken).decode(t, &got)
		for _, u := range got.Upstreams {
			for _, tg := range u.Targets {
				if u.Name == "pool" && tg.URL == url {
					if u.Balancer != "least_conn" {
						t.Errorf("balancer = %q; want least_conn", u.Balancer)
					}
					return tg
				}
			}
		}
		t.Fatalf("target %s not in /api/v1/upstreams", url)
		return TargetStatus{}
	}
	waitUntil := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}

	waitUntil("both targets healthy", func() bool {
		return target(live.URL).Health == "healthy" && target(doomed.URL).Health == "healthy"
	})
	if tg := target(doomed.URL); tg.LastCheck == nil || !tg.LastCheck.OK || tg.Breaker != "closed" {
		t.Errorf("healthy target: %+v; want a passing last_check and a closed breaker", tg)
	}

	doomed.Close()
	waitUntil("the stopped target to be unhealthy", func() bool { return target(doomed.URL).Health == "unhealthy" })
	if tg := target(doomed.URL); tg.LastCheck == nil || tg.LastCheck.OK || tg.LastCheck.Error == "" {
		t.Errorf("unhealthy target's last_check: %+v; want a failure with its error", tg.LastCheck)
	}
	if tg := target(live.URL); tg.Health != "healthy" {
		t.Errorf("live target: %s; want healthy", tg.Health)
	}

	// Every request now reaches the live target.
	for i := range 20 {
		res, err := http.Get(g.url + "/p")
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		if res.StatusCode != 200 {
			t.Fatalf("request %d: %d; want 200 from the live target", i, res.StatusCode)
		}
	}

	fams := scrapeAdmin(t, g)
	if m := series(fams, "portunus_upstream_target_up", map[string]string{"upstream": "pool", "target": doomed.URL}); m == nil || m.GetGauge().GetValue() != 0 {
		t.Errorf("target_up of the stopped target: %v; want 0", m)
	}
	if m := series(fams, "portunus_upstream_target_up", map[string]string{"upstream": "pool", "target": live.URL}); m == nil || m.GetGauge().GetValue() != 1 {
		t.Errorf("target_up of the live target: %v; want 1", m)
	}
	if m := series(fams, "portunus_upstream_health_checks_total", map[string]string{"upstream": "pool", "target": doomed.URL, "result": "failure"}); m == nil || m.GetCounter().GetValue() < 2 {
		t.Errorf("failed checks of the stopped target: %v; want at least 2", m)
	}
}

// TestPassiveEjectionInAdminAPI: a target answering 502 is ejected after
// consecutive_failures proxied requests, shows as ejected in the admin
// API, and receives no more requests.
func TestPassiveEjectionInAdminAPI(t *testing.T) {
	t.Parallel()
	live := newUpstream(t, "live")
	var badHits atomic.Int64
	bad := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		badHits.Add(1)
		w.WriteHeader(http.StatusBadGateway)
	}))
	t.Cleanup(bad.Close)
	g := startGateway(t, fmt.Sprintf(`
listeners: [{ address: "127.0.0.1:0" }]
observability: { access_log: { path: "off" } }
admin: { address: "127.0.0.1:0", token: %q }
upstreams:
  - name: pool
    targets: [{ url: %q }, { url: %q }]
    passive_health: { consecutive_failures: 2, ejection_time: 1h }
routes:
  - { name: p, match: { path_prefix: /p }, upstream: pool }
`, apiToken, live.URL, bad.URL))
	c := newAPIClient(t, g.rt.AdminAddr())
	get := func() int {
		res, err := http.Get(g.url + "/p")
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		return res.StatusCode
	}
	// Round robin alternates: the bad target gets every other request
	// until its second failure ejects it.
	for range 4 {
		get()
	}
	if n := badHits.Load(); n != 2 {
		t.Fatalf("bad target received %d requests; want 2 (then ejected)", n)
	}
	for i := range 20 {
		if code := get(); code != 200 {
			t.Fatalf("request %d after the ejection: %d; want 200", i, code)
		}
	}
	if n := badHits.Load(); n != 2 {
		t.Errorf("the ejected target received %d more requests", n-2)
	}
	var got UpstreamsAnswer
	c.call("GET", "/api/v1/upstreams", "", apiToken).decode(t, &got)
	for _, tg := range got.Upstreams[0].Targets {
		switch tg.URL {
		case bad.URL:
			if tg.Health != "ejected" || tg.Ejections != 1 || tg.EjectedUntil == nil {
				t.Errorf("bad target: %+v; want ejected once, with ejected_until", tg)
			}
		case live.URL:
			if tg.Health != "unknown" || tg.Ejections != 0 || tg.LatencyMS <= 0 {
				t.Errorf("live target: %+v; want unknown health (no checks), no ejection, a latency", tg)
			}
		}
	}
	fams := scrapeAdmin(t, g)
	if m := series(fams, "portunus_upstream_ejections_total", map[string]string{"upstream": "pool", "target": bad.URL}); m == nil || m.GetCounter().GetValue() != 1 {
		t.Errorf("ejections_total of the bad target: %v; want 1", m)
	}
}
