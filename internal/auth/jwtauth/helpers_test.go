package jwtauth

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"log/slog"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// testKeys are real keys generated once per test binary (RSA generation
// is slow under -race).
type testKeys struct {
	rsa, rsa2  *rsa.PrivateKey
	p256, p384 *ecdsa.PrivateKey
	p521       *ecdsa.PrivateKey
	ed         ed25519.PrivateKey
	hmac       []byte
}

var (
	keysOnce sync.Once
	keysVal  testKeys
)

func keys(t testing.TB) *testKeys {
	t.Helper()
	keysOnce.Do(func() {
		must := func(err error) {
			if err != nil {
				panic(err)
			}
		}
		var err error
		keysVal.rsa, err = rsa.GenerateKey(rand.Reader, 2048)
		must(err)
		keysVal.rsa2, err = rsa.GenerateKey(rand.Reader, 2048)
		must(err)
		keysVal.p256, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		must(err)
		keysVal.p384, err = ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
		must(err)
		keysVal.p521, err = ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
		must(err)
		_, keysVal.ed, err = ed25519.GenerateKey(rand.Reader)
		must(err)
		keysVal.hmac = []byte("a-test-hmac-secret-of-32-bytes!!")
	})
	return &keysVal
}

// pemFile writes pub as a PKIX PEM file and returns its path.
func pemFile(t testing.TB, pub crypto.PublicKey) string {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return writeFile(t, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
}

func pemBytes(t testing.TB, pub crypto.PublicKey) []byte {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

func writeFile(t testing.TB, data []byte) string {
	t.Helper()
	f, err := os.CreateTemp(t.TempDir(), "key-*.pem")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write(data); err != nil {
		t.Fatal(err)
	}
	return filepath.Clean(f.Name())
}

// sign makes a token with header kid (omitted when "") and claims.
func sign(t testing.TB, alg, kid string, priv any, claims jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(jwt.GetSigningMethod(alg), claims)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(priv)
	if err != nil {
		t.Fatalf("sign %s: %v", alg, err)
	}
	return s
}

// clock is a settable time source shared by a provider and its tests.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Unix(1_800_000_000, 0)} }

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// claimsAt are valid claims for the provider configs of these tests.
func claimsAt(now time.Time) jwt.MapClaims {
	return jwt.MapClaims{
		"iss":   "https://id.test/",
		"aud":   "orders-api",
		"sub":   "alice",
		"iat":   now.Unix(),
		"nbf":   now.Unix(),
		"exp":   now.Add(time.Hour).Unix(),
		"roles": []string{"reader", "writer"},
	}
}

func bearer(tok string) *http.Request {
	r := httptest.NewRequest(http.MethodGet, "http://gw.test/orders", nil)
	r.Header.Set("Authorization", "Bearer "+tok)
	return r
}

// jwkOf renders a public key as a JWK; alg "" omits the member.
func jwkOf(t testing.TB, kid, alg string, pub crypto.PublicKey) map[string]any {
	t.Helper()
	enc := base64.RawURLEncoding.EncodeToString
	m := map[string]any{"kid": kid, "use": "sig"}
	if alg != "" {
		m["alg"] = alg
	}
	switch k := pub.(type) {
	case *rsa.PublicKey:
		m["kty"] = "RSA"
		m["n"] = enc(k.N.Bytes())
		m["e"] = enc(big.NewInt(int64(k.E)).Bytes())
	case *ecdsa.PublicKey:
		m["kty"] = "EC"
		m["crv"] = k.Curve.Params().Name
		size := (k.Curve.Params().BitSize + 7) / 8
		raw, err := k.Bytes()
		if err != nil {
			t.Fatal(err)
		}
		m["x"] = enc(raw[1 : 1+size])
		m["y"] = enc(raw[1+size:])
	case ed25519.PublicKey:
		m["kty"] = "OKP"
		m["crv"] = "Ed25519"
		m["x"] = enc(k)
	default:
		t.Fatalf("jwkOf: %T", pub)
	}
	return m
}

// jwksServer is an issuer's JWKS endpoint: its key set can be replaced,
// it can go down, and it counts requests.
type jwksServer struct {
	*httptest.Server
	mu   sync.Mutex
	body []byte
	down bool
	hits atomic.Int64
}

func newJWKSServer(t testing.TB, jwks ...map[string]any) *jwksServer {
	t.Helper()
	s := &jwksServer{}
	s.set(t, jwks...)
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.hits.Add(1)
		s.mu.Lock()
		body, down := s.body, s.down
		s.mu.Unlock()
		if down {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "application/jwk-set+json")
		_, _ = w.Write(body)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *jwksServer) set(t testing.TB, jwks ...map[string]any) {
	t.Helper()
	body, err := json.Marshal(map[string]any{"keys": jwks})
	if err != nil {
		t.Fatal(err)
	}
	s.mu.Lock()
	s.body = body
	s.mu.Unlock()
}

func (s *jwksServer) setDown(down bool) {
	s.mu.Lock()
	s.down = down
	s.mu.Unlock()
}

func discardLog() *slog.Logger { return slog.New(slog.DiscardHandler) }
