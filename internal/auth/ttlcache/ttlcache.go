// Package ttlcache is the bounded, expiring cache behind token
// introspection and forward auth decisions, keyed by a SHA-256 digest so a
// credential itself is never held as a key, plus a Group that coalesces
// concurrent lookups of one key into a single call.
//
// The cache has no background goroutine: it is bounded by entry count, and
// an insert into a full shard first drops the shard's expired entries, then
// arbitrary live ones (Go's map order is random) down to 7/8 of the shard,
// so the sweep cost is amortized over many inserts. Time is a parameter, so
// tests never sleep.
package ttlcache

import (
	"sync"
	"time"
)

// Key is a SHA-256 digest of whatever identifies an entry.
type Key = [32]byte

const shardCount = 16

// Cache maps keys to values until their expiry. The zero value is not
// usable; call New. It is safe for concurrent use.
type Cache[V any] struct {
	perShard int
	shards   [shardCount]shard[V]
}

type shard[V any] struct {
	mu sync.Mutex
	m  map[Key]entry[V]
}

type entry[V any] struct {
	v   V
	exp int64 // unix nanoseconds
}

// New returns a cache holding at most max entries (at least shardCount).
func New[V any](max int) *Cache[V] {
	per := max / shardCount
	if per < 1 {
		per = 1
	}
	c := &Cache[V]{perShard: per}
	for i := range c.shards {
		c.shards[i].m = make(map[Key]entry[V])
	}
	return c
}

func (c *Cache[V]) shard(k Key) *shard[V] { return &c.shards[k[0]%shardCount] }

// Get returns the value under k if it has not expired at now.
func (c *Cache[V]) Get(k Key, now time.Time) (V, bool) {
	s := c.shard(k)
	s.mu.Lock()
	e, ok := s.m[k]
	s.mu.Unlock()
	if !ok || now.UnixNano() >= e.exp {
		var zero V
		return zero, false
	}
	return e.v, true
}

// Put stores v under k until exp. An exp not after now stores nothing.
func (c *Cache[V]) Put(k Key, v V, exp, now time.Time) {
	if !exp.After(now) {
		return
	}
	s := c.shard(k)
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.m[k]; !ok && len(s.m) >= c.perShard {
		s.makeRoom(c.perShard, now.UnixNano())
	}
	s.m[k] = entry[V]{v: v, exp: exp.UnixNano()}
}

// makeRoom drops expired entries, then arbitrary ones, to 7/8 of max.
func (s *shard[V]) makeRoom(max int, now int64) {
	for k, e := range s.m {
		if now >= e.exp {
			delete(s.m, k)
		}
	}
	target := max - max/8
	if target >= max {
		target = max - 1
	}
	for k := range s.m {
		if len(s.m) <= target {
			break
		}
		delete(s.m, k)
	}
}

// Len is the number of entries held, expired or not.
func (c *Cache[V]) Len() int {
	n := 0
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.Lock()
		n += len(s.m)
		s.mu.Unlock()
	}
	return n
}

// Group runs one call per key at a time; callers arriving while it runs
// wait for its result. The zero value is ready to use.
type Group[V any] struct {
	mu sync.Mutex
	m  map[Key]*call[V]
}

type call[V any] struct {
	done chan struct{}
	v    V
	err  error
}

// Do runs fn for k unless a call for k is running, in which case it waits
// for that one. shared reports whether the result came from another call.
// Waiting ends early with stop's error when stop is closed (the caller's
// request went away); the running call goes on for the others.
func (g *Group[V]) Do(k Key, stop <-chan struct{}, stopErr func() error, fn func() (V, error)) (v V, err error, shared bool) {
	g.mu.Lock()
	if g.m == nil {
		g.m = make(map[Key]*call[V])
	}
	if c, ok := g.m[k]; ok {
		g.mu.Unlock()
		select {
		case <-c.done:
			return c.v, c.err, true
		case <-stop:
			var zero V
			return zero, stopErr(), true
		}
	}
	c := &call[V]{done: make(chan struct{})}
	g.m[k] = c
	g.mu.Unlock()

	defer func() {
		g.mu.Lock()
		delete(g.m, k)
		g.mu.Unlock()
		close(c.done)
	}()
	c.v, c.err = fn()
	return c.v, c.err, false
}
