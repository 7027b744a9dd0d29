package jwtauth

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/golang-jwt/jwt/v5"

	"github.com/portunus-gw/portunus/internal/config"
)

// algNames are the JWS algorithms the gateway can verify; an algSet bit i
// stands for algNames[i]. "none" is deliberately absent: it cannot be
// named anywhere, so it can never be accepted.
var algNames = [...]string{
	"RS256", "RS384", "RS512",
	"PS256", "PS384", "PS512",
	"ES256", "ES384", "ES512",
	"EdDSA",
	"HS256", "HS384", "HS512",
}

type algSet uint16

func algBit(name string) algSet {
	for i, n := range algNames {
		if n == name {
			return 1 << i
		}
	}
	return 0
}

func (s algSet) has(name string) bool { b := algBit(name); return b != 0 && s&b != 0 }

func (s algSet) names() []string {
	var out []string
	for i, n := range algNames {
		if s&(1<<i) != 0 {
			out = append(out, n)
		}
	}
	return out
}

func setOf(names ...string) algSet {
	var s algSet
	for _, n := range names {
		s |= algBit(n)
	}
	return s
}

var (
	rsaAlgs  = setOf("RS256", "RS384", "RS512", "PS256", "PS384", "PS512")
	hmacAlgs = setOf("HS256", "HS384", "HS512")
)

// RSA keys too small to be trusted, or so large that verifying costs a
// noticeable amount of CPU per request, are refused.
const (
	minRSABits = 2048
	maxRSABits = 8192
)

// algsForKey is the set of algorithms a key of this type may verify: the
// type decides, so an HMAC secret can never check an RS token and an RSA
// key can never be used as an HMAC secret (key confusion).
func algsForKey(pub any) (algSet, error) {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		if b := k.N.BitLen(); b < minRSABits || b > maxRSABits {
			return 0, fmt.Errorf("RSA key of %d bits is outside [%d, %d]", b, minRSABits, maxRSABits)
		}
		return rsaAlgs, nil
	case *ecdsa.PublicKey:
		switch k.Curve {
		case elliptic.P256():
			return setOf("ES256"), nil
		case elliptic.P384():
			return setOf("ES384"), nil
		case elliptic.P521():
			return setOf("ES512"), nil
		}
		return 0, errors.New("unsupported elliptic curve")
	case ed25519.PublicKey:
		return setOf("EdDSA"), nil
	case []byte:
		return hmacAlgs, nil
	}
	return 0, fmt.Errorf("unsupported key type %T", pub)
}

// key is one verification key and the algorithms it may verify.
type key struct {
	kid  string
	algs algSet
	pub  any // *rsa.PublicKey, *ecdsa.PublicKey, ed25519.PublicKey or []byte
}

// keySet indexes keys by kid; keys without a kid are candidates for any
// token whose algorithm they allow.
type keySet struct {
	byKid   map[string][]*key
	kidless []*key
	n       int
}

func newKeySet(keys []*key) *keySet {
	ks := &keySet{byKid: map[string][]*key{}, n: len(keys)}
	for _, k := range keys {
		if k.kid == "" {
			ks.kidless = append(ks.kidless, k)
		} else {
			ks.byKid[k.kid] = append(ks.byKid[k.kid], k)
		}
	}
	return ks
}

// collect appends the keys of ks that may verify a token with this kid
// and alg: keys with that kid, then kid-less keys. found reports whether a
// key with that exact kid exists (whatever its algorithm).
func (ks *keySet) collect(dst []any, kid, alg string) (out []any, found bool) {
	if ks == nil {
		return dst, false
	}
	if kid != "" {
		list, ok := ks.byKid[kid]
		found = ok
		for _, k := range list {
			if k.algs.has(alg) {
				dst = append(dst, k.pub)
			}
		}
	}
	for _, k := range ks.kidless {
		if k.algs.has(alg) {
			dst = append(dst, k.pub)
		}
	}
	return dst, found
}

// loadStaticKeys reads the provider's keys: PEM public keys (PKIX, PKCS#1
// or a certificate) and HMAC secrets. Each key verifies only its declared
// algorithm, which must match its type.
func loadStaticKeys(cfg []config.JWTKey) ([]*key, error) {
	out := make([]*key, 0, len(cfg))
	for i, kc := range cfg {
		bit := algBit(kc.Algorithm)
		if bit == 0 {
			return nil, fmt.Errorf("keys[%d]: unsupported algorithm %q", i, kc.Algorithm)
		}
		var pub any
		if hmacAlgs&bit != 0 {
			if kc.Secret == "" {
				return nil, fmt.Errorf("keys[%d]: %s needs secret", i, kc.Algorithm)
			}
			pub = []byte(kc.Secret)
		} else {
			p, err := readPublicKey(kc.PublicKeyFile)
			if err != nil {
				return nil, fmt.Errorf("keys[%d]: %w", i, err)
			}
			pub = p
		}
		allowed, err := algsForKey(pub)
		if err != nil {
			return nil, fmt.Errorf("keys[%d]: %w", i, err)
		}
		if allowed&bit == 0 {
			return nil, fmt.Errorf("keys[%d]: algorithm %s does not match the key type", i, kc.Algorithm)
		}
		out = append(out, &key{kid: kc.KID, algs: bit, pub: pub})
	}
	return out, nil
}

func readPublicKey(path string) (any, error) {
	if path == "" {
		return nil, errors.New("public_key_file is required")
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading public key: %w", err)
	}
	return parsePublicKeyPEM(data)
}

func parsePublicKeyPEM(data []byte) (any, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, errors.New("public key file holds no PEM block")
	}
	switch strings.ToUpper(block.Type) {
	case "PUBLIC KEY":
		return x509.ParsePKIXPublicKey(block.Bytes)
	case "RSA PUBLIC KEY":
		return x509.ParsePKCS1PublicKey(block.Bytes)
	case "CERTIFICATE":
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, err
		}
		return c.PublicKey, nil
	}
	return nil, fmt.Errorf("PEM block %q is not a public key (want PUBLIC KEY, RSA PUBLIC KEY or CERTIFICATE)", block.Type)
}

// signingMethodsKnown makes sure every algorithm we name is one the JWT
// library implements, so a typo here cannot silently disable a check.
func init() {
	for _, n := range algNames {
		if jwt.GetSigningMethod(n) == nil {
			panic("jwtauth: JWT library lacks " + n)
		}
	}
}
