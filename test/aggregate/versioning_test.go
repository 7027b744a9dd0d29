package aggregate

import (
	"context"
	"encoding/json"
	"net/http"
	"reflect"
	"strings"
	"testing"
)

func TestVersioningExample(t *testing.T) {
	t.Parallel()
	v1, saw1 := recorder(t, jsonAnswer(`{"version":1}`))
	v2, saw2 := recorder(t, jsonAnswer(`{"version":2}`))
	rt, base := startExampleWith(t, "versioning.yaml", map[string]string{
		"http://127.0.0.1:9401": v1.URL,
		"http://127.0.0.1:9402": v2.URL,
	}, `admin: { address: "127.0.0.1:0" }`)
	ctx := context.Background()
	cases := []struct {
		desc       string
		path       string
		hdr        []string
		version    int
		upPath     string
		deprecated bool
	}{
		{"path v1", "/v1/users/7", nil, 1, "/users/7", true},
		{"path v2", "/v2/users/7", nil, 2, "/users/7", false},
		{"header v2", "/users/7", []string{"Api-Version: 2"}, 2, "/users/7", false},
		{"media type v2", "/users/7", []string{"Accept: text/html, application/vnd.shop.v2+json;q=0.9"}, 2, "/users/7", false},
		{"other media type is v1", "/users/7", []string{"Accept: application/json"}, 1, "/users/7", true},
		{"nothing asked is v1", "/users/7", nil, 1, "/users/7", true},
	}
	for _, tc := range cases {
		r := do(t, ctx, "GET", base+tc.path, tc.hdr...)
		if r.status != 200 || !strings.Contains(string(r.body), `"version":`+string(rune('0'+tc.version))) {
			t.Errorf("%s: %d %s; want version %d", tc.desc, r.status, r.body, tc.version)
			continue
		}
		saw := saw1
		if tc.version == 2 {
			saw = saw2
		}
		if s := next(t, saw, "upstream"); s.Path != tc.upPath {
			t.Errorf("%s: upstream saw %s; want %s", tc.desc, s.Path, tc.upPath)
		}
		checkDeprecation(t, tc.desc, r.header, tc.deprecated)
	}

	// Who still calls the deprecated routes: two anonymous calls to
	// users-v1 and one to users-v1-path, in the admin API and metrics.
	admin := "http://" + rt.AdminAddr()
	var dep struct {
		Routes []struct {
			Route     string           `json:"route"`
			Sunset    string           `json:"sunset"`
			Consumers map[string]int64 `json:"consumers"`
			Total     int64            `json:"total"`
		} `json:"routes"`
	}
	r := do(t, ctx, "GET", admin+"/api/v1/deprecations")
	if err := json.Unmarshal(r.body, &dep); err != nil || r.status != 200 {
		t.Fatalf("deprecations: %d %s (%v)", r.status, r.body, err)
	}
	got := map[string]int64{}
	for _, d := range dep.Routes {
		got[d.Route] = d.Consumers["anonymous"]
		if d.Total != d.Consumers["anonymous"] || d.Sunset != "2027-06-30T00:00:00Z" {
			t.Errorf("%s: %+v; want total = anonymous calls and the sunset date", d.Route, d)
		}
	}
	if want := map[string]int64{"users-v1": 2, "users-v1-path": 1}; !reflect.DeepEqual(got, want) {
		t.Errorf("deprecated calls by route %v; want %v", got, want)
	}
	m := do(t, ctx, "GET", admin+"/metrics")
	if line := `portunus_deprecated_requests_total{consumer="anonymous",route="users-v1"} 2`; !strings.Contains(string(m.body), line) {
		t.Errorf("metrics lack %s", line)
	}
}

func checkDeprecation(t *testing.T, desc string, h http.Header, want bool) {
	t.Helper()
	if !want {
		if h.Get("Deprecation") != "" || h.Get("Sunset") != "" {
			t.Errorf("%s: deprecation headers on a current version: %v", desc, h)
		}
		return
	}
	// 2026-01-01T00:00:00Z and 2027-06-30T00:00:00Z from the example.
	if got := h.Get("Deprecation"); got != "@1767225600" {
		t.Errorf("%s: Deprecation %q; want @1767225600", desc, got)
	}
	if got := h.Get("Sunset"); got != "Wed, 30 Jun 2027 00:00:00 GMT" {
		t.Errorf("%s: Sunset %q; want Wed, 30 Jun 2027 00:00:00 GMT", desc, got)
	}
	links := strings.Join(h.Values("Link"), ", ")
	for _, l := range []string{`<https://docs.example.com/migrate-v2>; rel="deprecation"`, `<https://docs.example.com/migrate-v2>; rel="sunset"`} {
		if !strings.Contains(links, l) {
			t.Errorf("%s: Link %q lacks %s", desc, links, l)
		}
	}
}
