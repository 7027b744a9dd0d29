package gateway

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/portunus-gw/portunus/internal/config"
	"github.com/portunus-gw/portunus/internal/pipeline"
	"github.com/portunus-gw/portunus/internal/proxy"
	"github.com/portunus-gw/portunus/internal/telemetry"
)

func compileTest(t testing.TB, yaml string) *Snapshot {
	t.Helper()
	cfg, err := config.Parse("t.yaml", []byte(yaml), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	snap, err := CompileForExplain(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return snap
}

const statsTestConfig = `
listeners: [{ address: "127.0.0.1:0" }]
upstreams: [{ name: up, targets: [{ url: "http://127.0.0.1:1" }] }]
routes:
  - { name: a, match: { path: /a }, respond: { body: "a" } }
  - { name: p, match: { path_prefix: /p }, upstream: up }
`

// TestRecordStats covers the error rule and a request that finishes after
// a reload replaced its snapshot.
func TestRecordStats(t *testing.T) {
	t.Parallel()
	g := NewGateway(telemetry.NewMetrics())
	old := compileTest(t, statsTestConfig)
	g.Swap(old)
	start := time.Now()
	routeA, routeP := old.routes[0], old.routes[1]
	for _, tc := range []struct {
		rt     *Route
		status int
		code   string
		up     string
	}{
		{routeA, 200, "", ""},
		{routeA, 503, "", ""},                       // 5xx: error
		{routeA, 413, "body-too-large", ""},         // gateway error
		{routeP, 499, proxy.CodeClientClosed, "up"}, // not an error
		{routeP, 502, "upstream-unavailable", "up"}, // error
		{routeP, 200, "", "up"},
	} {
		s := &pipeline.State{Start: start, ErrorCode: tc.code, Upstream: tc.up, UpstreamDuration: time.Millisecond}
		g.recordStats(old, tc.rt, s, tc.status, 2*time.Millisecond)
	}
	// A reload: the old snapshot's requests still count, by name.
	g.Swap(compileTest(t, statsTestConfig))
	g.recordStats(old, routeA, &pipeline.State{Start: start}, 200, time.Millisecond)

	res := g.Stats().Query(time.Minute, time.Second)
	got := map[string][2]uint64{}
	for _, s := range append(res.Routes, res.Upstreams...) {
		got[s.Name] = [2]uint64{s.Totals.Requests, s.Totals.Errors}
	}
	want := map[string][2]uint64{"a": {4, 2}, "p": {3, 1}, "up": {3, 1}}
	for name, w := range want {
		if got[name] != w {
			t.Errorf("%s = %v requests/errors; want %v", name, got[name], w)
		}
	}
}

// BenchmarkGatewayStats is BenchmarkGatewayRespond with the stats ring on
// (as shipped) and off, to price the ring on the request path.
func BenchmarkGatewayStats(b *testing.B) {
	for _, on := range []bool{true, false} {
		name := "on"
		if !on {
			name = "off"
		}
		b.Run(name, func(b *testing.B) {
			g := NewGateway(telemetry.NewMetrics())
			if !on {
				g.stats = nil
			}
			g.Swap(compileTest(b, statsTestConfig))
			r := httptest.NewRequest("GET", "http://api.example.com/a", nil)
			r.RemoteAddr = "127.0.0.1:5555"
			w := &nopWriter{h: http.Header{}}
			b.ReportAllocs()
			for b.Loop() {
				clear(w.h)
				g.ServeHTTP(w, r)
			}
		})
	}
}
