package main

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// authSetup makes the measured route authenticated (-auth): it returns
// the config to add and the header wrk sends with every request (to every
// target; nginx and the upstream ignore it).
//
//   - apikey: one consumer with a random literal key; route auth [api_key].
//   - jwt: a fresh RSA-2048 key (public half in dir), a static-key
//     provider, and one RS256 token valid for 24 h: the "warm key cache"
//     case, every request presenting the same token.
func authSetup(dir, mode string, x portunusExtra) (portunusExtra, []string, error) {
	var secret [16]byte
	if _, err := rand.Read(secret[:]); err != nil {
		return x, nil, err
	}
	switch mode {
	case "apikey":
		key := "bench-" + hex.EncodeToString(secret[:])
		x.top += fmt.Sprintf("consumers: [{ name: bench, api_keys: [%q] }]\n", key)
		x.route = joinEntries(x.route, "auth: [api_key]")
		x.headers = []string{"X-API-Key: " + key}
		return x, x.headers, nil
	case "jwt":
		priv, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			return x, nil, err
		}
		der, err := x509.MarshalPKIXPublicKey(&priv.PublicKey)
		if err != nil {
			return x, nil, err
		}
		pub := filepath.Join(dir, "jwt.pub.pem")
		if err := os.WriteFile(pub, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o600); err != nil {
			return x, nil, err
		}
		now := time.Now()
		tok := jwt.NewWithClaims(jwt.SigningMethodRS256, jwt.MapClaims{
			"iss": "https://bench.invalid/", "aud": "bench", "sub": "bench",
			"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(24 * time.Hour).Unix(),
		})
		tok.Header["kid"] = "k1"
		signed, err := tok.SignedString(priv)
		if err != nil {
			return x, nil, err
		}
		x.top += fmt.Sprintf("jwt_providers: [{ name: bench, issuer: \"https://bench.invalid/\", audiences: [bench], keys: [{ kid: k1, algorithm: RS256, public_key_file: %q }] }]\n", pub)
		x.route = joinEntries(x.route, `auth: ["jwt:bench"]`)
		x.headers = []string{"Authorization: Bearer " + signed}
		return x, x.headers, nil
	}
	return x, nil, fmt.Errorf("-auth %q: want apikey or jwt", mode)
}

func joinEntries(a, b string) string {
	if a == "" {
		return b
	}
	return a + ", " + b
}
