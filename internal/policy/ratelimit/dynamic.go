package ratelimit

import (
	"sync"

	"github.com/portunus-gw/portunus/internal/config"
	"github.com/portunus-gw/portunus/internal/telemetry"
)

// maxDynamicSets bounds the compiled overrides one route keeps for
// runtime consumers; past it the cache starts over (they recompile on
// their next request).
const maxDynamicSets = 100_000

// dynamicSets compiles the overrides of runtime consumers (created through
// the admin API) on their first request and keeps them until the
// consumer's limits change: the lookup returns a new slice on every change,
// so the slice's identity is the version.
type dynamicSets struct {
	route   string
	lookup  func(string) []config.RateLimit
	metrics *telemetry.Metrics

	sets sync.Map // consumer name -> *dynamicSet
	n    sync.Mutex
	size int
}

type dynamicSet struct {
	src *config.RateLimit // &limits[0] of the slice compiled
	set *limitSet
}

// get is the consumer's own limit set, or base when it has none (or its
// limits do not compile, which the admin API's checks prevent).
func (d *dynamicSets) get(consumer string, base *limitSet) *limitSet {
	rls := d.lookup(consumer)
	if len(rls) == 0 {
		return base
	}
	if v, ok := d.sets.Load(consumer); ok {
		if ds := v.(*dynamicSet); ds.src == &rls[0] {
			return ds.set
		}
	}
	set, err := compileSet(d.route, consumer, rls, d.metrics)
	if err != nil {
		return base
	}
	d.n.Lock()
	if d.size >= maxDynamicSets {
		d.sets.Clear()
		d.size = 0
	}
	if _, loaded := d.sets.Swap(consumer, &dynamicSet{src: &rls[0], set: set}); !loaded {
		d.size++
	}
	d.n.Unlock()
	return set
}
