package gateway

import (
	"io"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestDeprecationOnRefusals: every answer of a deprecated route carries
// its Deprecation, Sunset and Link fields, refusals by authentication and
// the IP filter included; calls are counted per consumer after
// authentication, so a refused call is not counted.
func TestDeprecationOnRefusals(t *testing.T) {
	t.Parallel()
	up := newUpstream(t, "up")
	g := startGateway(t, `
listeners: [{ address: "127.0.0.1:0" }]
observability: { access_log: { path: "off" } }
consumers: [{ name: alice, api_keys: ["alice-test-key-0001"] }]
upstreams: [{ name: up, targets: [{ url: "`+up.URL+`" }] }]
routes:
  - name: old
    match: { path_prefix: /old }
    upstream: up
    auth: [api_key]
    deprecated: { since: "2026-01-01T00:00:00Z", sunset: "2027-06-30T00:00:00Z", link: "https://docs.example/migrate" }
  - name: walled
    match: { path_prefix: /walled }
    upstream: up
    ip: { allow: ["10.0.0.0/8"] }
    deprecated: {}
`)
	cases := []struct {
		path, key string
		status    int
	}{
		{"/old", "", 401},
		{"/old", "wrong-key", 401},
		{"/old", "alice-test-key-0001", 200},
		{"/walled", "", 403},
	}
	for _, tc := range cases {
		h := map[string]string{}
		if tc.key != "" {
			h["X-API-Key"] = tc.key
		}
		resp := g.do("GET", tc.path, h, "")
		resp.Body.Close()
		if resp.StatusCode != tc.status {
			t.Fatalf("%s key %q: status %d; want %d", tc.path, tc.key, resp.StatusCode, tc.status)
		}
		if tc.path == "/walled" {
			if got := resp.Header.Get("Deprecation"); got != "@0" {
				t.Errorf("%s %d: Deprecation %q; want @0", tc.path, tc.status, got)
			}
			continue
		}
		if got := resp.Header.Get("Deprecation"); got != "@1767225600" {
			t.Errorf("%s %d: Deprecation %q; want @1767225600", tc.path, tc.status, got)
		}
		if got := resp.Header.Get("Sunset"); got != "Wed, 30 Jun 2027 00:00:00 GMT" {
			t.Errorf("%s %d: Sunset %q", tc.path, tc.status, got)
		}
		if got := resp.Header.Values("Link"); len(got) != 2 || !strings.Contains(got[0], `rel="deprecation"`) {
			t.Errorf("%s %d: Link %q", tc.path, tc.status, got)
		}
	}
	w := httptest.NewRecorder()
	g.rt.Metrics().Handler().ServeHTTP(w, httptest.NewRequest("GET", "/metrics", nil))
	b, _ := io.ReadAll(w.Body)
	text := grepLines(string(b), "portunus_deprecated_requests_total")
	if !strings.Contains(text, `portunus_deprecated_requests_total{consumer="alice",route="old"} 1`) {
		t.Errorf("alice's call not counted once:\n%s", text)
	}
	if strings.Contains(text, `route="old"} 2`) || strings.Contains(text, `consumer="anonymous",route="old"`) {
		t.Errorf("refused calls were counted:\n%s", text)
	}
}
