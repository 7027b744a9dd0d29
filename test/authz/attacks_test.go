package authz

import (
	"encoding/base64"
	"fmt"
	"strings"
	"testing"
)

// attackConfig: /public is open; /admin needs an admin (api_key or
// basic); /data needs any consumer and keeps credentials
// (hide_credentials: false); /q reads keys from the query parameter k.
func attackConfig(t *testing.T, upstreamURL string) string {
	return fmt.Sprintf(`
listeners: [{ address: "127.0.0.1:0" }]
observability: { access_log: { path: "off" } }
upstreams: [{ name: up, targets: [{ url: %q }] }]
api_key: { header: X-API-Key }
consumers:
  - name: alice
    roles: [admin, ops]
    api_keys: [%q]
    basic_auth: { username: alice, password_hash: %q }
  - name: bob
    roles: [reader]
    api_keys: ["bob-key"]
routes:
  - name: public
    match: { path_prefix: /public }
    upstream: up
  - name: admin
    match: { path_prefix: /admin }
    upstream: up
    auth: [api_key, basic]
    allow: { roles: [admin] }
  - name: data
    match: { path_prefix: /data }
    upstream: up
    auth: [api_key]
    hide_credentials: false
`, upstreamURL, sha256Key("alice-key"), bcryptHash(t, "s3cret"))
}

func TestAttacks(t *testing.T) {
	t.Parallel()
	up := newEchoUpstream(t)
	addr := onlyAddr(t, startGateway(t, attackConfig(t, up.URL)))
	basic := func(u, p string) string {
		return "Authorization: Basic " + base64.StdEncoding.EncodeToString([]byte(u+":"+p))
	}
	const (
		aliceKey = "X-API-Key: alice-key"
		bobKey   = "X-API-Key: bob-key"
	)
	cases := []struct {
		name    string
		target  string
		headers []string
		status  int
		// for requests that reach the upstream: the path it sees, the
		// consumer headers, and headers it must not see
		path     string
		consumer string
		roles    string
		absent   []string
	}{
		// baseline
		{"admin key", "/admin/x", []string{aliceKey}, 200, "/admin/x", "alice", "admin,ops", []string{"X-Api-Key"}},
		{"admin basic", "/admin", []string{basic("alice", "s3cret")}, 200, "/admin", "alice", "admin,ops", []string{"Authorization"}},
		{"no credentials", "/admin/x", nil, 401, "", "", "", nil},
		{"authenticated but not allowed", "/admin/x", []string{bobKey}, 403, "", "", "", nil},
		{"wrong key", "/admin/x", []string{"X-API-Key: alice-kez"}, 401, "", "", "", nil},
		{"wrong password", "/admin/x", []string{basic("alice", "guess")}, 401, "", "", "", nil},
		{"bad key is not rescued by a good password", "/admin/x", []string{"X-API-Key: nope", basic("alice", "s3cret")}, 401, "", "", "", nil},
		{"public route is anonymous", "/public/x", nil, 200, "/public/x", "", "", []string{"X-Consumer-Name", "X-Consumer-Roles"}},
		{"credentials kept when hide_credentials false", "/data", []string{bobKey}, 200, "/data", "bob", "reader", nil},
		// key where it is not read
		{"key in query when not allowed", "/admin/x?api_key=alice-key", nil, 401, "", "", "", nil},
		{"key in query, other name", "/admin/x?apikey=alice-key&x-api-key=alice-key", nil, 401, "", "", "", nil},
		// spoofed identity
		{"spoofed X-Consumer-Name, anonymous", "/admin/x", []string{"X-Consumer-Name: alice", "X-Consumer-Roles: admin"}, 401, "", "", "", nil},
		{"spoofed underscore form, anonymous", "/admin/x", []string{"X_Consumer_Name: alice", "X_Consumer_Roles: admin"}, 401, "", "", "", nil},
		{"spoofed roles with a real key", "/admin/x", []string{bobKey, "X-Consumer-Roles: admin", "X-Consumer-Name: alice"}, 403, "", "", "", nil},
		{"spoofed identity on a public route never reaches upstream", "/public/x", []string{"X-Consumer-Name: alice", "X_Consumer_Name: alice", "X-Consumer-Roles: admin", "X-Authenticated-User: alice"}, 200, "/public/x", "", "", []string{"X-Consumer-Name", "X_consumer_name", "X-Consumer-Roles", "X-Authenticated-User"}},
		{"spoofed identity replaced by the real one", "/data/x", []string{bobKey, "X-Consumer-Name: alice", "X-Consumer-Roles: admin"}, 200, "/data/x", "bob", "reader", nil},
		// path tricks against the protected prefix
		{"dot-dot from public", "/public/../admin", nil, 401, "", "", "", nil},
		{"dot-dot from public with key of a non-admin", "/public/../admin/x", []string{bobKey}, 403, "", "", "", nil},
		{"double slash", "//admin", nil, 401, "", "", "", nil},
		{"encoded dots", "/%2e%2e/admin", nil, 401, "", "", "", nil},
		{"encoded dots upper-case", "/public/%2E%2E/admin", nil, 401, "", "", "", nil},
		{"mixed case is another path", "/ADMIN", nil, 404, "", "", "", nil},
		// A segment holding %2F is not the segment "admin": no route.
		{"encoded slash", "/admin%2F", nil, 404, "", "", "", nil},
		{"encoded slash from public", "/public%2F..%2Fadmin", nil, 404, "", "", "", nil},
		{"encoded slash inside the protected route", "/admin/x%2F..%2F..", []string{aliceKey}, 400, "", "", "", nil},
		// Refused outright, so no upstream (Tomcat-style) can read it as /admin.
		{"dot-dot-semicolon", "/public/..;/admin", nil, 400, "", "", "", nil},
		{"dot segment", "/./admin", nil, 401, "", "", "", nil},
		{"admin-like prefix is not admin", "/admin-internal", nil, 404, "", "", "", nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			a := rawRequest(t, addr, "GET", tc.target, tc.headers)
			if a.status != tc.status {
				t.Fatalf("GET %s: got %d; want %d (body %q)", tc.target, a.status, tc.status, a.body)
			}
			if a.reached != (tc.status == 200) {
				t.Fatalf("upstream reached = %v; want %v", a.reached, tc.status == 200)
			}
			switch a.status {
			case 401:
				if got := strings.Join(a.header.Values("WWW-Authenticate"), " | "); got != `APIKey realm="portunus", header="X-API-Key" | Basic realm="portunus"` {
					t.Errorf("WWW-Authenticate = %q; want the api_key and basic challenges", got)
				}
				fallthrough
			case 403:
				if ct := a.header.Get("Content-Type"); ct != "application/problem+json" {
					t.Errorf("Content-Type = %q; want application/problem+json", ct)
				}
			}
			if !a.reached {
				return
			}
			h := a.upstream.Header
			if a.upstream.Path != tc.path {
				t.Errorf("upstream path = %q; want %q", a.upstream.Path, tc.path)
			}
			if got := h.Get("X-Consumer-Name"); got != tc.consumer {
				t.Errorf("upstream X-Consumer-Name = %q; want %q", got, tc.consumer)
			}
			if got := strings.Join(h.Values("X-Consumer-Roles"), ","); got != tc.roles {
				t.Errorf("upstream X-Consumer-Roles = %q; want %q", got, tc.roles)
			}
			if n := len(h.Values("X-Consumer-Name")); n > 1 {
				t.Errorf("upstream got %d X-Consumer-Name headers; want at most 1", n)
			}
			for _, k := range tc.absent {
				if v, ok := h[k]; ok {
					t.Errorf("upstream received %s: %q; want it removed", k, v)
				}
			}
			for k := range h {
				if strings.Contains(strings.ToLower(k), "consumer") && !strings.HasPrefix(k, "X-Consumer-") {
					t.Errorf("upstream received lookalike header %q", k)
				}
			}
		})
	}
	t.Run("kept credentials reach the upstream", func(t *testing.T) {
		t.Parallel()
		a := rawRequest(t, addr, "GET", "/data", []string{bobKey})
		if got := a.upstream.Header.Get("X-Api-Key"); got != "bob-key" {
			t.Errorf("upstream X-API-Key = %q with hide_credentials false; want bob-key", got)
		}
	})
}

