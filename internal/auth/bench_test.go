package auth

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/portunus-gw/portunus/internal/config"
	"github.com/portunus-gw/portunus/internal/pipeline"
)

// benchServe runs r through the middleware b.N times; the handler after
// it does nothing, so what is measured is authentication alone.
func benchServe(b *testing.B, m Method, r *http.Request, hide bool) {
	h := New(Options{Methods: []Method{m}, Consumers: testDir(b), HideCredentials: hide})(func(w http.ResponseWriter, r *http.Request, s *pipeline.State) {
		if s.Consumer == "" {
			b.Fatal("not authenticated")
		}
	})
	w := httptest.NewRecorder()
	var s pipeline.State
	b.ReportAllocs()
	for b.Loop() {
		s.Reset()
		h(w, r, &s)
	}
}

func BenchmarkAPIKeyHeader(b *testing.B) {
	r := httptest.NewRequest("GET", "/", nil)
	r.Header.Set("X-API-Key", "alice-key")
	benchServe(b, NewAPIKey(config.APIKeySource{}, testDir(b)), r, false)
}

// BenchmarkAPIKeyHeaderOneDirectory is the gateway's shape: the method
// and the middleware share one directory, so a config consumer's roles
// need no merging.
func BenchmarkAPIKeyHeaderOneDirectory(b *testing.B) {
	r := httptest.NewRequest("GET", "/", nil)
	r.Header.Set("X-API-Key", "alice-key")
	dir := testDir(b)
	h := New(Options{Methods: []Method{NewAPIKey(config.APIKeySource{}, dir)}, Consumers: dir})(func(w http.ResponseWriter, r *http.Request, s *pipeline.State) {
		if s.Consumer == "" {
			b.Fatal("not authenticated")
		}
	})
	w := httptest.NewRecorder()
	var s pipeline.State
	b.ReportAllocs()
	for b.Loop() {
		s.Reset()
		h(w, r, &s)
	}
}

func BenchmarkAPIKeyUnknown(b *testing.B) {
	r := httptest.NewRequest("GET", "/", nil)
	r.Header.Set("X-API-Key", "not-a-key")
	h := New(Options{Methods: []Method{NewAPIKey(config.APIKeySource{}, testDir(b))}})(func(http.ResponseWriter, *http.Request, *pipeline.State) {})
	var s pipeline.State
	b.ReportAllocs()
	for b.Loop() {
		s.Reset()
		h(httptest.NewRecorder(), r, &s)
	}
}

// BenchmarkBasicMinCost is dominated by bcrypt at cost 4; a production
// hash at cost 10 takes 64 times as long, by design.
func BenchmarkBasicMinCost(b *testing.B) {
	r := httptest.NewRequest("GET", "/", nil)
	r.Header.Set("Authorization", basicHeader("alice", "s3cret"))
	benchServe(b, NewBasic(testDir(b)), r, false)
}
