package jwtauth

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/portunus-gw/portunus/internal/auth"
	"github.com/portunus-gw/portunus/internal/config"
	"github.com/portunus-gw/portunus/internal/pipeline"
)

// staticConfig is a provider with one static key per algorithm, the kid
// being the algorithm's name in lower case.
func staticConfig(t testing.TB) config.JWTProvider {
	t.Helper()
	k := keys(t)
	rsaPEM := pemFile(t, &k.rsa.PublicKey)
	c := config.JWTProvider{
		Name:                "main",
		Issuer:              "https://id.test/",
		Audiences:           []string{"orders-api", "billing-api"},
		JWKSRefetchCooldown: config.Duration(5 * time.Second),
		ConsumerClaim:       "sub",
		RolesClaim:          "roles",
		ClockSkew:           config.Duration(30 * time.Second),
	}
	for _, alg := range []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"} {
		c.Keys = append(c.Keys, config.JWTKey{KID: strings.ToLower(alg), Algorithm: alg, PublicKeyFile: rsaPEM})
	}
	c.Keys = append(c.Keys,
		config.JWTKey{KID: "es256", Algorithm: "ES256", PublicKeyFile: pemFile(t, &k.p256.PublicKey)},
		config.JWTKey{KID: "es384", Algorithm: "ES384", PublicKeyFile: pemFile(t, &k.p384.PublicKey)},
		config.JWTKey{KID: "es512", Algorithm: "ES512", PublicKeyFile: pemFile(t, &k.p521.PublicKey)},
		config.JWTKey{KID: "eddsa", Algorithm: "EdDSA", PublicKeyFile: pemFile(t, k.ed.Public())},
	)
	for _, alg := range []string{"HS256", "HS384", "HS512"} {
		c.Keys = append(c.Keys, config.JWTKey{KID: strings.ToLower(alg), Algorithm: alg, Secret: string(k.hmac)})
	}
	return c
}

func newTestProvider(t testing.TB, c config.JWTProvider, clk *clock) *Provider {
	t.Helper()
	p, err := newProvider(c, nil, clk.now)
	if err != nil {
		t.Fatalf("newProvider: %v", err)
	}
	t.Cleanup(func() { _ = p.Close() })
	return p
}

// privFor is the signing key of each algorithm of staticConfig.
func privFor(k *testKeys, alg string) any {
	switch alg[:2] {
	case "RS", "PS":
		return k.rsa
	case "HS":
		return k.hmac
	case "Ed":
		return k.ed
	}
	switch alg {
	case "ES256":
		return k.p256
	case "ES384":
		return k.p384
	}
	return k.p521
}

func TestEveryAlgorithmVerifies(t *testing.T) {
	t.Parallel()
	k := keys(t)
	clk := newClock()
	p := newTestProvider(t, staticConfig(t), clk)
	for _, alg := range algNames {
		t.Run(alg, func(t *testing.T) {
			t.Parallel()
			tok := sign(t, alg, strings.ToLower(alg), privFor(k, alg), claimsAt(clk.now()))
			id, err := p.Authenticate(bearer(tok), &pipeline.State{})
			if err != nil {
				t.Fatalf("Authenticate: got %v; want nil", err)
			}
			if id.Consumer != "alice" {
				t.Errorf("consumer: got %q; want alice", id.Consumer)
			}
			if !slices.Equal(id.Roles, []string{"reader", "writer"}) {
				t.Errorf("roles: got %v; want [reader writer]", id.Roles)
			}
		})
	}
}

func TestKidlessTokenUsesMatchingKey(t *testing.T) {
	t.Parallel()
	k := keys(t)
	clk := newClock()
	c := staticConfig(t)
	c.Keys = []config.JWTKey{{Algorithm: "ES256", PublicKeyFile: pemFile(t, &k.p256.PublicKey)}}
	p := newTestProvider(t, c, clk)
	if _, err := p.Authenticate(bearer(sign(t, "ES256", "", k.p256, claimsAt(clk.now()))), &pipeline.State{}); err != nil {
		t.Fatalf("kid-less token: got %v; want nil", err)
	}
	if _, err := p.Authenticate(bearer(sign(t, "ES256", "any-kid", k.p256, claimsAt(clk.now()))), &pipeline.State{}); err != nil {
		t.Fatalf("token with a kid against a kid-less key: got %v; want nil", err)
	}
}

