package gateway

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// metricsConfig has a healthy upstream, one that answers 503, one nobody
// listens on, and an admin listener for loopback clients only.
func metricsConfig(okURL, boomURL, downURL, body string) string {
	return fmt.Sprintf(`
listeners: [{ address: "127.0.0.1:0" }]
observability: { access_log: { path: "off" } }
admin: { address: "127.0.0.1:0" }
upstreams:
  - { name: okup, targets: [{ url: %q }] }
  - { name: boomup, targets: [{ url: %q }] }
  - { name: downup, targets: [{ url: %q }] }
routes:
  - { name: ok, match: { path_prefix: /ok }, upstream: okup }
  - { name: boom, match: { path_prefix: /boom }, upstream: boomup }
  - { name: down, match: { path_prefix: /down }, upstream: downup }
  - { name: hello, match: { path: /hello }, respond: { status: 200, body: %q } }
`, okURL, boomURL, downURL, body)
}

// scrapeAdmin fetches /metrics from the admin listener and parses it with
// the Prometheus text parser.
func scrapeAdmin(t *testing.T, g *testGateway) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get("http://" + g.rt.AdminAddr() + "/metrics")
	if err != nil {
		t.Fatalf("scrape: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("scrape: got status %d; want 200", resp.StatusCode)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parse exposition: %v", err)
	}
	return fams
}

// series returns the metric of family name whose labels are exactly want.
func series(fams map[string]*dto.MetricFamily, name string, want map[string]string) *dto.Metric {
	for _, m := range fams[name].GetMetric() {
		if len(m.GetLabel()) != len(want) {
			continue
		}
		ok := true
		for _, lp := range m.GetLabel() {
			if v, has := want[lp.GetName()]; !has || v != lp.GetValue() {
				ok = false
			}
		}
		if ok {
			return m
		}
	}
	return nil
}

func value(m *dto.Metric) float64 {
	return m.GetCounter().GetValue() + m.GetGauge().GetValue() + float64(m.GetHistogram().GetSampleCount())
}

