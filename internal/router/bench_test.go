package router

import (
	"fmt"
	"net/http"
	"testing"
)

// matchScenario is one request against one router, shared by the
// benchmarks and the allocation test.
type matchScenario struct {
	name      string
	routes    func() []Route[string]
	req       Request
	want      Result
	maxAllocs float64
	pooled    bool // relies on regexp's sync.Pool: not measurable under -race
}

func manyRoutes(n int, route func(i int) Route[string]) func() []Route[string] {
	return func() []Route[string] {
		rs := make([]Route[string], n)
		for i := range rs {
			rs[i] = route(i)
			rs[i].Value = fmt.Sprint(i)
		}
		return rs
	}
}

var matchScenarios = []matchScenario{
	{
		name: "exact-1-of-100",
		routes: manyRoutes(100, func(i int) Route[string] {
			return Route[string]{Path: fmt.Sprintf("/svc%d/items", i), Methods: []string{"GET"}}
		}),
		req:  Request{Host: "api.example.com", Path: "/svc57/items", Method: "GET"},
		want: Matched,
	},
	{
		name: "param-1-of-1000",
		routes: manyRoutes(1000, func(i int) Route[string] {
			return Route[string]{Path: fmt.Sprintf("/svc%d/users/{id}/orders/{oid}", i)}
		}),
		req:  Request{Host: "api.example.com", Path: "/svc500/users/42/orders/7", Method: "GET"},
		want: Matched,
	},
	{
		name:   "prefix-1-of-1000",
		routes: manyRoutes(1000, func(i int) Route[string] { return Route[string]{PathPrefix: fmt.Sprintf("/p%d/v1", i)} }),
		req:    Request{Host: "api.example.com", Path: "/p500/v1/a/b/c", Method: "GET"},
		want:   Matched,
	},
	{
		name: "wildcard-host-1-of-100",
		routes: manyRoutes(100, func(i int) Route[string] {
			return Route[string]{Hosts: []string{fmt.Sprintf("*.t%d.example.com", i)}, PathPrefix: "/"}
		}),
		req:  Request{Host: "X.t50.example.com:443", Path: "/a", Method: "GET"},
		want: Matched,
	},
	{
		name: "header-constrained",
		routes: manyRoutes(10, func(i int) Route[string] {
			return Route[string]{PathPrefix: "/api", Headers: map[string]string{"X-Version": fmt.Sprint(i)}}
		}),
		req:  Request{Path: "/api/x", Method: "GET", Header: http.Header{"X-Version": {"9"}}},
		want: Matched,
	},
	{
		name: "miss-404",
		routes: manyRoutes(1000, func(i int) Route[string] {
			return Route[string]{Path: fmt.Sprintf("/svc%d/users/{id}", i)}
		}),
		req:  Request{Host: "api.example.com", Path: "/nothing/here/at/all", Method: "GET"},
		want: NotFound,
	},
	{
		name: "405",
		routes: manyRoutes(100, func(i int) Route[string] {
			return Route[string]{Path: fmt.Sprintf("/svc%d/items", i), Methods: []string{"POST"}}
		}),
		req:  Request{Path: "/svc57/items", Method: "GET"},
		want: MethodNotAllowed,
	},
	{
		name:   "regex",
		routes: manyRoutes(10, func(i int) Route[string] { return Route[string]{PathRegex: fmt.Sprintf(`^/r%d/[0-9]+$`, i)} }),
		req:    Request{Path: "/r9/123", Method: "GET"},
		want:   Matched,
		pooled: true,
	},
	{
		name:      "regex-named-groups",
		routes:    manyRoutes(10, func(i int) Route[string] { return Route[string]{PathRegex: fmt.Sprintf(`^/r%d/(?P<n>[0-9]+)$`, i)} }),
		req:       Request{Path: "/r9/123", Method: "GET"},
		want:      Matched,
		maxAllocs: 1, // regexp.FindStringSubmatchIndex returns a new slice
		pooled:    true,
	},
}

// TestMatchAllocs pins the zero-allocation promise. Not parallel:
// testing.AllocsPerRun refuses to run in a parallel test.
func TestMatchAllocs(t *testing.T) {
	for _, sc := range matchScenarios {
		t.Run(sc.name, func(t *testing.T) {
			if sc.pooled && raceEnabled {
				t.Skip("sync.Pool drops items under -race")
			}
			r := mustNew(t, sc.routes())
			var m Match[string]
			if got := r.Match(&sc.req, &m); got != sc.want {
				t.Fatalf("Match = %v; want %v", got, sc.want)
			}
			if n := testing.AllocsPerRun(200, func() { r.Match(&sc.req, &m) }); n > sc.maxAllocs {
				t.Errorf("Match allocs = %v; want at most %v", n, sc.maxAllocs)
			}
		})
	}
}

func BenchmarkMatch(b *testing.B) {
	for _, sc := range matchScenarios {
		b.Run(sc.name, func(b *testing.B) {
			r := mustNew(b, sc.routes())
			var m Match[string]
			b.ReportAllocs()
			for b.Loop() {
				if r.Match(&sc.req, &m) != sc.want {
					b.Fatal("unexpected result")
				}
			}
		})
	}
}

func BenchmarkNormalize(b *testing.B) {
	for _, p := range []struct{ name, path string }{
		{"already-normal", "/v1/users/42/orders/7"},
		{"needs-work", "/v1//users/./42/%6Frders/../orders/7"},
	} {
		b.Run(p.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, _, err := Normalize(p.path); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