func TestQueryKeyHiddenFromUpstream(t *testing.T) {
	t.Parallel()
	up := newEchoUpstream(t)
	cfg := fmt.Sprintf(`
listeners: [{ address: "127.0.0.1:0" }]
observability: { access_log: { path: "off" } }
upstreams: [{ name: up, targets: [{ url: %q }] }]
api_key: { query: key }
consumers: [{ name: bob, roles: [reader], api_keys: ["bob-key"] }]
routes:
  - name: q
    match: { path_prefix: /q }
    upstream: up
    auth: [api_key]
`, up.URL)
	addr := onlyAddr(t, startGateway(t, cfg))
	cases := []struct {
		name, target string
		status       int
		query        string
	}{
		{"key removed, rest kept in order", "/q?b=2&key=bob-key&a=1", 200, "b=2&a=1"},
		{"key only", "/q?key=bob-key", 200, ""},
		{"wrong key", "/q?key=nope&b=2", 401, ""},
		{"two keys are ambiguous", "/q?key=bob-key&key=bob-key", 401, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			a := rawRequest(t, addr, "GET", tc.target, nil)
			if a.status != tc.status {
				t.Fatalf("got %d; want %d (%q)", a.status, tc.status, a.body)
			}
			if a.reached && (a.upstream.Query != tc.query || a.upstream.Header.Get("X-Consumer-Name") != "bob") {
				t.Errorf("upstream query %q consumer %q; want %q bob", a.upstream.Query, a.upstream.Header.Get("X-Consumer-Name"), tc.query)
			}
		})
	}
}
