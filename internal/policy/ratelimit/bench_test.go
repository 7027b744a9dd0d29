package ratelimit

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"testing"
	"time"

	"github.com/portunus-gw/portunus/internal/config"
	"github.com/portunus-gw/portunus/internal/pipeline"
	"github.com/portunus-gw/portunus/internal/store"
)

// nopWriter is a ResponseWriter that keeps headers and drops the rest, so
// the benchmark measures the limiter, not a recorder.
type nopWriter struct{ h http.Header }

func (w *nopWriter) Header() http.Header         { return w.h }
func (w *nopWriter) Write(p []byte) (int, error) { return len(p), nil }
func (w *nopWriter) WriteHeader(int)             {}

// BenchmarkMiddleware is the decision cost with the memory store: each
// goroutine is its own client (1024 clients in all, round-robin), under a
// limit they never reach; run with -cpu 1,2.
func BenchmarkMiddleware(b *testing.B) {
	for _, bc := range []struct {
		name   string
		limits []config.RateLimit
	}{
		{"one-limit", []config.RateLimit{{Limit: 1 << 30, Window: config.Duration(time.Second), By: "ip"}}},
		{"two-limits", []config.RateLimit{
			{Limit: 1 << 30, Window: config.Duration(time.Second), By: "ip"},
			{Limit: 1 << 30, Window: config.Duration(time.Hour), By: "consumer"},
		}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			mem := store.NewMemory(store.MemoryOptions{})
			b.Cleanup(func() { mem.Close() })
			mw, err := New(Options{Route: "bench", Limits: bc.limits, Store: mem})
			if err != nil {
				b.Fatal(err)
			}
			h := mw(func(http.ResponseWriter, *http.Request, *pipeline.State) {})
			ips := make([]netip.Addr, 1024)
			for i := range ips {
				ips[i] = netip.MustParseAddr("10.0." + strconv.Itoa(i/256) + "." + strconv.Itoa(i%256))
			}
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				r := httptest.NewRequest("GET", "/", nil)
				w := &nopWriter{h: http.Header{}}
				s := &pipeline.State{Consumer: "c"}
				i := 0
				for pb.Next() {
					s.ClientIP = ips[i&1023]
					i++
					h(w, r, s)
				}
			})
		})
	}
}
