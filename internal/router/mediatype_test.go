package router

import (
	"net/http"
	"testing"
)

// Versioning by media type: the route naming the Accept media type wins
// over the same path without one; parameters, case, spaces and list
// position do not matter; a client asking for nothing specific gets the
// unversioned route.
func TestMediaTypeVersioning(t *testing.T) {
	t.Parallel()
	routes := []Route[string]{
		rt("v1", Route[string]{Path: "/users"}),
		rt("v2", Route[string]{Path: "/users", MediaType: "application/vnd.shop.v2+json"}),
		rt("v3-only", Route[string]{Path: "/orders", MediaType: "application/vnd.shop.v3+json"}),
	}
	cases := []struct {
		desc   string
		path   string
		accept []string
		want   Result
		value  string
	}{
		{"exact", "/users", []string{"application/vnd.shop.v2+json"}, Matched, "v2"},
		{"with parameters and case", "/users", []string{"text/html, Application/VND.shop.v2+JSON ; q=0.9"}, Matched, "v2"},
		{"second header line", "/users", []string{"text/html", "application/vnd.shop.v2+json"}, Matched, "v2"},
		{"other version", "/users", []string{"application/vnd.shop.v9+json"}, Matched, "v1"},
		{"no Accept", "/users", nil, Matched, "v1"},
		{"prefix of the type is not the type", "/users", []string{"application/vnd.shop.v2+jsonx"}, Matched, "v1"},
		{"only a versioned route", "/orders", []string{"application/json"}, NotFound, ""},
		{"only a versioned route, asked", "/orders", []string{"application/vnd.shop.v3+json"}, Matched, "v3-only"},
	}
	r := mustNew(t, routes)
	for _, tc := range cases {
		req := Request{Method: http.MethodGet, Path: tc.path, Header: http.Header{}}
		if tc.accept != nil {
			req.Header["Accept"] = tc.accept
		}
		var m Match[string]
		got := r.Match(&req, &m)
		if got != tc.want || got == Matched && m.Value != tc.value {
			t.Errorf("%s: got %v %q; want %v %q", tc.desc, got, m.Value, tc.want, tc.value)
		}
	}
}

func BenchmarkMatchMediaType(b *testing.B) {
	r := mustNew(b, []Route[string]{
		rt("v1", Route[string]{Path: "/users"}),
		rt("v2", Route[string]{Path: "/users", MediaType: "application/vnd.shop.v2+json"}),
	})
	req := Request{Method: http.MethodGet, Path: "/users", Header: http.Header{"Accept": {"text/html, application/vnd.shop.v2+json;q=0.9"}}}
	var m Match[string]
	b.ReportAllocs()
	for b.Loop() {
		if r.Match(&req, &m) != Matched || m.Value != "v2" {
			b.Fatal("no match")
		}
	}
}
