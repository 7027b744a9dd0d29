// Package jwt_test runs JWT authentication end to end through
// gateway.Start: real keys (RS256 static PEM, ES256 from a live JWKS
// server, HS256 secret), a real upstream that reports what it received,
// and the attack table against a protected route (forged tokens, spoofed
// identity headers, path tricks).
package jwt_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/portunus-gw/portunus/internal/gateway"
)

const hmacSecret = "e2e-hmac-secret-of-thirty-two-b!"

// seen is what the upstream received.
type seen struct {
	Path   string      `json:"path"`
	Header http.Header `json:"header"`
}

type env struct {
	gw       string // gateway base URL
	rsa      *rsa.PrivateKey
	ec       *ecdsa.PrivateKey
	upHits   atomic.Int64
	jwksHits atomic.Int64
}

var (
	envOnce sync.Once
	envVal  *env
	envErr  error
)

// shared starts one gateway for the package (its keys are slow to make
// under -race); tests only read from it.
func shared(t *testing.T) *env {
	t.Helper()
	envOnce.Do(func() { envVal, envErr = start() })
	if envErr != nil {
		t.Fatal(envErr)
	}
	return envVal
}

var cleanups []func()

func TestMain(m *testing.M) {
	code := m.Run()
	for i := len(cleanups) - 1; i >= 0; i-- {
		cleanups[i]()
	}
	os.Exit(code)
}

func start() (*env, error) {
	e := &env{}
	var err error
	if e.rsa, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
		return nil, err
	}
	if e.ec, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "portunus-jwt-e2e")
	if err != nil {
		return nil, err
	}
	cleanups = append(cleanups, func() { os.RemoveAll(dir) })
	der, err := x509.MarshalPKIXPublicKey(&e.rsa.PublicKey)
	if err != nil {
		return nil, err
	}
	keyFile := filepath.Join(dir, "rs.pub.pem")
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o600); err != nil {
		return nil, err
	}

	raw, err := e.ec.PublicKey.Bytes()
	if err != nil {
		return nil, err
	}
	enc := base64.RawURLEncoding.EncodeToString
	jwks, _ := json.Marshal(map[string]any{"keys": []any{map[string]any{
		"kty": "EC", "crv": "P-256", "kid": "ec-1", "alg": "ES256", "use": "sig",
		"x": enc(raw[1:33]), "y": enc(raw[33:]),
	}}})
	jwksSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		e.jwksHits.Add(1)
		w.Header().Set("Content-Type", "application/jwk-set+json")
		_, _ = w.Write(jwks)
	}))
	cleanups = append(cleanups, jwksSrv.Close)

	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e.upHits.Add(1)
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(seen{Path: r.URL.EscapedPath(), Header: r.Header})
	}))
	cleanups = append(cleanups, up.Close)

	cfg := fmt.Sprintf(`
listeners: [{ address: "127.0.0.1:0" }]
observability: { access_log: { path: "off" } }
consumers:
  - { name: alice, roles: [admin] }
jwt_providers:
  - name: main
    issuer: "https://id.test/"
    audiences: [orders-api]
    jwks_url: %q
    algorithms: [ES256]
    jwks_refetch_cooldown: 1m
    keys:
      - { kid: rs-1, algorithm: RS256, public_key_file: %q }
      - { kid: hs-1, algorithm: HS256, secret: %q }
    roles_claim: realm_access.roles
    claims_to_headers: { X-User-Email: email, X-Tenant: tenant }
upstreams:
  - { name: app, targets: [{ url: %q }] }
routes:
  - { name: public, match: { path_prefix: /public }, upstream: app }
  - { name: admin, match: { path_prefix: /admin }, upstream: app, auth: ["jwt:main"], allow: { roles: [admin] } }
  - { name: api, match: { path_prefix: /api }, upstream: app, auth: ["jwt:main"] }
  - { name: keep, match: { path_prefix: /keep }, upstream: app, auth: ["jwt:main"], hide_credentials: false }
`, jwksSrv.URL, keyFile, hmacSecret, up.URL)
	path := filepath.Join(dir, "portunus.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		return nil, err
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		log = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	rt, err := gateway.Start(gateway.Options{ConfigPath: path, Log: log})
	if err != nil {
		return nil, fmt.Errorf("gateway start: %w", err)
	}
	cleanups = append(cleanups, func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		rt.Shutdown(ctx)
	})
	for _, a := range rt.ListenerAddrs() {
		e.gw = "http://" + a
	}
	return e, nil
}

func (e *env) claims(mod func(jwt.MapClaims)) jwt.MapClaims {
	now := time.Now()
	c := jwt.MapClaims{
		"iss": "https://id.test/", "aud": []string{"orders-api"}, "sub": "bob",
		"iat": now.Unix(), "exp": now.Add(time.Hour).Unix(),
		"realm_access": map[string]any{"roles": []string{"reader"}},
		"email":        "bob@example.com",
	}
	if mod != nil {
		mod(c)
	}
	return c
}

