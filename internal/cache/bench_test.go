package cache

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/portunus-gw/portunus/internal/pipeline"
)

// benchWriter is a reusable ResponseWriter, so the benchmark measures the
// cache, not a recorder.
type benchWriter struct {
	h    http.Header
	code int
	n    int
}

func (w *benchWriter) Header() http.Header         { return w.h }
func (w *benchWriter) WriteHeader(c int)           { w.code = c }
func (w *benchWriter) Write(b []byte) (int, error) { w.n += len(b); return len(b), nil }

// BenchmarkHit is one cache hit through the policy: key, lookup, headers
// and a 1 KiB body.
func BenchmarkHit(b *testing.B) {
	p := New(Options{Route: "r", TTL: time.Hour, Backend: NewMemory(64<<20, nil)})
	body := strings.Repeat("x", 1024)
	h := p.Middleware()(func(w http.ResponseWriter, r *http.Request, s *pipeline.State) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "max-age=3600")
		_, _ = w.Write([]byte(body))
	})
	r := httptest.NewRequest("GET", "http://api.example.com/v1/items/42?x=1", nil)
	s := &pipeline.State{Path: "/v1/items/42"}
	h(httptest.NewRecorder(), r, s)
	w := &benchWriter{h: http.Header{}}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		clear(w.h)
		w.n = 0
		h(w, r, s)
	}
	if w.code != 200 || w.n != 1024 || !strings.HasPrefix(w.h.Get("Cache-Status"), "portunus; hit") {
		b.Fatalf("not a hit: %d %d %v", w.code, w.n, w.h)
	}
}

// BenchmarkMemoryPerObject reports the heap bytes one stored 1 KiB answer
// with typical headers costs in the memory backend.
func BenchmarkMemoryPerObject(b *testing.B) {
	const n = 20000
	body := make([]byte, 1024)
	for range b.N {
		m := NewMemory(1<<30, nil)
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		for i := 0; i < n; i++ {
			k := Key{Route: "items", Host: "api.example.com", Path: fmt.Sprintf("/v1/items/%d", i), Extra: "v="}
			e := &Entry{Status: 200, Body: append([]byte(nil), body...), Header: http.Header{
				"Content-Type":   {"application/json"},
				"Cache-Control":  {"max-age=3600"},
				"Etag":           {`"abcdef"`},
				"Date":           {"Wed, 25 Nov 2026 21:00:00 GMT"},
				"Content-Length": {"1024"},
			}}
			_ = m.Set(context.Background(), k.String(), k.URLKey(), e, time.Hour)
		}
		m.c.CleanUp()
		runtime.GC()
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/n, "heap-bytes/object")
		b.ReportMetric(float64(m.Stats().Bytes)/n, "weighed-bytes/object")
		runtime.KeepAlive(m)
		_ = m.Close()
	}
}
