package jwtauth

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/portunus-gw/portunus/internal/config"
	"github.com/portunus-gw/portunus/internal/pipeline"
)

func jwksConfig(url string) config.JWTProvider {
	return config.JWTProvider{
		Name: "idp", Issuer: "https://id.test/", Audiences: []string{"orders-api"},
		JWKSURL: url, Algorithms: []string{"RS256", "ES256", "EdDSA"},
		JWKSRefetchCooldown: config.Duration(5 * time.Second),
		ConsumerClaim:       "sub", RolesClaim: "roles", ClockSkew: config.Duration(30 * time.Second),
	}
}

func randomKID(t testing.TB) string {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b[:])
}

// TestJWKSRotationOutageAndStorm walks one issuer through its life: keys
// rotate (the new kid is fetched on first sight), the issuer goes down
// (the last good set keeps verifying, a new kid is refused without
// hammering), and a storm of 500 random kids within one cooldown causes
// at most one fetch.
func TestJWKSRotationOutageAndStorm(t *testing.T) {
	t.Parallel()
	k := keys(t)
	clk := newClock()
	srv := newJWKSServer(t, jwkOf(t, "k1", "RS256", &k.rsa.PublicKey))
	p := newTestProvider(t, jwksConfig(srv.URL), clk)
	auth := func(alg, kid string, priv any) error {
		_, err := p.Authenticate(bearer(sign(t, alg, kid, priv, claimsAt(clk.now()))), &pipeline.State{})
		return err
	}

	// The first request waits for the initial fetch begun by New.
	if err := auth("RS256", "k1", k.rsa); err != nil {
		t.Fatalf("k1 before rotation: got %v; want nil", err)
	}
	if got := srv.hits.Load(); got != 1 {
		t.Fatalf("fetches after start: got %d; want 1", got)
	}

	// Rotation: k2 (ES256) replaces k1. Within the cooldown the new kid is
	// refused without a fetch; after it, one refetch picks it up.
	srv.set(t, jwkOf(t, "k2", "ES256", &k.p256.PublicKey))
	if err := auth("ES256", "k2", k.p256); err != errUnknownKey {
		t.Fatalf("k2 within cooldown: got %v; want %v", err, errUnknownKey)
	}
	if got := srv.hits.Load(); got != 1 {
		t.Fatalf("fetches within cooldown: got %d; want 1", got)
	}
	clk.advance(6 * time.Second)
	if err := auth("ES256", "k2", k.p256); err != nil {
		t.Fatalf("k2 after rotation: got %v; want nil", err)
	}
	if got := srv.hits.Load(); got != 2 {
		t.Fatalf("fetches after rotation: got %d; want 2", got)
	}
	if err := auth("RS256", "k1", k.rsa); err != errUnknownKey {
		t.Fatalf("retired k1: got %v; want %v", err, errUnknownKey)
	}

	// Storm: 500 random kids, concurrently, after the cooldown: one fetch.
	clk.advance(6 * time.Second)
	before := srv.hits.Load()
	var wg sync.WaitGroup
	errs := make(chan error, 500)
	for range 500 {
		wg.Go(func() { errs <- auth("ES256", randomKID(t), k.p256) })
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != errUnknownKey {
			t.Fatalf("random kid: got %v; want %v", err, errUnknownKey)
		}
	}
	if got := srv.hits.Load() - before; got != 1 {
		t.Fatalf("fetches caused by 500 random kids: got %d; want 1", got)
	}

	// Outage: the last good set keeps verifying; a new kid is refused and
	// retried at most once per cooldown.
	srv.setDown(true)
	p.jwks.mu.Lock()
	p.jwks.retryMin = time.Hour // keep the background retry out of the count
	p.jwks.mu.Unlock()
	clk.advance(6 * time.Second)
	before = srv.hits.Load()
	for range 100 {
		if err := auth("EdDSA", "k3", k.ed); err != errUnknownKey {
			t.Fatalf("new kid while down: got %v; want %v", err, errUnknownKey)
		}
		if err := auth("ES256", "k2", k.p256); err != nil {
			t.Fatalf("k2 while issuer down: got %v; want nil", err)
		}
	}
	if got := srv.hits.Load() - before; got != 1 {
		t.Fatalf("fetches while down: got %d; want 1", got)
	}

	// Recovery: after the cooldown, the new kid is fetched.
	srv.setDown(false)
	srv.set(t, jwkOf(t, "k2", "ES256", &k.p256.PublicKey), jwkOf(t, "k3", "", k.ed.Public()))
	clk.advance(6 * time.Second)
	if err := auth("EdDSA", "k3", k.ed); err != nil {
		t.Fatalf("k3 after recovery: got %v; want nil", err)
	}
}

