package consumers

import (
	"crypto/sha256"
	"encoding/hex"
	"sync/atomic"
	"time"

	"github.com/portunus-gw/portunus/internal/config"
	"golang.org/x/crypto/bcrypt"
)

// Index is one immutable state of the runtime consumers, indexed for the
// per-request lookups exactly like the config directory. A change builds
// a new Index and swaps the pointer in Live (copy-on-write): requests
// never take a lock and never wait on the store.
type Index struct {
	version   uint64
	records   map[string]*Record
	byName    map[string]*Consumer
	byKeyHash map[[sha256.Size]byte]runtimeKey
	byUser    map[string]basicUser
	bySubject map[string]*Consumer
	bySAN     map[string]*Consumer
	dummyHash []byte
}

// runtimeKey is a key's owner and the end of its life (unix ns; 0 =
// none): a rotated key stops working at the end of its overlap without
// anyone writing anything.
type runtimeKey struct {
	c       *Consumer
	expires int64
}

// Live holds the current Index. Its zero value is an empty index.
type Live struct{ p atomic.Pointer[Index] }

// Load returns the current index (never nil).
func (l *Live) Load() *Index {
	if ix := l.p.Load(); ix != nil {
		return ix
	}
	return emptyIndex
}

func (l *Live) store(ix *Index) { l.p.Store(ix) }

var emptyIndex = buildIndex(0, nil, nil)

// Version is the store version this index reflects.
func (ix *Index) Version() uint64 { return ix.version }

// Len is the number of runtime consumers.
func (ix *Index) Len() int { return len(ix.records) }

// Record returns the stored record of name (shared: do not modify), or nil.
func (ix *Index) Record(name string) *Record { return ix.records[name] }

// Records returns every record (shared: do not modify), in no order.
func (ix *Index) Records() []*Record {
	out := make([]*Record, 0, len(ix.records))
	for _, r := range ix.records {
		out = append(out, r)
	}
	return out
}

// buildIndex indexes records. Consumer values of records that did not
// change since prev are reused, so whatever was derived from them (auth
// identities, compiled rate limits and quotas) stays valid.
func buildIndex(version uint64, records map[string]*Record, prev *Index) *Index {
	ix := &Index{
		version:   version,
		records:   records,
		byName:    make(map[string]*Consumer, len(records)),
		byKeyHash: make(map[[sha256.Size]byte]runtimeKey, len(records)),
		byUser:    map[string]basicUser{},
		bySubject: map[string]*Consumer{},
		bySAN:     map[string]*Consumer{},
	}
	if ix.records == nil {
		ix.records = map[string]*Record{}
	}
	maxCost := 0
	for name, r := range ix.records {
		var con *Consumer
		if prev != nil && prev.records[name] == r {
			con = prev.byName[name]
		}
		if con == nil {
			roles := append([]string(nil), r.Roles...)
			con = &Consumer{Name: name, Roles: roles[:len(roles):len(roles)], RateLimits: configLimits(r.RateLimits), Quotas: configQuotas(r.Quotas), Runtime: true}
		}
		ix.byName[name] = con
		for _, k := range r.Keys {
			var sum [sha256.Size]byte
			if b, err := hex.DecodeString(k.Hash); err != nil || len(b) != sha256.Size {
				continue // a damaged entry grants nothing
			} else {
				copy(sum[:], b)
			}
			var exp int64
			if k.ExpiresAt != nil {
				exp = k.ExpiresAt.UnixNano()
			}
			ix.byKeyHash[sum] = runtimeKey{c: con, expires: exp}
		}
		for _, b := range r.BasicAuth {
			cost, err := bcrypt.Cost([]byte(b.Hash))
			if err != nil {
				continue
			}
			maxCost = max(maxCost, cost)
			ix.byUser[b.Username] = basicUser{consumer: con, hash: []byte(b.Hash)}
		}
		for _, c := range r.Certificates {
			if c.SAN != "" {
				ix.bySAN[normalizeSAN(c.SAN)] = con
			} else if dn := normalizeDN(c.Subject); dn != "" {
				ix.bySubject[dn] = con
			}
		}
	}
	if len(ix.byUser) > 0 {
		ix.dummyHash = dummyHash(maxCost)
	}
	return ix
}

// byAPIKeyHash is the runtime consumer owning a key hash, unless the key
// has expired by now.
func (ix *Index) byAPIKeyHash(sum *[sha256.Size]byte) *Consumer {
	k, ok := ix.byKeyHash[*sum]
	if !ok {
		return nil
	}
	if k.expires != 0 && time.Now().UnixNano() >= k.expires {
		return nil
	}
	return k.c
}

// ByName returns the runtime consumer called name, or nil.
func (ix *Index) ByName(name string) *Consumer { return ix.byName[name] }

// RateLimits are a runtime consumer's own limits in config form.
func (ix *Index) RateLimits(name string) []config.RateLimit {
	if c := ix.byName[name]; c != nil {
		return c.RateLimits
	}
	return nil
}

// Quotas are a runtime consumer's own quotas in config form.
func (ix *Index) Quotas(name string) []config.Quota {
	if c := ix.byName[name]; c != nil {
		return c.Quotas
	}
	return nil
}
