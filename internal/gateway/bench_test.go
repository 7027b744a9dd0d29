package gateway

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/portunus-gw/portunus/internal/config"
	"github.com/portunus-gw/portunus/internal/telemetry"
)

// nopWriter is the cheapest ResponseWriter, so the benchmark measures the
// gateway, not the recorder.
type nopWriter struct{ h http.Header }

func (w *nopWriter) Header() http.Header         { return w.h }
func (w *nopWriter) Write(p []byte) (int, error) { return len(p), nil }
func (w *nopWriter) WriteHeader(int)             {}

func benchGateway(b *testing.B, yaml string) *Gateway {
	b.Helper()
	cfg, err := config.Parse("bench.yaml", []byte(yaml), func(string) (string, bool) { return "", false })
	if err != nil {
		b.Fatal(err)
	}
	snap, err := CompileForExplain(cfg)
	if err != nil {
		b.Fatal(err)
	}
	g := NewGateway(telemetry.NewMetrics())
	g.Swap(snap)
	return g
}

// BenchmarkGatewayRespond measures the gateway's fixed front (request id,
// normalization, sanitation, routing, metrics) with a respond action.
func BenchmarkGatewayRespond(b *testing.B) {
	g := benchGateway(b, `
listeners: [{ address: "127.0.0.1:0" }]
routes:
  - { match: { path: "/users/{id}", methods: [GET] }, respond: { body: "ok" } }
  - { match: { path_prefix: /other }, respond: { body: "no" } }
`)
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
func BenchmarkGatewayProxy(b *testing.B) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"ok":true,"padding":"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"}`)
	}))
	defer up.Close()
	g := benchGateway(b, `
listeners: [{ address: "127.0.0.1:0" }]
upstreams: [{ name: up, targets: [{ url: "`+up.URL+`" }] }]
routes: [{ match: { path_prefix: / }, upstream: up }]
`)
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
