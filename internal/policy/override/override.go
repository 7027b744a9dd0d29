// Package override keeps what runtime consumers' own policy settings
// (their rate limits, their quotas: created through the admin API)
// compile to, so a policy compiles a consumer's settings on its first
// request and again only when they change.
package override

import "sync"

// maxEntries bounds the compiled overrides one route keeps; past it the
// cache starts over (consumers recompile on their next request).
const maxEntries = 100_000

// Cache compiles S settings into C per consumer. Lookup returns a new
// slice whenever a consumer's settings change, so the identity of its
// first element is the version: a cached C is used while it matches.
type Cache[S, C any] struct {
	Lookup  func(consumer string) []S
	Compile func(consumer string, settings []S) (C, error)

	entries sync.Map // consumer name -> *entry[S, C]
	mu      sync.Mutex
	size    int
}

type entry[S, C any] struct {
	src *S // &settings[0] of the slice compiled
	c   C
}

// Get is the consumer's compiled settings; ok is false when it has none,
// or when they do not compile (the admin API's checks prevent that), and
// the route's own apply.
func (d *Cache[S, C]) Get(consumer string) (c C, ok bool) {
	settings := d.Lookup(consumer)
	if len(settings) == 0 {
		return c, false
	}
	if v, found := d.entries.Load(consumer); found {
		if e := v.(*entry[S, C]); e.src == &settings[0] {
			return e.c, true
		}
	}
	c, err := d.Compile(consumer, settings)
	if err != nil {
		return c, false
	}
	d.mu.Lock()
	if d.size >= maxEntries {
		d.entries.Clear()
		d.size = 0
	}
	if _, loaded := d.entries.Swap(consumer, &entry[S, C]{src: &settings[0], c: c}); !loaded {
		d.size++
	}
	d.mu.Unlock()
	return c, true
}
