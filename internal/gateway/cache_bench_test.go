package gateway

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
)

// BenchmarkGatewayCacheHit is a whole request answered from the response
// cache, in process: the gateway's front plus the cache hit. The upstream
// must be called once, whatever b.N.
func BenchmarkGatewayCacheHit(b *testing.B) {
	var calls atomic.Int32
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(strings.Repeat("x", 100)))
	}))
	defer up.Close()
	g := benchGateway(b, `
listeners: [{ address: "127.0.0.1:0" }]
upstreams: [{ name: up, targets: [{ url: "`+up.URL+`" }] }]
routes:
  - { name: cached, match: { path_prefix: / }, upstream: up, cache: { ttl: 1h } }
`, true)
	r := httptest.NewRequest("GET", "http://api.example.com/users/42", nil)
	r.RemoteAddr = "127.0.0.1:5555"
	w := &nopWriter{h: http.Header{}}
	g.ServeHTTP(w, r)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		clear(w.h)
		g.ServeHTTP(w, r)
	}
	b.StopTimer()
	if n := calls.Load(); n != 1 {
		b.Fatalf("upstream calls = %d; want 1", n)
	}
	if !strings.HasPrefix(w.h.Get("Cache-Status"), "portunus; hit") {
		b.Fatalf("Cache-Status = %q; want a hit", w.h.Get("Cache-Status"))
	}
}
