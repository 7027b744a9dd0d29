package introspect

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/portunus-gw/portunus/internal/pipeline"
)

// BenchmarkAuthenticateWarm is the per-request cost of a cached token.
func BenchmarkAuthenticateWarm(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(`{"active":true,"sub":"alice","scope":"read write"}`))
	}))
	defer srv.Close()
	p, err := New(configFor(srv.URL), nil)
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close()
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.Header.Set("Authorization", "Bearer 2YotnFZFEjr1zCsicMWpAA.opaque-token-value")
	s := &pipeline.State{}
	if _, err := p.Authenticate(r, s); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := p.Authenticate(r, s); err != nil {
			b.Fatal(err)
		}
	}
}
