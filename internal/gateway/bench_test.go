package gateway

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/portunus-gw/portunus/internal/carry"
	"github.com/portunus-gw/portunus/internal/config"
	"github.com/portunus-gw/portunus/internal/store"
	"github.com/portunus-gw/portunus/internal/telemetry"
)

// nopWriter is the cheapest ResponseWriter, so the benchmark measures the
// gateway, not the recorder.
type nopWriter struct{ h http.Header }

func (w *nopWriter) Header() http.Header         { return w.h }
func (w *nopWriter) Write(p []byte) (int, error) { return len(p), nil }
func (w *nopWriter) WriteHeader(int)             {}

// benchGateway compiles yaml into a gateway. With metrics false it has a
// nil *telemetry.Metrics, so every recorder is a no-op: the difference
// between the two is the cost of metrics per request.
func benchGateway(b *testing.B, yaml string, metrics bool) *Gateway {
	b.Helper()
	cfg, err := config.Parse("bench.yaml", []byte(yaml), func(string) (string, bool) { return "", false })
	if err != nil {
		b.Fatal(err)
	}
	var m *telemetry.Metrics
	if metrics {
		m = telemetry.NewMetrics()
	}
	build := carry.NewRegistry().Begin()
	defer build.Abort()
	st := store.NewMemory(store.MemoryOptions{})
	b.Cleanup(func() { st.Close() })
	snap, err := compile(cfg, compileDeps{metrics: m, build: build, store: st})
	if err != nil {
		b.Fatal(err)
	}
	g := NewGateway(m)
	g.Swap(snap)
	return g
}

// BenchmarkGatewayRespond measures the gateway's fixed front (request id,
// normalization, sanitation, routing, metrics) with a respond action.
func BenchmarkGatewayRespond(b *testing.B)          { benchRespond(b, true) }
func BenchmarkGatewayRespondNoMetrics(b *testing.B) { benchRespond(b, false) }

func benchRespond(b *testing.B, metrics bool) {
	g := benchGateway(b, `
listeners: [{ address: "127.0.0.1:0" }]
routes:
  - { match: { path: "/users/{id}", methods: [GET] }, respond: { body: "ok" } }
  - { match: { path_prefix: /other }, respond: { body: "no" } }
`, metrics)
	r := httptest.NewRequest("GET", "http://api.example.com/users/42", nil)
	r.RemoteAddr = "127.0.0.1:5555"
	r.Header.Set("User-Agent", "bench")
	w := &nopWriter{h: http.Header{}}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		clear(w.h)
		g.ServeHTTP(w, r)
	}
}

// BenchmarkGatewayProxy measures a whole proxied request to a loopback
// upstream, in process (no client socket on the gateway side).
func BenchmarkGatewayProxy(b *testing.B)          { benchProxy(b, true) }
func BenchmarkGatewayProxyNoMetrics(b *testing.B) { benchProxy(b, false) }

func benchProxy(b *testing.B, metrics bool) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"ok":true,"padding":"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"}`)
	}))
	defer up.Close()
	g := benchGateway(b, `
listeners: [{ address: "127.0.0.1:0" }]
upstreams: [{ name: up, targets: [{ url: "`+up.URL+`" }] }]
routes: [{ match: { path_prefix: / }, upstream: up }]
`, metrics)
	w := &nopWriter{h: http.Header{}}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		r := httptest.NewRequest("GET", "http://api.example.com/users/42", nil)
		r.RemoteAddr = "127.0.0.1:5555"
		clear(w.h)
		g.ServeHTTP(w, r)
	}
}
