package auth

import (
	"encoding/base64"
	"net/http/httptest"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestParseBasic(t *testing.T) {
	t.Parallel()
	enc := base64.StdEncoding.EncodeToString
	cases := []struct {
		name       string
		in         string
		user, pass string
		ok, bad    bool
	}{
		{"plain", "Basic " + enc([]byte("u:p")), "u", "p", true, false},
		{"scheme any case", "bAsIc " + enc([]byte("u:p")), "u", "p", true, false},
		{"colon in password", "Basic " + enc([]byte("u:p:q")), "u", "p:q", true, false},
		{"empty password", "Basic " + enc([]byte("u:")), "u", "", true, false},
		{"bearer is not ours", "Bearer abc", "", "", false, false},
		{"glued scheme is not ours", "Basicabc", "", "", false, false},
		{"no colon", "Basic " + enc([]byte("up")), "", "", true, true},
		{"empty user", "Basic " + enc([]byte(":p")), "", "", true, true},
		{"not base64", "Basic !!!", "", "", true, true},
		{"no credentials", "Basic ", "", "", true, true},
		{"control byte", "Basic " + enc([]byte("u:p\x00")), "", "", true, true},
		{"oversized", "Basic " + strings.Repeat("A", maxBasicLen+4), "", "", true, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			u, p, ok, err := parseBasic(tc.in)
			if u != tc.user || p != tc.pass || ok != tc.ok || (err != nil) != tc.bad {
				t.Errorf("parseBasic(%q) = %q, %q, %v, %v; want %q, %q, %v, bad=%v", tc.in, u, p, ok, err, tc.user, tc.pass, tc.ok, tc.bad)
			}
		})
	}
}

func TestBasicMethod(t *testing.T) {
	t.Parallel()
	dir := testDir(t)
	cases := []struct {
		name   string
		auth   []string
		status int
	}{
		{"right password", []string{basicHeader("alice", "s3cret")}, 204},
		{"wrong password", []string{basicHeader("alice", "x")}, 401},
		{"unknown user", []string{basicHeader("mallory", "s3cret")}, 401},
		{"two Authorization headers", []string{basicHeader("alice", "s3cret"), "Bearer x"}, 401},
		{"other scheme: no credentials", []string{"Bearer x"}, 401},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := httptest.NewRequest("GET", "/", nil)
			r.Header["Authorization"] = tc.auth
			w, sn, s := run(New(Options{Methods: []Method{NewBasic(dir)}, HideCredentials: true}), r)
			if w.Code != tc.status {
				t.Fatalf("status = %d (%s); want %d", w.Code, s.AuthError, tc.status)
			}
			if tc.status == 204 {
				if sn.state.Consumer != "alice" || sn.header.Get("Authorization") != "" {
					t.Errorf("consumer %q, forwarded Authorization %q; want alice and none", sn.state.Consumer, sn.header.Get("Authorization"))
				}
				return
			}
			if got := w.Header().Get("WWW-Authenticate"); got != `Basic realm="portunus"` {
				t.Errorf("challenge = %q; want Basic realm", got)
			}
			if strings.Contains(s.AuthError, "s3cret") {
				t.Errorf("AuthError leaks the password: %q", s.AuthError)
			}
		})
	}
}

func FuzzParseBasic(f *testing.F) {
	for _, s := range []string{"Basic dTpw", "basic   dTpw  ", "Bearer x", "Basic", "Basic =", "Basic dTo=", "Basic OnA="} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		u, p, ok, err := parseBasic(v)
		if !ok && (err != nil || u != "" || p != "") {
			t.Errorf("parseBasic(%q): not Basic but returned %q %q %v", v, u, p, err)
		}
		if err == nil && ok {
			if u == "" || strings.Contains(u, ":") {
				t.Errorf("parseBasic(%q): user %q", v, u)
			}
			raw := u + ":" + p
			if got := base64.StdEncoding.EncodeToString([]byte(raw)); !strings.Contains(v, got) && utf8.ValidString(raw) {
				t.Errorf("parseBasic(%q) = %q:%q does not round-trip", v, u, p)
			}
		}
	})
}