func (e *env) token(t *testing.T, alg, kid string, claims jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(jwt.GetSigningMethod(alg), claims)
	tok.Header["kid"] = kid
	var key any
	switch alg {
	case "RS256":
		key = e.rsa
	case "ES256":
		key = e.ec
	default:
		key = []byte(hmacSecret)
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// do sends a request with raw path and headers; it returns the status,
// the response headers and what the upstream saw (nil if not reached).
func (e *env) do(t *testing.T, path string, header map[string]string) (int, http.Header, *seen) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, e.gw+"/", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.URL.Opaque = path // sent exactly as written
	for k, v := range header {
		req.Header.Set(k, v)
	}
	client := &http.Client{Timeout: 30 * time.Second}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.Header.Get("Content-Type") != "application/json" || resp.StatusCode != http.StatusOK {
		return resp.StatusCode, resp.Header, nil
	}
	var s seen
	if err := json.Unmarshal(body, &s); err != nil {
		t.Fatalf("upstream answer: %v", err)
	}
	return resp.StatusCode, resp.Header, &s
}

func TestIdentityReachesUpstream(t *testing.T) {
	t.Parallel()
	e := shared(t)
	tests := []struct {
		name      string
		path      string
		alg, kid  string
		mod       func(jwt.MapClaims)
		wantName  string
		wantRoles string
		wantAuthz bool // Authorization forwarded (hide_credentials: false)
	}{
		{name: "ES256 from JWKS", path: "/api/orders", alg: "ES256", kid: "ec-1", wantName: "bob", wantRoles: "reader"},
		{name: "RS256 static key", path: "/api/orders", alg: "RS256", kid: "rs-1", wantName: "bob", wantRoles: "reader"},
		{name: "HS256 secret", path: "/api/orders", alg: "HS256", kid: "hs-1", wantName: "bob", wantRoles: "reader"},
		{
			name: "configured consumer's roles are added", path: "/api/orders", alg: "ES256", kid: "ec-1",
			mod: func(c jwt.MapClaims) { c["sub"] = "alice" }, wantName: "alice", wantRoles: "reader,admin",
		},
		{name: "credentials kept when asked", path: "/keep/x", alg: "ES256", kid: "ec-1", wantName: "bob", wantRoles: "reader", wantAuthz: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tok := e.token(t, tc.alg, tc.kid, e.claims(tc.mod))
			status, _, s := e.do(t, tc.path, map[string]string{
				"Authorization":    "Bearer " + tok,
				"X-Consumer-Name":  "mallory", // spoofed: must be replaced
				"X-Consumer-Roles": "admin",
				"X-User-Email":     "mallory@example.com",
			})
			if status != http.StatusOK || s == nil {
				t.Fatalf("status: got %d; want 200 from the upstream", status)
			}
			if got := s.Header.Values("X-Consumer-Name"); len(got) != 1 || got[0] != tc.wantName {
				t.Errorf("X-Consumer-Name: got %q; want [%s]", got, tc.wantName)
			}
			if got := strings.Join(s.Header.Values("X-Consumer-Roles"), ","); strings.ReplaceAll(got, " ", "") != tc.wantRoles {
				t.Errorf("X-Consumer-Roles: got %q; want %q", got, tc.wantRoles)
			}
			if got := s.Header.Values("X-User-Email"); len(got) != 1 || got[0] != "bob@example.com" {
				t.Errorf("X-User-Email: got %q; want [bob@example.com]", got)
			}
			if got := s.Header.Get("Authorization"); (got != "") != tc.wantAuthz {
				t.Errorf("Authorization upstream: got %q; want forwarded=%v", got, tc.wantAuthz)
			}
		})
	}
}

