package gateway

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/portunus-gw/portunus/internal/carry"
	"github.com/portunus-gw/portunus/internal/config"
	"github.com/portunus-gw/portunus/internal/telemetry"
	"github.com/portunus-gw/portunus/internal/tracing"
	"github.com/portunus-gw/portunus/internal/tracing/tracingtest"
)

// tracingModes are the tracing settings the request-path benchmarks run
// with: off (no provider), on with ratio 0 (every request sampled out)
// and on with ratio 1 (every request recorded and exported to an
// in-process OTLP/HTTP receiver).
var tracingModes = []struct {
	name  string
	ratio float64 // < 0: tracing off
}{
	{"off", -1},
	{"ratio0", 0},
	{"ratio1", 1},
}

// benchTracedGateway is benchGateway with a tracing provider.
func benchTracedGateway(b *testing.B, yaml string, ratio float64) *Gateway {
	b.Helper()
	cfg, err := config.Parse("bench.yaml", []byte(yaml), func(string) (string, bool) { return "", false })
	if err != nil {
		b.Fatal(err)
	}
	var p *tracing.Provider
	if ratio >= 0 {
		rcv := tracingtest.NewHTTP(b)
		p, err = tracing.New(config.Tracing{OTLPEndpoint: rcv.Endpoint, Protocol: "http", SampleRatio: &ratio})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = p.Close() })
	}
	m := telemetry.NewMetrics()
	build := carry.NewRegistry().Begin()
	snap, err := compile(cfg, compileDeps{metrics: m, build: build, tracer: p})
	build.Commit()
	if err != nil {
		b.Fatal(err)
	}
	g := NewGateway(m)
	g.Swap(snap)
	return g
}

// BenchmarkGatewayRespondTracing is BenchmarkGatewayRespond per tracing
// mode; "ratio0-unsampled-parent" carries a traceparent with sampled=0
// (forwarded untouched: the cheapest path with tracing on).
func BenchmarkGatewayRespondTracing(b *testing.B) {
	const yaml = `
listeners: [{ address: "127.0.0.1:0" }]
routes:
  - { name: users, match: { path: "/users/{id}", methods: [GET] }, respond: { body: "ok" } }
`
	modes := append(tracingModes[:len(tracingModes):len(tracingModes)], struct {
		name  string
		ratio float64
	}{"ratio0-unsampled-parent", 0})
	for _, mode := range modes {
		b.Run(mode.name, func(b *testing.B) {
			g := benchTracedGateway(b, yaml, mode.ratio)
			r := httptest.NewRequest("GET", "http://api.example.com/users/42", nil)
			r.RemoteAddr = "127.0.0.1:5555"
			r.Header.Set("User-Agent", "bench")
			parent := []string{"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00"}
			w := &nopWriter{h: http.Header{}}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				clear(w.h)
				// The gateway may add a traceparent to the (reused)
				// request: give every iteration the same start.
				if mode.name == "ratio0-unsampled-parent" {
					r.Header["Traceparent"] = parent
				} else {
					delete(r.Header, "Traceparent")
				}
				g.ServeHTTP(w, r)
			}
		})
	}
}

// BenchmarkGatewayProxyTracing is BenchmarkGatewayProxy per tracing mode.
func BenchmarkGatewayProxyTracing(b *testing.B) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"ok":true,"padding":"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"}`)
	}))
	defer up.Close()
	yaml := `
listeners: [{ address: "127.0.0.1:0" }]
upstreams: [{ name: up, targets: [{ url: "` + up.URL + `" }] }]
routes: [{ name: all, match: { path_prefix: / }, upstream: up }]
`
	for _, mode := range tracingModes {
		b.Run(mode.name, func(b *testing.B) {
			g := benchTracedGateway(b, yaml, mode.ratio)
			w := &nopWriter{h: http.Header{}}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				r := httptest.NewRequest("GET", "http://api.example.com/users/42", nil)
				r.RemoteAddr = "127.0.0.1:5555"
				clear(w.h)
				g.ServeHTTP(w, r)
			}
		})
	}
}
