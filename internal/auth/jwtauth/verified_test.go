package jwtauth

import (
	"strings"
	"testing"
	"time"

	"github.com/portunus-gw/portunus/internal/pipeline"
)

// A token seen before is answered from the cache: the same Identity comes
// back (a verification builds a new one each time).
func TestVerifiedTokenCached(t *testing.T) {
	t.Parallel()
	k := keys(t)
	clk := newClock()
	p := newTestProvider(t, staticConfig(t), clk)
	tok := sign(t, "RS256", "rs256", k.rsa, claimsAt(clk.now()))
	first, err := p.Authenticate(bearer(tok), &pipeline.State{})
	if err != nil {
		t.Fatal(err)
	}
	again, err := p.Authenticate(bearer(tok), &pipeline.State{})
	if err != nil {
		t.Fatal(err)
	}
	if again != first {
		t.Error("a repeated valid token was verified again; want it answered from the cache")
	}
	// A different token (one byte of the signature changed) is not a
	// hit and fails verification.
	forged := tok[:len(tok)-2] + string("AB"[0]^tok[len(tok)-2]&1)
	if forged == tok {
		t.Fatal("forgery unchanged")
	}
	if _, err := p.Authenticate(bearer(forged), &pipeline.State{}); err == nil {
		t.Error("a token differing from a cached one in its signature was accepted")
	}
}

// A cached token never outlives its exp, whatever the clock skew lets
// verification accept.
func TestVerifiedTokenNeverOutlivesExp(t *testing.T) {
	t.Parallel()
	k := keys(t)
	clk := newClock()
	p := newTestProvider(t, staticConfig(t), clk) // clock skew 30 s
	claims := claimsAt(clk.now())
	claims["exp"] = clk.now().Add(time.Minute).Unix()
	tok := sign(t, "RS256", "rs256", k.rsa, claims)
	first, err := p.Authenticate(bearer(tok), &pipeline.State{})
	if err != nil {
		t.Fatal(err)
	}
	clk.advance(59 * time.Second)
	if id, err := p.Authenticate(bearer(tok), &pipeline.State{}); err != nil || id != first {
		t.Fatalf("before exp: id reused %v, err %v; want the cached identity", id == first, err)
	}
	clk.advance(10 * time.Second) // past exp, within the skew
	id, err := p.Authenticate(bearer(tok), &pipeline.State{})
	if err != nil {
		t.Fatalf("within the skew: %v", err)
	}
	if id == first {
		t.Error("the cached entry was used after exp")
	}
	clk.advance(time.Minute) // past exp and skew
	if _, err := p.Authenticate(bearer(tok), &pipeline.State{}); err != errExpired {
		t.Errorf("after exp+skew: got %v; want %v", err, errExpired)
	}
}

// A JWKS refetch invalidates every token verified before it: a token
// signed by a key the new set no longer holds is refused at once.
func TestVerifiedTokenDroppedOnKeySetChange(t *testing.T) {
	t.Parallel()
	k := keys(t)
	clk := newClock()
	srv := newJWKSServer(t, jwkOf(t, "k1", "RS256", &k.rsa.PublicKey))
	p := newTestProvider(t, jwksConfig(srv.URL), clk)
	tok := sign(t, "RS256", "k1", k.rsa, claimsAt(clk.now()))
	// The first request waits for the initial fetch: verified with no
	// key set current at its start, it is verified once more after.
	if _, err := p.Authenticate(bearer(tok), &pipeline.State{}); err != nil {
		t.Fatal(err)
	}
	first, err := p.Authenticate(bearer(tok), &pipeline.State{})
	if err != nil {
		t.Fatal(err)
	}
	if id, _ := p.Authenticate(bearer(tok), &pipeline.State{}); id != first {
		t.Fatal("not cached")
	}
	// Rotation: k1 leaves the set. A token with a new kid makes the
	// provider refetch (after the cooldown).
	srv.set(t, jwkOf(t, "k2", "ES256", &k.p256.PublicKey))
	clk.advance(6 * time.Second)
	if _, err := p.Authenticate(bearer(sign(t, "ES256", "k2", k.p256, claimsAt(clk.now()))), &pipeline.State{}); err != nil {
		t.Fatalf("k2 after rotation: %v", err)
	}
	if _, err := p.Authenticate(bearer(tok), &pipeline.State{}); err != errUnknownKey {
		t.Errorf("cached k1 token after k1 was retired: got %v; want %v", err, errUnknownKey)
	}
}

// BenchmarkVerifyUncached is the full verification (the cache entry is
// dropped before every request): what a first-seen token costs.
func BenchmarkVerifyUncached(b *testing.B) {
	k := keys(b)
	clk := newClock()
	p := newTestProvider(b, staticConfig(b), clk)
	for _, alg := range []string{"RS256", "ES256", "HS256"} {
		b.Run(alg, func(b *testing.B) {
			tok := sign(b, alg, strings.ToLower(alg), privFor(k, alg), claimsAt(clk.now()))
			r := bearer(tok)
			sum := tokenDigest(tok)
			s := &pipeline.State{}
			b.ReportAllocs()
			for b.Loop() {
				p.verified.c.Invalidate(sum)
				if _, err := p.Authenticate(r, s); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