// settled scrapes until no request is in flight and no listener
// connection is open: a client can read an answer before the gateway
// recorded it, and the server notices closed connections asynchronously.
func settled(t *testing.T, g *testGateway, listener string) map[string]*dto.MetricFamily {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		fams := scrapeAdmin(t, g)
		inflight := series(fams, "portunus_requests_in_flight", map[string]string{})
		open := series(fams, "portunus_listener_connections_open", map[string]string{"listener": listener})
		if inflight != nil && value(inflight) == 0 && (open == nil || value(open) == 0) {
			return fams
		}
		if time.Now().After(deadline) {
			t.Fatalf("metrics never settled: in flight %v, open connections %v", inflight, open)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestMetricsAfterRealTraffic sends real requests through a started
// gateway, scrapes the admin /metrics over HTTP and checks the values.
func TestMetricsAfterRealTraffic(t *testing.T) {
	t.Parallel()
	ok := newUpstream(t, "ok")
	boom := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "overloaded", http.StatusServiceUnavailable)
	}))
	t.Cleanup(boom.Close)
	const helloBody = "hello, metrics"
	g := startGateway(t, metricsConfig(ok.URL, boom.URL, "http://"+freeAddr(t), helloBody))

	// One connection per request, so connection counts are exact.
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 30 * time.Second}
	var bytesOut = map[string]int{}
	send := func(method, path, body string, wantStatus int) {
		t.Helper()
		var rd io.Reader
		if body != "" {
			rd = strings.NewReader(body)
		}
		req, err := http.NewRequest(method, g.url+path, rd)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatalf("%s %s: read body: %v", method, path, err)
		}
		if resp.StatusCode != wantStatus {
			t.Fatalf("%s %s: got status %d; want %d", method, path, resp.StatusCode, wantStatus)
		}
		route := strings.SplitN(strings.TrimPrefix(path, "/"), "/", 2)[0]
		bytesOut[route] += len(b)
	}
	postBody := strings.Repeat("payload-", 1000) // 8000 bytes, more than one read
	for i := 0; i < 3; i++ {
		send("GET", "/ok/users", "", 200)
	}
	send("POST", "/ok/users", postBody, 200)
	send("GET", "/boom", "", 503)
	send("GET", "/down", "", 502)
	send("GET", "/nope", "", 404)
	send("DELETE", "/nope/2", "", 404)
	send("GET", "/hello", "", 200)
	const requests = 9

	snap := g.rt.Gateway().Snapshot()
	target := func(up string) string { return snap.upstreams[up].Targets()[0].String() }
	fams := settled(t, g, "127.0.0.1:0")

	for _, tc := range []struct {
		name   string
		metric string
		labels map[string]string
		want   float64
	}{
		{"ok GET", "portunus_requests_total", map[string]string{"route": "ok", "method": "GET", "code": "2xx", "upstream": "okup"}, 3},
		{"ok POST", "portunus_requests_total", map[string]string{"route": "ok", "method": "POST", "code": "2xx", "upstream": "okup"}, 1},
		{"upstream 503", "portunus_requests_total", map[string]string{"route": "boom", "method": "GET", "code": "5xx", "upstream": "boomup"}, 1},
		{"upstream down", "portunus_requests_total", map[string]string{"route": "down", "method": "GET", "code": "5xx", "upstream": "downup"}, 1},
		{"no route GET", "portunus_requests_total", map[string]string{"route": "", "method": "GET", "code": "4xx", "upstream": ""}, 1},
		{"no route DELETE", "portunus_requests_total", map[string]string{"route": "", "method": "DELETE", "code": "4xx", "upstream": ""}, 1},
		{"respond route", "portunus_requests_total", map[string]string{"route": "hello", "method": "GET", "code": "2xx", "upstream": ""}, 1},
		{"ok duration count", "portunus_request_duration_seconds", map[string]string{"route": "ok", "code": "2xx"}, 4},
		{"unrouted duration count", "portunus_request_duration_seconds", map[string]string{"route": "", "code": "4xx"}, 2},
		{"upstream ok calls", "portunus_upstream_requests_total", map[string]string{"upstream": "okup", "target": target("okup"), "code": "2xx"}, 4},
		{"upstream 5xx answer", "portunus_upstream_requests_total", map[string]string{"upstream": "boomup", "target": target("boomup"), "code": "5xx"}, 1},
		{"upstream failed call", "portunus_upstream_requests_total", map[string]string{"upstream": "downup", "target": target("downup"), "code": "error"}, 1},
		{"upstream ok latency count", "portunus_upstream_request_duration_seconds", map[string]string{"upstream": "okup", "target": target("okup")}, 4},
		{"upstream down latency count", "portunus_upstream_request_duration_seconds", map[string]string{"upstream": "downup", "target": target("downup")}, 1},
		{"request bytes = body sent", "portunus_request_size_bytes_total", map[string]string{"route": "ok"}, float64(len(postBody))},
		{"request bytes of GETs", "portunus_request_size_bytes_total", map[string]string{"route": "hello"}, 0},
		{"response bytes ok", "portunus_response_size_bytes_total", map[string]string{"route": "ok"}, float64(bytesOut["ok"])},
		{"response bytes respond", "portunus_response_size_bytes_total", map[string]string{"route": "hello"}, float64(len(helloBody))},
		{"response bytes unrouted", "portunus_response_size_bytes_total", map[string]string{"route": ""}, float64(bytesOut["nope"])},
		{"in flight back to 0", "portunus_requests_in_flight", map[string]string{}, 0},
		{"connections accepted", "portunus_listener_connections_total", map[string]string{"listener": "127.0.0.1:0"}, requests},
		{"connections open", "portunus_listener_connections_open", map[string]string{"listener": "127.0.0.1:0"}, 0},
		{"start is a successful load", "portunus_config_reloads_total", map[string]string{"result": "success"}, 1},
		{"no failed load", "portunus_config_reloads_total", map[string]string{"result": "failure"}, 0},
		{"config hash", "portunus_config_info", map[string]string{"hash": snap.Hash}, 1},
	} {
		m := series(fams, tc.metric, tc.labels)
		if m == nil {
			t.Errorf("%s: got no %s%v in the scrape; want one", tc.name, tc.metric, tc.labels)
			continue
		}
		if got := value(m); got != tc.want {
			t.Errorf("%s: %s%v got %v; want %v", tc.name, tc.metric, tc.labels, got, tc.want)
		}
	}
	if bytesOut["ok"] == 0 || bytesOut["nope"] == 0 {
		t.Errorf("test bug: got response sizes %v; want bodies on ok and nope", bytesOut)
	}
	if n := len(fams["portunus_upstream_requests_total"].GetMetric()); n != 3 {
		t.Errorf("upstream call series: got %d; want 3 (codes exported only once seen)", n)
	}
	if fams["portunus_build_info"] == nil || fams["go_goroutines"] == nil || fams["process_cpu_seconds_total"] == nil {
		t.Error("got no build_info, go_ or process_ families; want them registered")
	}

	// A reload with a changed config, then one with a broken config.
	g.rewrite(metricsConfig(ok.URL, boom.URL, "http://"+freeAddr(t), "changed"))
	if err := g.rt.Reload("test"); err != nil {
		t.Fatalf("reload: %v", err)
	}
	newHash := g.rt.Gateway().Snapshot().Hash
	succAt := float64(g.rt.LastReload().Time.UnixNano()) / 1e9
	if newHash == snap.Hash {
		t.Fatal("test bug: reloaded config has the same hash")
	}
	g.rewrite("routes: [ {")
	if err := g.rt.Reload("test"); err == nil {
		t.Fatal("reload of a broken config: got no error; want one")
	}
	fams = scrapeAdmin(t, g)
	for _, tc := range []struct {
		name   string
		metric string
		labels map[string]string
		want   float64
	}{
		{"successful loads", "portunus_config_reloads_total", map[string]string{"result": "success"}, 2},
		{"failed loads", "portunus_config_reloads_total", map[string]string{"result": "failure"}, 1},
		{"live hash", "portunus_config_info", map[string]string{"hash": newHash}, 1},
		// The failed reload must not move it.
		{"last success time", "portunus_config_last_reload_success_timestamp_seconds", map[string]string{}, succAt},
	} {
		m := series(fams, tc.metric, tc.labels)
		if m == nil {
			t.Errorf("%s: got no %s%v after reloads; want one", tc.name, tc.metric, tc.labels)
			continue
		}
		if got := value(m); got < tc.want-1e-6 || got > tc.want+1e-6 {
			t.Errorf("%s: got %v; want %v", tc.name, got, tc.want)
		}
	}
	if n := len(fams["portunus_config_info"].GetMetric()); n != 1 {
		t.Errorf("portunus_config_info: got %d series; want only the live hash", n)
	}
}
