package auth

import (
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/portunus-gw/portunus/internal/config"
)

func TestAPIKey(t *testing.T) {
	t.Parallel()
	dir := testDir(t)
	withQuery := NewAPIKey(config.APIKeySource{Header: "X-API-Key", Query: "api_key"}, dir)
	headerOnly := NewAPIKey(config.APIKeySource{}, dir)
	custom := NewAPIKey(config.APIKeySource{Header: "x-token"}, dir)
	cases := []struct {
		name     string
		m        Method
		url      string
		header   map[string][]string
		status   int
		consumer string
		fwdQuery string // query the upstream sees (hide on)
	}{
		{"hashed key in header", headerOnly, "/", map[string][]string{"X-Api-Key": {"alice-key"}}, 204, "alice", ""},
		{"literal key in header", headerOnly, "/", map[string][]string{"X-Api-Key": {"bob-key"}}, 204, "bob", ""},
		{"custom header", custom, "/", map[string][]string{"X-Token": {"bob-key"}}, 204, "bob", ""},
		{"custom header ignores the default one", custom, "/", map[string][]string{"X-Api-Key": {"bob-key"}}, 401, "", ""},
		{"unknown key", headerOnly, "/", map[string][]string{"X-Api-Key": {"nope"}}, 401, "", ""},
		{"two key headers", headerOnly, "/", map[string][]string{"X-Api-Key": {"bob-key", "alice-key"}}, 401, "", ""},
		{"oversized key", headerOnly, "/", map[string][]string{"X-Api-Key": {strings.Repeat("a", maxKeyLen+1)}}, 401, "", ""},
		{"key in query when not configured is not read", headerOnly, "/?api_key=bob-key", nil, 401, "", ""},
		{"key in configured query", withQuery, "/?a=1&api_key=bob-key&b=2", nil, 204, "bob", "a=1&b=2"},
		{"escaped key in query", withQuery, "/?api%5Fkey=bob%2Dkey", nil, 204, "bob", ""},
		{"two keys in query", withQuery, "/?api_key=bob-key&api_key=alice-key", nil, 401, "", ""},
		{"header wins over query", withQuery, "/?api_key=nope&x=1", map[string][]string{"X-Api-Key": {"alice-key"}}, 204, "alice", "x=1"},
		{"bad escape", withQuery, "/?api_key=%zz", nil, 401, "", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := httptest.NewRequest("GET", tc.url, nil)
			for k, v := range tc.header {
				r.Header[k] = v
			}
			w, sn, s := run(New(Options{Methods: []Method{tc.m}, Consumers: dir, HideCredentials: true}), r)
			if w.Code != tc.status {
				t.Fatalf("status = %d (%s); want %d", w.Code, s.AuthError, tc.status)
			}
			if tc.status != 204 {
				if ch := w.Header().Get("WWW-Authenticate"); !strings.HasPrefix(ch, `APIKey realm="portunus", header="`) {
					t.Errorf("challenge = %q; want APIKey realm=...", ch)
				}
				for _, v := range tc.header {
					if strings.Contains(s.AuthError, v[0]) {
						t.Errorf("AuthError %q contains the credential", s.AuthError)
					}
				}
				return
			}
			if sn.state.Consumer != tc.consumer || sn.state.AuthMethod != "api_key" {
				t.Errorf("consumer, method = %q, %q; want %q, api_key", sn.state.Consumer, sn.state.AuthMethod, tc.consumer)
			}
			if got := sn.header.Get("X-Api-Key") + sn.header.Get("X-Token"); got != "" {
				t.Errorf("key header forwarded: %q", got)
			}
			if sn.query != tc.fwdQuery {
				t.Errorf("forwarded query = %q; want %q", sn.query, tc.fwdQuery)
			}
		})
	}
}

func TestAPIKeyHideOff(t *testing.T) {
	t.Parallel()
	dir := testDir(t)
	m := NewAPIKey(config.APIKeySource{Query: "k"}, dir)
	r := httptest.NewRequest("GET", "/?k=bob-key", nil)
	_, sn, _ := run(New(Options{Methods: []Method{m}, Consumers: dir}), r)
	if sn.query != "k=bob-key" {
		t.Errorf("query with hide_credentials false = %q; want it kept", sn.query)
	}
	if !slices.Equal(sn.state.Roles, []string{"reader"}) {
		t.Errorf("roles = %q; want [reader]", sn.state.Roles)
	}
}

func TestChallenges(t *testing.T) {
	t.Parallel()
	dir := testDir(t)
	cases := []struct {
		m    Method
		name string
		want string
	}{
		{NewAPIKey(config.APIKeySource{}, dir), "api_key", `APIKey realm="portunus", header="X-API-Key"`},
		{NewAPIKey(config.APIKeySource{Header: "X-Token"}, dir), "api_key", `APIKey realm="portunus", header="X-Token"`},
		{NewBasic(dir), "basic", `Basic realm="portunus"`},
		{NewMTLS(dir), "mtls", ""},
	}
	for _, tc := range cases {
		if tc.m.Name() != tc.name || tc.m.Challenge() != tc.want {
			t.Errorf("got %q %q; want %q %q", tc.m.Name(), tc.m.Challenge(), tc.name, tc.want)
		}
	}
}

func FuzzQueryKey(f *testing.F) {
	for _, s := range []string{"api_key=x", "a=1&api_key=x&b", "api%5Fkey=%41", "api_key=&api_key=y", "&&=", "api_key=%zz", "api_key"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		k, err := queryKey(raw, "api_key")
		if err == nil && k == "" {
			t.Errorf("queryKey(%q) = empty key without error", raw)
		}
		out := dropParam(raw, "api_key")
		if _, err := queryKey(out, "api_key"); err != ErrNoCredentials {
			t.Errorf("after dropParam(%q) = %q the key is still readable (%v)", raw, out, err)
		}
	})
}

// Hiding a key read from the header leaves a query without the parameter
// byte for byte, and removes the header however the client spelled it.
func TestAPIKeyHideWithoutQueryParam(t *testing.T) {
	t.Parallel()
	m := NewAPIKey(config.APIKeySource{Query: "api_key"}, testDir(t))
	for _, raw := range []string{"a=1&&b=2", "&x", "api_keyx=1&b", "a=%zz"} {
		r := httptest.NewRequest("GET", "/?"+raw, nil)
		r.Header.Set("x-api-key", "bob-key")
		m.Hide(r)
		if r.URL.RawQuery != raw {
			t.Errorf("query %q became %q", raw, r.URL.RawQuery)
		}
		if len(r.Header) != 0 {
			t.Errorf("header left: %v", r.Header)
		}
	}
	r := httptest.NewRequest("GET", "/?a=1&api_key=bob-key&b=2", nil)
	m.Hide(r)
	if r.URL.RawQuery != "a=1&b=2" {
		t.Errorf("query with the key became %q; want a=1&b=2", r.URL.RawQuery)
	}
}
