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
	"sync/atomic"

	"github.com/portunus-gw/portunus/internal/config"
)

// Consumer is one known client.
type Consumer struct {
	Name  string
	Roles []string
	// RateLimits are a runtime consumer's own limits (config consumers'
	// limits are compiled from the config by the snapshot).
	RateLimits []config.RateLimit
	// Quotas are a runtime consumer's own quotas (config consumers' are
	// compiled from the config by the snapshot).
	Quotas []config.Quota
	// Runtime is true for a consumer created through the admin API.
	Runtime bool

	derived atomic.Value
}

// Derived returns what build makes of c, building it once: the auth
// package keeps a runtime consumer's identity here, so answering a request
// with it allocates nothing.
func (c *Consumer) Derived(build func(*Consumer) any) any {
	if v := c.derived.Load(); v != nil {
		return v
	}
	v := build(c)
	if !c.derived.CompareAndSwap(nil, v) {
		return c.derived.Load()
	}
	return v
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
	// live is the runtime consumers (admin API), consulted after the
	// config ones; nil = none. Config wins every clash.
	live *Live
}

// WithRuntime makes d consult the runtime consumers of l after its own.
// Call it before d is shared.
func (d *Directory) WithRuntime(l *Live) *Directory {
	d.live = l
	return d
}

// runtime is the current runtime index, or nil.
func (d *Directory) runtime() *Index {
	if d.live == nil {
		return nil
	}
	return d.live.Load()
}

// ConfigHas, ConfigHasUser and ConfigHasIdentity report whether the
// config file claims a name, a basic-auth username or a certificate
// identity ("subject:DN" / "san:NAME" as Record.claims writes them).
func (d *Directory) ConfigHas(name string) bool     { return d.byName[name] != nil }
func (d *Directory) ConfigHasUser(user string) bool { _, ok := d.byUser[user]; return ok }
func (d *Directory) ConfigHasIdentity(claim string) bool {
	if v, ok := strings.CutPrefix(claim, "subject:"); ok {
		return d.bySubject[v] != nil
	}
	if v, ok := strings.CutPrefix(claim, "san:"); ok {
		return d.bySAN[v] != nil
	}
	if v, ok := strings.CutPrefix(claim, "user:"); ok {
		return d.ConfigHasUser(v)
	}
	return false
}

// RuntimeRateLimits are the own rate limits of the runtime consumer
// called name, unless a config consumer has that name (config wins).
func (d *Directory) RuntimeRateLimits(name string) []config.RateLimit {
	ix := d.runtime()
	if ix == nil || d.byName[name] != nil {
		return nil
	}
	return ix.RateLimits(name)
}

// RuntimeQuotas are the own quotas of the runtime consumer called name,
// unless a config consumer has that name (config wins).
func (d *Directory) RuntimeQuotas(name string) []config.Quota {
	ix := d.runtime()
	if ix == nil || d.byName[name] != nil {
		return nil
	}
	return ix.Quotas(name)
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

// ByName returns the consumer called name, or nil: config first, then
// runtime.
func (d *Directory) ByName(name string) *Consumer {
	if c := d.byName[name]; c != nil {
		return c
	}
	if ix := d.runtime(); ix != nil {
		return ix.byName[name]
	}
	return nil
}

// All returns every consumer in config order; the caller must not modify
// the slice.
func (d *Directory) All() []*Consumer { return d.list }

// HasAPIKeys, HasBasic and HasCertificates say whether any config
// consumer has a credential of that kind.
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
	if c := d.byKeyHash[sum]; c != nil {
		return c
	}
	ix := d.runtime()
	if ix == nil {
		return nil
	}
	// A runtime consumer whose name the config took is not this one: the
	// config consumer wins, and the runtime one's keys grant nothing.
	if c := ix.byAPIKeyHash(&sum); c != nil && d.byName[c.Name] == nil {
		return c
	}
	return nil
}

// hashKey is the SHA-256 of a presented or issued key.
func hashKey(key string) [sha256.Size]byte { return sha256.Sum256([]byte(key)) }
