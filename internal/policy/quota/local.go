package quota

import (
	"hash/maphash"
	"sync"
	"time"
)

// Local counters for on_error: fail_open. While the shared store is
// unreachable each instance counts on its own, so a quota becomes
// per-instance until the store returns; the counts are then dropped in
// favour of the store's. They are process-wide (not per route build) so a
// config reload during an outage does not reset them, sharded so there is
// no global lock, and bounded: a full shard first drops expired counters,
// and if that is not enough the request is admitted uncounted rather than
// growing memory (fail_open means the store outage must not refuse).

const (
	localShards   = 32
	localShardCap = 4096 // counters per shard: 128Ki in all
)

type localCounter struct {
	n       int64
	expires int64 // unix nanoseconds
}

type localShard struct {
	mu sync.Mutex
	m  map[string]localCounter
	_  [48]byte // keep neighbouring locks off one cache line
}

type localCounters struct {
	seed   maphash.Seed
	shards [localShards]localShard
}

var fallback = newLocalCounters()

func newLocalCounters() *localCounters {
	l := &localCounters{seed: maphash.MakeSeed()}
	for i := range l.shards {
		l.shards[i].m = make(map[string]localCounter)
	}
	return l
}

// incr is store.Store.Incr's contract on local memory; ok is false when the
// shard is full of live counters and nothing was counted.
func (l *localCounters) incr(key string, n int64, now, expireAt time.Time) (v int64, ok bool) {
	sh := &l.shards[maphash.String(l.seed, key)&(localShards-1)]
	nowNS := now.UnixNano()
	sh.mu.Lock()
	defer sh.mu.Unlock()
	c, found := sh.m[key]
	if found && c.expires <= nowNS {
		delete(sh.m, key)
		found = false
	}
	if !found {
		if n == 0 {
			return 0, true
		}
		if len(sh.m) >= localShardCap {
			for k, old := range sh.m {
				if old.expires <= nowNS {
					delete(sh.m, k)
				}
			}
			if len(sh.m) >= localShardCap {
				return 0, false
			}
		}
		c.expires = expireAt.UnixNano()
	}
	c.n += n
	sh.m[key] = c
	return c.n, true
}