// TestAttacksEndToEnd: every forged or mis-scoped request is refused by
// the gateway and never reaches the upstream as an authenticated call.
func TestAttacksEndToEnd(t *testing.T) {
	t.Parallel()
	e := shared(t)
	enc := base64.RawURLEncoding.EncodeToString
	good := e.token(t, "ES256", "ec-1", e.claims(nil))
	parts := strings.Split(good, ".")
	pubDER, _ := x509.MarshalPKIXPublicKey(&e.rsa.PublicKey)
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})
	confused := jwt.NewWithClaims(jwt.SigningMethodHS256, e.claims(nil))
	confused.Header["kid"] = "rs-1"
	confusedTok, _ := confused.SignedString(pubPEM)
	bearer := func(tok string) map[string]string { return map[string]string{"Authorization": "Bearer " + tok} }

	tests := []struct {
		name   string
		path   string
		header map[string]string
		want   int
	}{
		{"no token", "/api/orders", nil, 401},
		{"alg none", "/api/orders", bearer(enc([]byte(`{"alg":"none","kid":"ec-1"}`)) + "." + parts[1] + "."), 401},
		{"HS256 with the RSA public key as secret", "/api/orders", bearer(confusedTok), 401},
		{"kid path traversal", "/api/orders", bearer(e.token(t, "ES256", "../../etc/passwd", e.claims(nil))), 401},
		{"kid SQL injection", "/api/orders", bearer(e.token(t, "ES256", "' OR 1=1 --", e.claims(nil))), 401},
		{"expired", "/api/orders", bearer(e.token(t, "ES256", "ec-1", e.claims(func(c jwt.MapClaims) { c["exp"] = time.Now().Add(-time.Hour).Unix() }))), 401},
		{"not yet valid", "/api/orders", bearer(e.token(t, "ES256", "ec-1", e.claims(func(c jwt.MapClaims) { c["nbf"] = time.Now().Add(time.Hour).Unix() }))), 401},
		{"wrong iss", "/api/orders", bearer(e.token(t, "ES256", "ec-1", e.claims(func(c jwt.MapClaims) { c["iss"] = "https://evil.test/" }))), 401},
		{"wrong aud", "/api/orders", bearer(e.token(t, "ES256", "ec-1", e.claims(func(c jwt.MapClaims) { c["aud"] = "other" }))), 401},
		{"tampered signature", "/api/orders", bearer(parts[0] + "." + parts[1] + "." + enc([]byte("not the signature, not at all, really"))), 401},
		{"tampered payload", "/api/orders", bearer(parts[0] + "." + enc([]byte(`{"sub":"alice","iss":"https://id.test/","aud":"orders-api","exp":9999999999}`)) + "." + parts[2]), 401},
		{"oversized token", "/api/orders", bearer(e.token(t, "ES256", "ec-1", e.claims(func(c jwt.MapClaims) { c["pad"] = strings.Repeat("p", 17<<10) }))), 401},
		{"token in query only", "/api/orders?access_token=" + good, nil, 401},
		{"spoofed identity headers alone", "/api/orders", map[string]string{"X-Consumer-Name": "alice", "X-Consumer-Roles": "admin"}, 401},
		{"valid but lacks role", "/admin/users", bearer(good), 403},
		{"path trick /public/../admin", "/public/../admin/users", nil, 401},
		{"path trick //admin (not merged: no route, or the admin route)", "//admin/users", nil, 404},
		{"path trick %2e%2e", "/public/%2e%2e/admin/users", nil, 401},
		{"path trick %2E%2E upper", "/public/%2E%2E/admin/users", nil, 401},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			status, h, s := e.do(t, tc.path, tc.header)
			if status != tc.want && !(tc.want == 404 && status == 401) {
				t.Fatalf("status: got %d; want %d", status, tc.want)
			}
			if s != nil {
				t.Fatalf("upstream reached with path %q", s.Path)
			}
			if status == 401 {
				if got := h.Get("WWW-Authenticate"); got != `Bearer realm="portunus"` {
					t.Errorf("WWW-Authenticate: got %q; want %q", got, `Bearer realm="portunus"`)
				}
			}
		})
	}
}

// TestMixedCaseIsAnotherRoute: matching is case-sensitive, so /ADMIN is
// not the admin route; it must not reach the upstream as /admin.
func TestMixedCaseIsAnotherRoute(t *testing.T) {
	t.Parallel()
	e := shared(t)
	status, _, s := e.do(t, "/Admin/users", nil)
	if s != nil && strings.HasPrefix(strings.ToLower(s.Path), "/admin") {
		t.Fatalf("upstream reached with %q (status %d); want no route", s.Path, status)
	}
	if status != http.StatusNotFound {
		t.Fatalf("status: got %d; want 404", status)
	}
}

// TestAdminRoleAllowed: a token for a configured consumer with the admin
// role passes allow; the JWKS was fetched a bounded number of times for
// all of this package's traffic, unknown kids included.
func TestAdminRoleAllowed(t *testing.T) {
	t.Parallel()
	e := shared(t)
	tok := e.token(t, "ES256", "ec-1", e.claims(func(c jwt.MapClaims) { c["sub"] = "alice" }))
	status, _, s := e.do(t, "/admin/users", map[string]string{"Authorization": "Bearer " + tok})
	if status != http.StatusOK || s == nil {
		t.Fatalf("status: got %d; want 200 from the upstream", status)
	}
	if got := s.Path; got != "/admin/users" {
		t.Errorf("upstream path: got %q; want /admin/users", got)
	}
	if got := e.jwksHits.Load(); got > 2 {
		t.Errorf("JWKS fetches: got %d; want at most 2 (start + one unknown-kid refetch per 1m cooldown)", got)
	}
}
