package concurrency

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"
	"time"

	"github.com/portunus-gw/portunus/internal/config"
	"github.com/portunus-gw/portunus/internal/pipeline"
)

// nopWriter keeps the benchmark's writer allocation-free.
type nopWriter struct{ h http.Header }

func (w nopWriter) Header() http.Header       { return w.h }
func (nopWriter) Write(p []byte) (int, error) { return len(p), nil }
func (nopWriter) WriteHeader(int)             {}

// BenchmarkFastPath measures admission and release when a slot is free
// (the cap is never reached), under parallel load; run with -cpu 1,2.
func BenchmarkFastPath(b *testing.B) {
	cases := []struct {
		name string
		c    config.Concurrency
	}{
		{"static", config.Concurrency{Max: 1 << 20}},
		{"per_consumer_share", config.Concurrency{Max: 1 << 20, PerConsumerShare: 0.5}},
		{"adaptive", config.Concurrency{Max: 1 << 20, Adaptive: true}},
	}
	for _, tc := range cases {
		b.Run(tc.name, func(b *testing.B) {
			l, err := New(tc.c, "bench")
			if err != nil {
				b.Fatal(err)
			}
			defer l.Close()
			if tc.c.Adaptive {
				// Lift the probe so every request is admitted.
				l.mu.Lock()
				l.ctl.probing = false
				l.ctl.nextProbe = time.Now().Add(time.Hour)
				l.limit = tc.c.Max
				l.mu.Unlock()
			}
			h := l.Middleware()(func(http.ResponseWriter, *http.Request, *pipeline.State) {})
			r := httptest.NewRequest(http.MethodGet, "/", nil)
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				w := nopWriter{h: http.Header{}}
				s := &pipeline.State{Consumer: "c", ClientIP: netip.MustParseAddr("192.0.2.1")}
				for pb.Next() {
					h(w, r, s)
				}
			})
		})
	}
}