// TestJWKSIssuerDownAtStart: New succeeds, tokens are refused until the
// issuer answers, then accepted.
func TestJWKSIssuerDownAtStart(t *testing.T) {
	t.Parallel()
	k := keys(t)
	clk := newClock()
	srv := newJWKSServer(t, jwkOf(t, "k1", "RS256", &k.rsa.PublicKey))
	srv.setDown(true)
	p := newTestProvider(t, jwksConfig(srv.URL), clk)
	tok := sign(t, "RS256", "k1", k.rsa, claimsAt(clk.now()))
	if _, err := p.Authenticate(bearer(tok), &pipeline.State{}); err != errUnknownKey {
		t.Fatalf("issuer down: got %v; want %v", err, errUnknownKey)
	}
	srv.setDown(false)
	clk.advance(6 * time.Second)
	if _, err := p.Authenticate(bearer(tok), &pipeline.State{}); err != nil {
		t.Fatalf("issuer back: got %v; want nil", err)
	}
}

func TestJWKSOversizedAndInvalid(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		body string
	}{
		{"oversized", `{"keys":[],"pad":"` + strings.Repeat("x", maxJWKSBytes) + `"}`},
		{"not json", `<html>`},
		{"no usable key", `{"keys":[{"kty":"oct","k":"c2VjcmV0","alg":"HS256"}]}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				_, _ = w.Write([]byte(tc.body))
			}))
			defer srv.Close()
			j := newJWKS(srv.URL, rsaAlgs, time.Second, discardLog(), time.Now)
			defer j.close()
			ks, _, err := j.fetch()
			if err == nil || ks != nil {
				t.Fatalf("fetch: got (%v, %v); want an error", ks, err)
			}
		})
	}
}

func TestParseJWKSFiltering(t *testing.T) {
	t.Parallel()
	k := keys(t)
	small := map[string]any{"kty": "RSA", "kid": "small", "n": "AQAB", "e": "AQAB"}
	offCurve := jwkOf(t, "offcurve", "ES256", &k.p256.PublicKey)
	offCurve["y"] = offCurve["x"]
	enc := jwkOf(t, "enc", "RS256", &k.rsa.PublicKey)
	enc["use"] = "enc"
	set := []map[string]any{
		jwkOf(t, "rs-noalg", "", &k.rsa.PublicKey),      // RSA without alg: RS256 (PS256 is not allowed)
		jwkOf(t, "rs-ps512", "PS512", &k.rsa.PublicKey), // alg outside the allow-list
		jwkOf(t, "rs-es256", "ES256", &k.rsa.PublicKey), // alg does not fit the key type
		jwkOf(t, "ec", "", &k.p256.PublicKey),           // EC P-256 without alg: ES256
		jwkOf(t, "ec384", "", &k.p384.PublicKey),        // ES384 not allowed
		jwkOf(t, "ed", "EdDSA", k.ed.Public()),          // EdDSA not allowed
		{"kty": "oct", "kid": "hs", "k": "c2VjcmV0"},    // HMAC keys never come from the network
		small, offCurve, enc,
	}
	body, _ := json.Marshal(map[string]any{"keys": set})
	got, skipped, err := parseJWKS(body, setOf("RS256", "ES256"))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"rs-noalg": "RS256", "ec": "ES256"}
	if len(got) != len(want) || skipped != len(set)-len(want) {
		t.Fatalf("got %d keys, %d skipped; want %d, %d", len(got), skipped, len(want), len(set)-len(want))
	}
	for _, key := range got {
		if names := strings.Join(key.algs.names(), ","); names != want[key.kid] {
			t.Errorf("key %s algorithms: got %q; want %q", key.kid, names, want[key.kid])
		}
	}
}

func TestMaxAge(t *testing.T) {
	t.Parallel()
	tests := []struct {
		cc   string
		want time.Duration
	}{
		{"", 5 * time.Minute},
		{"max-age=600", 10 * time.Minute},
		{"public, max-age=5", time.Minute},
		{"max-age=999999999999", 24 * time.Hour},
		{"max-age=abc", 5 * time.Minute},
		{"no-store", 5 * time.Minute},
	}
	for _, tc := range tests {
		if got := maxAgeOf(tc.cc); got != tc.want {
			t.Errorf("maxAgeOf(%q): got %v; want %v", tc.cc, got, tc.want)
		}
	}
}

// TestCloseStopsRefresher: Close returns with the background work done
// (goleak in TestMain checks no goroutine is left) and keys still verify.
func TestCloseStopsRefresher(t *testing.T) {
	t.Parallel()
	k := keys(t)
	clk := newClock()
	srv := newJWKSServer(t, jwkOf(t, "k1", "RS256", &k.rsa.PublicKey))
	p, err := newProvider(jwksConfig(srv.URL), nil, clk.now)
	if err != nil {
		t.Fatal(err)
	}
	tok := sign(t, "RS256", "k1", k.rsa, claimsAt(clk.now()))
	if _, err := p.Authenticate(bearer(tok), &pipeline.State{}); err != nil {
		t.Fatalf("before Close: got %v; want nil", err)
	}
	if err := p.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if _, err := p.Authenticate(bearer(tok), &pipeline.State{}); err != nil {
		t.Fatalf("after Close: got %v; want nil", err)
	}
	// A request whose context is done does not wait for a fetch.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	r := bearer(sign(t, "RS256", "unknown", k.rsa, claimsAt(clk.now()))).WithContext(ctx)
	if _, err := p.Authenticate(r, &pipeline.State{}); err != errUnknownKey {
		t.Fatalf("unknown kid after Close: got %v; want %v", err, errUnknownKey)
	}
}
