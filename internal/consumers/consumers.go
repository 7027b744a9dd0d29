// Package consumers is the directory of configured consumers: lookups by
// name, API key hash, basic-auth user and certificate identity. Everything
// is indexed when the directory is built, so each per-request lookup is one
// map access.
//
// API keys are indexed by their SHA-256: config holds either the hash
// ("sha256:<hex>", as printed by `portunus hash-key`) or the literal key,
// which is hashed here. A presented key is hashed and looked up, so the
// time taken does not depend on how much of it matches a stored key.
package consumers

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/portunus-gw/portunus/internal/config"
)

// Consumer is one known client.
type Consumer struct {
	Name  string
	Roles []string
}

// basicUser is one basic-auth login.
type basicUser struct {
	consumer *Consumer
	hash     []byte
}

// Directory indexes consumers for the per-request lookups. It is immutable
// once built and safe for concurrent use.
type Directory struct {
	byName    map[string]*Consumer
	byKeyHash map[[sha256.Size]byte]*Consumer
	byUser    map[string]basicUser
	bySubject map[string]*Consumer // normalized subject DN
	bySAN     map[string]*Consumer // DNS names lower-cased, others as written
	// dummyHash is what an unknown user's password is compared against,
	// at the highest cost configured, so a miss costs what a hit costs.
	dummyHash []byte
	list      []*Consumer
}

// New builds the directory from config. It refuses what validation cannot
// see: a literal key and a hashed key that are the same key, and a
// certificate identity claimed by two consumers.
func New(cfg []config.Consumer) (*Directory, error) {
	d := &Directory{
		byName:    make(map[string]*Consumer, len(cfg)),
		byKeyHash: map[[sha256.Size]byte]*Consumer{},
		byUser:    map[string]basicUser{},
		bySubject: map[string]*Consumer{},
		bySAN:     map[string]*Consumer{},
	}
	maxCost := 0
	for i := range cfg {
		c := &cfg[i]
		// A private copy of the roles, capped so that an append by anyone
		// holding it can never write into the directory's array.
		roles := append([]string(nil), c.Roles...)
		con := &Consumer{Name: c.Name, Roles: roles[:len(roles):len(roles)]}
		if _, dup := d.byName[c.Name]; dup {
			return nil, fmt.Errorf("duplicate consumer name %q", c.Name)
		}
		d.byName[c.Name] = con
		d.list = append(d.list, con)
		for _, k := range c.APIKeys {
			sum, err := keyHash(k)
			if err != nil {
				return nil, fmt.Errorf("consumer %q: %v", c.Name, err)
			}
			if prev, dup := d.byKeyHash[sum]; dup {
				return nil, fmt.Errorf("consumers %q and %q share an API key (one hashed, one literal)", prev.Name, c.Name)
			}
			d.byKeyHash[sum] = con
		}
		if b := c.BasicAuth; b != nil {
			if _, dup := d.byUser[b.Username]; dup {
				return nil, fmt.Errorf("duplicate basic-auth username %q", b.Username)
			}
			cost, err := bcryptCost(b.PasswordHash)
			if err != nil {
				return nil, fmt.Errorf("consumer %q: basic_auth.password_hash: %v", c.Name, err)
			}
			maxCost = max(maxCost, cost)
			d.byUser[b.Username] = basicUser{consumer: con, hash: []byte(b.PasswordHash)}
		}
		for _, m := range c.Certificates {
			idx, key, what := d.bySubject, normalizeDN(m.Subject), "subject"
			if m.SAN != "" {
				idx, key, what = d.bySAN, normalizeSAN(m.SAN), "san"
			}
			if key == "" {
				return nil, fmt.Errorf("consumer %q: empty certificate %s", c.Name, what)
			}
			if prev, dup := idx[key]; dup && prev != con {
				return nil, fmt.Errorf("certificate %s %q names both %q and %q", what, key, prev.Name, c.Name)
			}
			idx[key] = con
		}
	}
	if len(d.byUser) > 0 {
		d.dummyHash = dummyHash(maxCost)
	}
	return d, nil
}

// keyHash is the SHA-256 of a configured key, hashed or literal.
func keyHash(k string) ([sha256.Size]byte, error) {
	var sum [sha256.Size]byte
	if h, ok := strings.CutPrefix(k, "sha256:"); ok {
		b, err := hex.DecodeString(h)
		if err != nil || len(b) != sha256.Size {
			return sum, fmt.Errorf("a hashed key is sha256: followed by 64 hex digits")
		}
		copy(sum[:], b)
		return sum, nil
	}
	if k == "" {
		return sum, fmt.Errorf("empty API key")
	}
	return sha256.Sum256([]byte(k)), nil
}

// ByName returns the consumer called name, or nil.
func (d *Directory) ByName(name string) *Consumer { return d.byName[name] }

// All returns every consumer in config order; the caller must not modify
// the slice.
func (d *Directory) All() []*Consumer { return d.list }

// HasAPIKeys, HasBasic and HasCertificates say whether any consumer has a
// credential of that kind.
func (d *Directory) HasAPIKeys() bool      { return len(d.byKeyHash) > 0 }
func (d *Directory) HasBasic() bool        { return len(d.byUser) > 0 }
func (d *Directory) HasCertificates() bool { return len(d.bySubject)+len(d.bySAN) > 0 }

// maxStackKey is the longest key hashed without a heap copy.
const maxStackKey = 256

// ByAPIKey returns the consumer owning key, or nil. The key is hashed
// whatever it is, then looked up: no comparison of secret bytes happens
// whose duration depends on the stored keys.
func (d *Directory) ByAPIKey(key string) *Consumer {
	if key == "" {
		return nil
	}
	var sum [sha256.Size]byte
	if len(key) <= maxStackKey {
		var buf [maxStackKey]byte
		n := copy(buf[:], key)
		sum = sha256.Sum256(buf[:n])
	} else {
		sum = sha256.Sum256([]byte(key))
	}
	return d.byKeyHash[sum]
}
