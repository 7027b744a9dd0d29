package compress

import (
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/portunus-gw/portunus/internal/pipeline"
)

// discardWriter is a ResponseWriter that keeps nothing, so the benchmark
// measures the middleware, not a recorder.
type discardWriter struct {
	h    http.Header
	code int
	n    int
}

func (d *discardWriter) Header() http.Header         { return d.h }
func (d *discardWriter) WriteHeader(code int)        { d.code = code }
func (d *discardWriter) Write(b []byte) (int, error) { d.n += len(b); return len(b), nil }
func (d *discardWriter) Flush()                      {}

func benchmarkMiddleware(b *testing.B, ae, ct string) {
	body := []byte(strings.Repeat(`{"name":"portunus","kind":"gateway","n":12345},`, 22)[:1024])
	mw, err := New(defaults())
	if err != nil {
		b.Fatal(err)
	}
	ctVal, clVal := []string{ct}, []string{strconv.Itoa(len(body))}
	h := mw(func(w http.ResponseWriter, r *http.Request, _ *pipeline.State) {
		hd := w.Header()
		hd["Content-Type"] = ctVal
		hd["Content-Length"] = clVal
		w.WriteHeader(200)
		_, _ = w.Write(body)
	})
	req := httptest.NewRequest("GET", "/", nil)
	if ae != "" {
		req.Header.Set("Accept-Encoding", ae)
	}
	dw := &discardWriter{h: http.Header{}}
	var s pipeline.State
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	b.ResetTimer()
	for b.Loop() {
		clear(dw.h)
		dw.n = 0
		h(dw, req, &s)
	}
	b.ReportMetric(float64(dw.n), "out-bytes")
}

func BenchmarkCompressGzip1KiB(b *testing.B) {
	benchmarkMiddleware(b, "gzip", "application/json")
}

func BenchmarkCompressBrotli1KiB(b *testing.B) {
	benchmarkMiddleware(b, "br", "application/json")
}

func BenchmarkCompressZstd1KiB(b *testing.B) {
	benchmarkMiddleware(b, "zstd", "application/json")
}

// BenchmarkCompressPassthrough is an answer the policy leaves alone (not
// a compressible type): the cost every such request pays.
func BenchmarkCompressPassthrough(b *testing.B) {
	benchmarkMiddleware(b, "gzip, br, zstd", "image/png")
}

// BenchmarkCompressIdentity is a compressible answer for a client that
// accepts no coding: only Vary is added.
func BenchmarkCompressIdentity(b *testing.B) {
	benchmarkMiddleware(b, "", "application/json")
}

func TestPassthroughNoAlloc(t *testing.T) {
	mw, err := New(defaults())
	if err != nil {
		t.Fatal(err)
	}
	ctVal, body := []string{"image/png"}, []byte("png")
	h := mw(func(w http.ResponseWriter, r *http.Request, _ *pipeline.State) {
		w.Header()["Content-Type"] = ctVal
		_, _ = w.Write(body)
	})
	req := httptest.NewRequest("GET", "/", nil)
	req.Header.Set("Accept-Encoding", "gzip, br")
	dw := &discardWriter{h: http.Header{}}
	var s pipeline.State
	h(dw, req, &s) // warm the pool
	if n := testing.AllocsPerRun(200, func() { h(dw, req, &s) }); n != 0 {
		t.Errorf("passthrough allocates %v times per request; want 0", n)
	}
}
