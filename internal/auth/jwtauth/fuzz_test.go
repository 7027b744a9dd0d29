package jwtauth

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/portunus-gw/portunus/internal/pipeline"
)

// FuzzAuthenticate feeds arbitrary Authorization headers through the whole
// token path: it must never panic, and whatever it accepts must be a
// validly signed token naming a consumer.
func FuzzAuthenticate(f *testing.F) {
	k := keys(f)
	clk := newClock()
	p := newTestProvider(f, staticConfig(f), clk)
	now := clk.now()
	for _, alg := range []string{"RS256", "ES256", "EdDSA", "HS256"} {
		f.Add("Bearer " + sign(f, alg, "", privFor(k, alg), claimsAt(now)))
	}
	f.Add("Bearer " + sign(f, "HS256", "hs256", k.hmac, jwt.MapClaims{"sub": []any{1, "x"}, "exp": now.Add(time.Hour).Unix(), "iss": "https://id.test/", "aud": []any{"orders-api", 3}}))
	f.Add("Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiJhIn0.")
	f.Add("Bearer eyJhbGciOiJIUzI1NiIsImtpZCI6Wzld.e30.AAAA")
	f.Add("Bearer eyJ.eyJ.")
	f.Add("Bearer e30.e30.e30")
	f.Add("bearer ....")
	f.Add("Basic Zm9vOmJhcg==")
	f.Add("Bearer eyAgewo.e30.x")
	f.Fuzz(func(t *testing.T, h string) {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.Header["Authorization"] = []string{h}
		id, err := p.Authenticate(r, &pipeline.State{})
		if err == nil && (id == nil || id.Consumer == "") {
			t.Fatalf("accepted %q without a consumer", h)
		}
	})
}

// FuzzLooksLikeJWS checks the shape test against a reference: three
// segments of the base64url alphabet.
func FuzzLooksLikeJWS(f *testing.F) {
	for _, s := range []string{"eyJhIjoxfQ.e30.", "a.b.c", "eyJ..", "", "..", "eyJhbGciOiJIUzI1NiJ9.e30.sig", "ey J.a.b", "e30.e30.e30.e30"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if looksLikeJWS(s) && !threeB64Segments(s) {
			t.Fatalf("looksLikeJWS(%q) = true for a non-JWS shape", s)
		}
		tok, ok := bearerToken(s)
		if ok && tok == "" {
			t.Fatalf("bearerToken(%q) returned ok with an empty token", s)
		}
	})
}

func threeB64Segments(s string) bool {
	n := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '.':
			n++
		case c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '-', c == '_':
		default:
			return false
		}
	}
	return n == 2
}
