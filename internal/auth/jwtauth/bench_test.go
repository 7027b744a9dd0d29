package jwtauth

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/portunus-gw/portunus/internal/pipeline"
)

// BenchmarkVerify is the per-request cost of a JWT method with its keys
// loaded (static keys; JWKS keys are looked up the same way).
func BenchmarkVerify(b *testing.B) {
	k := keys(b)
	clk := newClock()
	c := staticConfig(b)
	c.ClaimsToHeaders = map[string]string{"X-User-Email": "email"}
	p := newTestProvider(b, c, clk)
	for _, alg := range []string{"RS256", "ES256", "EdDSA", "HS256"} {
		b.Run(alg, func(b *testing.B) {
			claims := claimsAt(clk.now())
			claims["email"] = "alice@example.com"
			r := httptest.NewRequest(http.MethodGet, "/", nil)
			r.Header.Set("Authorization", "Bearer "+sign(b, alg, strings.ToLower(alg), privFor(k, alg), claims))
			s := &pipeline.State{}
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				if _, err := p.Authenticate(r, s); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkVerifyJWKS is RS256 against a warm JWKS cache.
func BenchmarkVerifyJWKS(b *testing.B) {
	k := keys(b)
	clk := newClock()
	srv := newJWKSServer(b, jwkOf(b, "k1", "RS256", &k.rsa.PublicKey))
	p := newTestProvider(b, jwksConfig(srv.URL), clk)
	r := bearer(sign(b, "RS256", "k1", k.rsa, claimsAt(clk.now())))
	if _, err := p.Authenticate(r, &pipeline.State{}); err != nil {
		b.Fatal(err)
	}
	s := &pipeline.State{}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := p.Authenticate(r, s); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkLooksLikeJWS is the shape check every bearer token passes
// before anything else, on a token of typical RS256 length.
func BenchmarkLooksLikeJWS(b *testing.B) {
	tok := "eyJhbGciOiJSUzI1NiIsImtpZCI6ImsxIiwidHlwIjoiSldUIn0." + strings.Repeat("eyJzdWIiOiJiZW5jaCJ9", 6) + "." + strings.Repeat("Qm9keV9zaWduYXR1cmUtXw", 16)
	for b.Loop() {
		if !looksLikeJWS(tok) {
			b.Fatal("not a JWS")
		}
	}
}
