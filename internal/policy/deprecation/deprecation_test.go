package deprecation

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/portunus-gw/portunus/internal/config"
	"github.com/portunus-gw/portunus/internal/pipeline"
	"github.com/portunus-gw/portunus/internal/telemetry"
)

func TestHeadersAndCounts(t *testing.T) {
	t.Parallel()
	cases := []struct {
		desc        string
		c           config.Deprecated
		dep, sunset string
		links       []string
	}{
		{"all", config.Deprecated{Since: "2026-01-01T00:00:00Z", Sunset: "2027-06-30T12:00:00+02:00", Link: "https://d.example/m"},
			"@1767225600", "Wed, 30 Jun 2027 10:00:00 GMT",
			[]string{`<https://d.example/m>; rel="deprecation"; type="text/html"`, `<https://d.example/m>; rel="sunset"; type="text/html"`}},
		{"nothing but the mark", config.Deprecated{}, "@0", "", nil},
		{"link without sunset", config.Deprecated{Link: "https://d.example/m"}, "@0", "",
			[]string{`<https://d.example/m>; rel="deprecation"; type="text/html"`}},
	}
	for _, tc := range cases {
		h, err := Compile(tc.c)
		if err != nil {
			t.Fatalf("%s: %v", tc.desc, err)
		}
		rec := (*telemetry.Metrics)(nil).Deprecated("r")
		mw := both(h, rec)
		handler := mw(func(w http.ResponseWriter, r *http.Request, s *pipeline.State) {
			w.Header().Add("Link", "</other>; rel=next") // the action's own Link survives
			w.WriteHeader(200)
		})
		for _, who := range []string{"alice", "alice", ""} {
			w := httptest.NewRecorder()
			handler(w, httptest.NewRequest("GET", "/", nil), &pipeline.State{Consumer: who})
			res := w.Result()
			if got := res.Header.Get("Deprecation"); got != tc.dep {
				t.Errorf("%s: Deprecation %q; want %q", tc.desc, got, tc.dep)
			}
			if got := res.Header.Get("Sunset"); got != tc.sunset {
				t.Errorf("%s: Sunset %q; want %q", tc.desc, got, tc.sunset)
			}
			want := append(append([]string(nil), tc.links...), "</other>; rel=next")
			if got := res.Header.Values("Link"); fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("%s: Link %q; want %q", tc.desc, got, want)
			}
		}
		if got := rec.Counts(); got["alice"] != 2 || got["anonymous"] != 1 || len(got) != 2 {
			t.Errorf("%s: counts %v; want alice 2, anonymous 1", tc.desc, got)
		}
	}
}

func TestBadTimesAreErrors(t *testing.T) {
	t.Parallel()
	for _, c := range []config.Deprecated{{Since: "yesterday"}, {Sunset: "2027-06-30"}} {
		if _, err := Compile(c); err == nil {
			t.Errorf("Compile(%+v): no error", c)
		}
	}
}

// Consumers beyond the bound share one series, so the metric's cardinality
// stays bounded whatever clients do.
func TestConsumerLabelsAreBounded(t *testing.T) {
	t.Parallel()
	m := telemetry.NewMetrics()
	rec := m.Deprecated("r")
	for i := range telemetry.MaxDeprecatedConsumers + 50 {
		rec.Observe(fmt.Sprintf("c%d", i))
	}
	counts := rec.Counts()
	if len(counts) != telemetry.MaxDeprecatedConsumers+1 || counts["other"] != 50 {
		t.Errorf("%d series, other=%d; want %d series and other=50", len(counts), counts["other"], telemetry.MaxDeprecatedConsumers+1)
	}
	fams, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if f.GetName() == "portunus_deprecated_requests_total" {
			if n := len(f.GetMetric()); n != telemetry.MaxDeprecatedConsumers+1 {
				t.Errorf("exported %d series; want %d", n, telemetry.MaxDeprecatedConsumers+1)
			}
			return
		}
	}
	t.Error("portunus_deprecated_requests_total not exported")
}

func BenchmarkDeprecated(b *testing.B) {
	h, _ := Compile(config.Deprecated{Since: "2026-01-01T00:00:00Z", Sunset: "2027-06-30T00:00:00Z", Link: "https://d.example/m"})
	handler := both(h, telemetry.NewMetrics().Deprecated("r"))(func(w http.ResponseWriter, r *http.Request, s *pipeline.State) {})
	r := httptest.NewRequest("GET", "/", nil)
	s := &pipeline.State{Consumer: "alice"}
	w := &headerOnly{h: http.Header{}}
	b.ReportAllocs()
	for b.Loop() {
		clear(w.h)
		handler(w, r, s)
	}
}

type headerOnly struct{ h http.Header }

func (w *headerOnly) Header() http.Header         { return w.h }
func (w *headerOnly) Write(p []byte) (int, error) { return len(p), nil }
func (w *headerOnly) WriteHeader(int)             {}

// both is the route's two middlewares in a row, as the gateway chains
// them when no policy sits between them.
func both(h Headers, rec *telemetry.DeprecatedRecorder) pipeline.Middleware {
	set, count := HeadersMiddleware(h), Count(rec)
	return func(next pipeline.Handler) pipeline.Handler { return set(count(next)) }
}
