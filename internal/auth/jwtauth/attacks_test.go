package jwtauth

import (
	"encoding/base64"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/portunus-gw/portunus/internal/config"
	"github.com/portunus-gw/portunus/internal/pipeline"
)

// TestAttacks is the table of known JWT attacks; each must be refused
// with the error that names it.
func TestAttacks(t *testing.T) {
	t.Parallel()
	k := keys(t)
	clk := newClock()
	now := clk.now()
	rsaPubPEM := pemBytes(t, &k.rsa.PublicKey)

	// The provider trusts an RS256 key (kid rs) and an ES256 JWKS key
	// whose JWK declares ES256; its allow-list is RS256 and ES256 only.
	srv := newJWKSServer(t,
		jwkOf(t, "ec", "ES256", &k.p256.PublicKey),
		jwkOf(t, "rsa-declared-es", "ES256", &k.rsa2.PublicKey),
	)
	c := config.JWTProvider{
		Name: "main", Issuer: "https://id.test/", Audiences: []string{"orders-api"},
		JWKSURL: srv.URL, Algorithms: []string{"RS256", "ES256"},
		JWKSRefetchCooldown: config.Duration(time.Minute),
		Keys:                []config.JWTKey{{KID: "rs", Algorithm: "RS256", PublicKeyFile: writeFile(t, rsaPubPEM)}},
		ConsumerClaim:       "sub", RolesClaim: "roles", ClockSkew: config.Duration(30 * time.Second),
	}
	p := newTestProvider(t, c, clk)

	with := func(mod func(jwt.MapClaims)) jwt.MapClaims {
		cl := claimsAt(now)
		mod(cl)
		return cl
	}
	good := sign(t, "RS256", "rs", k.rsa, claimsAt(now))
	parts := strings.Split(good, ".")
	enc := base64.RawURLEncoding.EncodeToString

	tests := []struct {
		name  string
		token string
		want  error
	}{
		{"control: valid RS256", good, nil},
		{"control: valid ES256 from JWKS", sign(t, "ES256", "ec", k.p256, claimsAt(now)), nil},
		{"alg none", enc([]byte(`{"alg":"none","typ":"JWT"}`)) + "." + parts[1] + ".", errAlgNotAllowed},
		{"alg none with kid", enc([]byte(`{"alg":"none","kid":"rs"}`)) + "." + parts[1] + ".", errAlgNotAllowed},
		{"alg NONE upper case", enc([]byte(`{"alg":"NONE"}`)) + "." + parts[1] + ".", errAlgNotAllowed},
		{"HS256 signed with the RSA public key PEM", sign(t, "HS256", "rs", rsaPubPEM, claimsAt(now)), errAlgNotAllowed},
		{"alg not in allow-list (RS512 with a real RSA key)", sign(t, "RS512", "rs", k.rsa, claimsAt(now)), errAlgNotAllowed},
		{"RS256 token against a JWK declaring ES256", sign(t, "RS256", "rsa-declared-es", k.rsa2, claimsAt(now)), errUnknownKey},
		{"ES256 token naming the RS256 key", sign(t, "ES256", "rs", k.p256, claimsAt(now)), errUnknownKey},
		{"kid path traversal", sign(t, "RS256", "../../etc/passwd", k.rsa, claimsAt(now)), errUnknownKey},
		{"kid SQL injection", sign(t, "RS256", "' OR 1=1 --", k.rsa, claimsAt(now)), errUnknownKey},
		{"kid not a string", resign(t, k, map[string]any{"alg": "RS256", "kid": 42}, claimsAt(now)), errBadKID},
		{"kid oversized", sign(t, "RS256", strings.Repeat("k", maxKIDBytes+1), k.rsa, claimsAt(now)), errBadKID},
		{"crit header", resign(t, k, map[string]any{"alg": "RS256", "kid": "rs", "crit": []string{"exp"}}, claimsAt(now)), errCrit},
		{"expired beyond skew", sign(t, "RS256", "rs", k.rsa, with(func(c jwt.MapClaims) { c["exp"] = now.Add(-time.Minute).Unix() })), errExpired},
		{"expired within skew", sign(t, "RS256", "rs", k.rsa, with(func(c jwt.MapClaims) { c["exp"] = now.Add(-10 * time.Second).Unix() })), nil},
		{"no exp", sign(t, "RS256", "rs", k.rsa, with(func(c jwt.MapClaims) { delete(c, "exp") })), errMissingClaim},
		{"not yet valid", sign(t, "RS256", "rs", k.rsa, with(func(c jwt.MapClaims) { c["nbf"] = now.Add(time.Minute).Unix() })), errNotYetValid},
		{"iat in the future beyond skew", sign(t, "RS256", "rs", k.rsa, with(func(c jwt.MapClaims) { c["iat"] = now.Add(time.Minute).Unix() })), errIssuedInFuture},
		{"wrong iss", sign(t, "RS256", "rs", k.rsa, with(func(c jwt.MapClaims) { c["iss"] = "https://evil.test/" })), errIssuer},
		{"missing iss", sign(t, "RS256", "rs", k.rsa, with(func(c jwt.MapClaims) { delete(c, "iss") })), errMissingClaim},
		{"wrong aud", sign(t, "RS256", "rs", k.rsa, with(func(c jwt.MapClaims) { c["aud"] = []string{"other-api"} })), errAudience},
		{"missing aud", sign(t, "RS256", "rs", k.rsa, with(func(c jwt.MapClaims) { delete(c, "aud") })), errMissingClaim},
		{"tampered payload", parts[0] + "." + enc([]byte(`{"sub":"admin","iss":"https://id.test/","aud":"orders-api","exp":9999999999,"roles":["admin"]}`)) + "." + parts[2], errSignature},
		{"tampered signature", parts[0] + "." + parts[1] + "." + flip(parts[2]), errSignature},
		{"signature of another key", sign(t, "RS256", "rs", k.rsa2, claimsAt(now)), errSignature},
		{"oversized token", sign(t, "RS256", "rs", k.rsa, with(func(c jwt.MapClaims) { c["pad"] = strings.Repeat("p", maxTokenBytes) })), errTooLarge},
		{"unknown alg", enc([]byte(`{"alg":"XX999","kid":"rs"}`)) + "." + parts[1] + "." + parts[2], errAlgNotAllowed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := p.Authenticate(bearer(tc.token), &pipeline.State{})
			if err != tc.want {
				t.Fatalf("got %v; want %v", err, tc.want)
			}
			if err != nil && strings.Contains(err.Error(), tc.token) {
				t.Fatalf("error %q contains the token", err)
			}
		})
	}
	// Unknown kids above must not have made the provider hammer the
	// issuer: the first fetch plus at most one refetch (cooldown 1m, and
	// the fake clock did not move).
	if got := srv.hits.Load(); got > 2 {
		t.Errorf("JWKS fetches: got %d; want at most 2", got)
	}
}

// resign signs claims under an arbitrary RS256 header with the test RSA key.
func resign(t *testing.T, k *testKeys, header map[string]any, claims jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(jwt.SigningMethodRS256, claims)
	tok.Header = header
	s, err := tok.SignedString(k.rsa)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// flip changes the first character of a base64url segment.
func flip(s string) string {
	b := []byte(s)
	if b[0] == 'A' {
		b[0] = 'B'
	} else {
		b[0] = 'A'
	}
	return string(b)
}
