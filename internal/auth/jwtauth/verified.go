package jwtauth

import (
	"crypto/sha256"
	"time"
	"unsafe"

	"github.com/golang-jwt/jwt/v5"
	"github.com/maypok86/otter/v2"

	"github.com/portunus-gw/portunus/internal/auth"
)

// verifiedCacheSize bounds the verified-token cache per provider. A
// client presents the same token on every request until it expires, so
// the working set is about the number of active clients; 10,000 entries
// cost about 2-3 MiB (a digest, an identity and otter's node each).
const verifiedCacheSize = 10_000

// verifiedCache remembers tokens that passed verification, keyed by the
// SHA-256 of the whole token, so a repeated token skips the signature
// check (80-200 µs for RSA and ECDSA). Only successes are kept: a forged
// or expired token is checked in full every time.
//
// An entry is used only while the token's exp has not passed by the
// provider's clock, and only while the JWKS key set is the one that was
// current when the token was verified: any refetch (a rotation, a
// removed key) makes every entry verified before it miss.
type verifiedCache struct {
	c *otter.Cache[[sha256.Size]byte, *verifiedEntry]
}

type verifiedEntry struct {
	id   *auth.Identity // shared, never written (as API-key identities)
	exp  time.Time
	keys *keySet // the JWKS set current before verification; nil without JWKS
}

func newVerifiedCache() *verifiedCache {
	return &verifiedCache{c: otter.Must(&otter.Options[[sha256.Size]byte, *verifiedEntry]{
		// The size bound is the only one: an expired entry is dropped
		// when next looked up, or evicted by newer tokens. (Otter's
		// per-entry expiry would start a cleanup goroutine per
		// provider, outliving reloads.)
		MaximumSize: verifiedCacheSize,
		// Maintenance runs on the calling goroutine: no goroutines of
		// the cache's own to outlive the provider.
		Executor: func(fn func()) { fn() },
	})}
}

// tokenDigest hashes the token in place: a []byte copy of it would be
// the lookup's only allocation. Sum256 only reads its input.
func tokenDigest(tok string) [sha256.Size]byte {
	return sha256.Sum256(unsafe.Slice(unsafe.StringData(tok), len(tok)))
}

// get returns the identity of an already verified token that is still
// valid at now under the current key set.
func (v *verifiedCache) get(sum [sha256.Size]byte, now time.Time, keys *keySet) (*auth.Identity, bool) {
	e, ok := v.c.GetIfPresent(sum)
	if !ok {
		return nil, false
	}
	if !now.Before(e.exp) || e.keys != keys {
		v.c.Invalidate(sum)
		return nil, false
	}
	return e.id, true
}

// put remembers a verified token until its exp.
func (v *verifiedCache) put(sum [sha256.Size]byte, claims jwt.MapClaims, id *auth.Identity, now time.Time, keys *keySet) {
	exp, err := claims.GetExpirationTime()
	if err != nil || exp == nil || !now.Before(exp.Time) {
		return
	}
	v.c.Set(sum, &verifiedEntry{id: id, exp: exp.Time, keys: keys})
}

// currentKeys is the JWKS key set a verification starting now uses.
func (p *Provider) currentKeys() *keySet {
	if p.jwks == nil {
		return nil
	}
	return p.jwks.keys.Load()
}
