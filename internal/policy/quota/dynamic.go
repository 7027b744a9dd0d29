package quota

import (
	"sync"

	"github.com/portunus-gw/portunus/internal/config"
)

// maxDynamicSets bounds the compiled overrides one route keeps for
// runtime consumers; past it the cache starts over (they recompile on
// their next request).
const maxDynamicSets = 100_000

// dynamicSets compiles the own quotas of runtime consumers (created
// through the admin API) on their first request and keeps them until the
// consumer's quotas change: the lookup returns a new slice on every
// change, so the slice's identity is the version. It mirrors the rate
// limiter's (internal/policy/ratelimit/dynamic.go).
type dynamicSets struct {
	route  string
	lookup func(string) []config.Quota

	sets sync.Map // consumer name -> *dynamicSet
	n    sync.Mutex
	size int
}

type dynamicSet struct {
	src *config.Quota // &quotas[0] of the slice compiled
	qs  []compiled
}

// get is the consumer's own quotas, or base when it has none (or they do
// not compile, which the admin API's checks prevent).
func (d *dynamicSets) get(consumer string, base []compiled) []compiled {
	qs := d.lookup(consumer)
	if len(qs) == 0 {
		return base
	}
	if v, ok := d.sets.Load(consumer); ok {
		if ds := v.(*dynamicSet); ds.src == &qs[0] {
			return ds.qs
		}
	}
	c, err := compile(d.route, consumer, qs)
	if err != nil {
		return base
	}
	d.n.Lock()
	if d.size >= maxDynamicSets {
		d.sets.Clear()
		d.size = 0
	}
	if _, loaded := d.sets.Swap(consumer, &dynamicSet{src: &qs[0], qs: c}); !loaded {
		d.size++
	}
	d.n.Unlock()
	return c
}