func TestCredentialDetection(t *testing.T) {
	t.Parallel()
	k := keys(t)
	clk := newClock()
	p := newTestProvider(t, staticConfig(t), clk)
	valid := sign(t, "HS256", "hs256", k.hmac, claimsAt(clk.now()))
	tests := []struct {
		name   string
		header []string
		want   error // nil: authenticated
	}{
		{"no authorization", nil, auth.ErrNoCredentials},
		{"basic scheme", []string{"Basic YWxpY2U6c2VjcmV0"}, auth.ErrNoCredentials},
		{"bearer without token", []string{"Bearer "}, auth.ErrNoCredentials},
		{"opaque bearer token", []string{"Bearer 2YotnFZFEjr1zCsicMWpAA"}, auth.ErrNoCredentials},
		{"dotted opaque token", []string{"Bearer abc.def.ghi"}, auth.ErrNoCredentials},
		{"five-segment JWE", []string{"Bearer eyJhbGciOiJSU0EtT0FFUCJ9.a.b.c.d"}, auth.ErrNoCredentials},
		{"lower-case scheme", []string{"bearer " + valid}, nil},
		{"upper-case scheme", []string{"BEARER " + valid}, nil},
		{"extra spaces", []string{"Bearer   " + valid + "  "}, nil},
		{"jws with garbage payload", []string{"Bearer eyJhbGciOiJIUzI1NiJ9.@@@.x"}, auth.ErrNoCredentials},
		{"jws-shaped but bad json", []string{"Bearer eyJhbGciOiJIUzI1NiJ9.bm90anNvbg.c2ln"}, errMalformed},
		{"oversized", []string{"Bearer " + strings.Repeat("a", maxTokenBytes+1)}, errTooLarge},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := httptest.NewRequest(http.MethodGet, "/", nil)
			for _, h := range tc.header {
				r.Header.Add("Authorization", h)
			}
			_, err := p.Authenticate(r, &pipeline.State{})
			if !errors.Is(err, tc.want) && err != tc.want {
				t.Fatalf("got %v; want %v", err, tc.want)
			}
		})
	}
}

func TestClaimsMapping(t *testing.T) {
	t.Parallel()
	k := keys(t)
	clk := newClock()
	tests := []struct {
		name        string
		rolesClaim  string
		consumer    string
		extra       jwt.MapClaims
		wantErr     error
		wantName    string
		wantRoles   []string
		wantScopes  []string
		wantHeaders map[string]string // "" value: header absent
	}{
		{
			name: "array roles and scope string", extra: jwt.MapClaims{"scope": "orders:read orders:write", "email": "a@example.com"},
			wantName: "alice", wantRoles: []string{"reader", "writer"}, wantScopes: []string{"orders:read", "orders:write"},
			wantHeaders: map[string]string{"X-User-Email": "a@example.com"},
		},
		{
			name: "space separated roles and scp array", extra: jwt.MapClaims{"roles": "admin ops", "scp": []string{"a", "b"}},
			wantName: "alice", wantRoles: []string{"admin", "ops"}, wantScopes: []string{"a", "b"},
		},
		{
			name: "nested roles path", rolesClaim: "realm_access.roles",
			extra:    jwt.MapClaims{"realm_access": map[string]any{"roles": []string{"auditor"}}},
			wantName: "alice", wantRoles: []string{"auditor"},
		},
		{
			name: "custom consumer claim", consumer: "client_id", extra: jwt.MapClaims{"client_id": "svc-billing"},
			wantName: "svc-billing", wantRoles: []string{"reader", "writer"},
		},
		{
			name: "CRLF in a claim is not forwarded", extra: jwt.MapClaims{"email": "a@x\r\nX-Consumer-Name: root", "tenant": 42},
			wantName: "alice", wantRoles: []string{"reader", "writer"},
			wantHeaders: map[string]string{"X-User-Email": "", "X-Tenant": "42"},
		},
		{
			name: "oversized claim is not forwarded", extra: jwt.MapClaims{"email": strings.Repeat("e", maxHeaderValue+1)},
			wantName: "alice", wantRoles: []string{"reader", "writer"}, wantHeaders: map[string]string{"X-User-Email": ""},
		},
		{name: "missing consumer claim", extra: jwt.MapClaims{"sub": nil}, wantErr: errNoConsumer},
		{name: "non-string consumer claim", extra: jwt.MapClaims{"sub": 7}, wantErr: errNoConsumer},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := staticConfig(t)
			c.ClaimsToHeaders = map[string]string{"x-user-email": "email", "X-Tenant": "tenant"}
			if tc.rolesClaim != "" {
				c.RolesClaim = tc.rolesClaim
			}
			if tc.consumer != "" {
				c.ConsumerClaim = tc.consumer
			}
			p := newTestProvider(t, c, clk)
			claims := claimsAt(clk.now())
			for name, v := range tc.extra {
				if v == nil {
					delete(claims, name)
				} else {
					claims[name] = v
				}
			}
			id, err := p.Authenticate(bearer(sign(t, "ES256", "es256", k.p256, claims)), &pipeline.State{})
			if tc.wantErr != nil {
				if err != tc.wantErr {
					t.Fatalf("got %v; want %v", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("got %v; want nil", err)
			}
			if id.Consumer != tc.wantName {
				t.Errorf("consumer: got %q; want %q", id.Consumer, tc.wantName)
			}
			if !slices.Equal(id.Roles, tc.wantRoles) {
				t.Errorf("roles: got %v; want %v", id.Roles, tc.wantRoles)
			}
			if !slices.Equal(id.Scopes, tc.wantScopes) {
				t.Errorf("scopes: got %v; want %v", id.Scopes, tc.wantScopes)
			}
			for h, want := range tc.wantHeaders {
				if got := id.Header.Get(h); got != want {
					t.Errorf("header %s: got %q; want %q", h, got, want)
				}
			}
		})
	}
}

func TestMethodBasics(t *testing.T) {
	t.Parallel()
	p := newTestProvider(t, staticConfig(t), newClock())
	if got, want := p.Name(), "jwt:main"; got != want {
		t.Errorf("Name: got %q; want %q", got, want)
	}
	if got, want := p.Challenge(), `Bearer realm="portunus"`; got != want {
		t.Errorf("Challenge: got %q; want %q", got, want)
	}
	r := bearer("x.y.z")
	p.Hide(r)
	if got := r.Header.Get("Authorization"); got != "" {
		t.Errorf("Hide: Authorization is %q; want removed", got)
	}
	var _ auth.Method = p
}

func TestNewRefusesBadKeys(t *testing.T) {
	t.Parallel()
	k := keys(t)
	ecPEM := pemFile(t, &k.p256.PublicKey)
	tests := []struct {
		name string
		key  config.JWTKey
	}{
		{"RS256 declared on an EC key", config.JWTKey{Algorithm: "RS256", PublicKeyFile: ecPEM}},
		{"ES384 declared on a P-256 key", config.JWTKey{Algorithm: "ES384", PublicKeyFile: ecPEM}},
		{"missing file", config.JWTKey{Algorithm: "RS256", PublicKeyFile: "/nonexistent/key.pem"}},
		{"not PEM", config.JWTKey{Algorithm: "RS256", PublicKeyFile: writeFile(t, []byte("hello"))}},
		{"private key PEM", config.JWTKey{Algorithm: "RS256", PublicKeyFile: writeFile(t, []byte("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"))}},
		{"HS without secret", config.JWTKey{Algorithm: "HS256"}},
		{"alg none", config.JWTKey{Algorithm: "none", Secret: "x"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := New(config.JWTProvider{Name: "x", Keys: []config.JWTKey{tc.key}}, nil)
			if err == nil {
				t.Fatalf("New: got nil error; want one")
			}
		})
	}
}
