package store

import (
	"context"
	"hash/maphash"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

const (
	memoryShards = 64 // power of two: the shard is hash & (memoryShards-1)
	// itemOverhead approximates the per-entry cost (map slot, headers) added
	// to len(key)+len(value) when accounting against MaxBytes.
	itemOverhead = 64
	// evictionSample is how many entries one eviction step looks at; the
	// one expiring soonest (or any, for entries without TTL) goes. Sampling
	// keeps eviction O(1) without an ordered index.
	evictionSample = 5
	// subscriberQueue bounds the messages waiting for one in-process subscriber.
	subscriberQueue = 256
)

// DefaultMemoryMaxBytes is the value budget when MemoryOptions.MaxBytes is 0,
// the same as the config default for store.memory.cache_max_bytes.
const DefaultMemoryMaxBytes = 256 << 20

// MemoryOptions configures NewMemory. The zero value is usable.
type MemoryOptions struct {
	// MaxBytes bounds the stored values (approximately: keys and a fixed
	// per-entry overhead count too). 0 means DefaultMemoryMaxBytes.
	// Rate-limit buckets are not counted and never evicted: evicting them
	// would let a cache flood reset limits; they expire on their own.
	MaxBytes int64
	// Now is the clock; nil means time.Now. Tests inject a fake clock so
	// GCRA and TTLs can be checked without sleeping.
	Now func() time.Time
	// SweepInterval is how often expired entries are removed in the
	// background (reads also drop them lazily). 0 means 10s.
	SweepInterval time.Duration
}

// Memory is the in-process Store: 64 independently locked shards, TTLs
// expired lazily on read and by a periodic sweep, values bounded by
// MaxBytes with sampled eviction, and in-process Publish/Subscribe.
type Memory struct {
	shards   [memoryShards]memShard
	seed     maphash.Seed
	now      func() time.Time
	maxBytes int64
	used     atomic.Int64 // bytes accounted across all shards
	closed   atomic.Bool

	stop      chan struct{}
	sweepDone chan struct{}
	closeOnce sync.Once

	psMu   sync.Mutex
	subs   map[string]map[*memSub]struct{}
	subsWG sync.WaitGroup
}

type memShard struct {
	mu    sync.Mutex
	items map[string]memItem
	// buckets are GCRA TATs (unix nanoseconds) behind pointers: an
	// update writes through the pointer and never stores the caller's key
	// again, so AllowAt need not keep its key.
	buckets  map[string]*int64
	counters map[string]memCounter
	_        [32]byte // keep neighbouring shard locks off one cache line
}

// memCounter is one Incr counter.
type memCounter struct {
	n       int64
	expires int64 // unix nanoseconds
}

type memItem struct {
	value   []byte
	expires int64 // unix nanoseconds; 0 = never
}

func (it memItem) size(key string) int64 { return int64(len(key)+len(it.value)) + itemOverhead }

// NewMemory returns an in-process store. Close stops its sweep goroutine.
func NewMemory(opts MemoryOptions) *Memory {
	m := &Memory{
		seed:      maphash.MakeSeed(),
		now:       opts.Now,
		maxBytes:  opts.MaxBytes,
		stop:      make(chan struct{}),
		sweepDone: make(chan struct{}),
		subs:      make(map[string]map[*memSub]struct{}),
	}
	if m.now == nil {
		m.now = time.Now
	}
	if m.maxBytes <= 0 {
		m.maxBytes = DefaultMemoryMaxBytes
	}
	for i := range m.shards {
		m.shards[i].items = make(map[string]memItem)
		m.shards[i].buckets = make(map[string]*int64)
		m.shards[i].counters = make(map[string]memCounter)
	}
	interval := opts.SweepInterval
	if interval <= 0 {
		interval = 10 * time.Second
	}
	go m.sweepLoop(interval)
	return m
}

func (m *Memory) shardIndex(key string) int {
	return int(maphash.String(m.seed, key) & (memoryShards - 1))
}

// Get implements Store.
func (m *Memory) Get(_ context.Context, key string) ([]byte, error) {
	if m.closed.Load() {
		return nil, ErrClosed
	}
	sh := &m.shards[m.shardIndex(key)]
	now := m.now().UnixNano()
	sh.mu.Lock()
	it, ok := sh.items[key]
	if ok && it.expires != 0 && it.expires <= now {
		delete(sh.items, key)
		m.used.Add(-it.size(key))
		ok = false
	}
	sh.mu.Unlock()
	if !ok {
		return nil, ErrNotFound
	}
	out := make([]byte, len(it.value))
	copy(out, it.value)
	return out, nil
}

// Set implements Store. A value larger than the whole budget gives ErrTooLarge.
func (m *Memory) Set(_ context.Context, key string, value []byte, ttl time.Duration) error {
	if m.closed.Load() {
		return ErrClosed
	}
	it := memItem{value: append([]byte(nil), value...)}
	if ttl > 0 {
		it.expires = m.now().Add(ttl).UnixNano()
	}
	size := it.size(key)
	if size > m.maxBytes {
		return ErrTooLarge
	}
	idx := m.shardIndex(key)
	sh := &m.shards[idx]
	sh.mu.Lock()
	if old, ok := sh.items[key]; ok {
		m.used.Add(-old.size(key))
	}
	sh.items[key] = it
	m.used.Add(size)
	sh.mu.Unlock()
	if m.used.Load() > m.maxBytes {
		m.evict(idx, key)
	}
	return nil
}

// evict removes sampled entries, starting at shard start and moving on to
// the next shards, until the budget holds again. keep (the key just set) is
// spared. Only one shard lock is held at a time.
func (m *Memory) evict(start int, keep string) {
	now := m.now().UnixNano()
	for i := 0; i < memoryShards && m.used.Load() > m.maxBytes; i++ {
		sh := &m.shards[(start+i)&(memoryShards-1)]
		sh.mu.Lock()
		for m.used.Load() > m.maxBytes {
			victim, found := "", false
			var soonest int64
			seen := 0
			for k, it := range sh.items { // map iteration order is randomized
				if k == keep {
					continue
				}
				exp := it.expires
				if exp == 0 {
					exp = 1<<63 - 1
				}
				if !found || exp < soonest || it.expires != 0 && it.expires <= now {
					victim, soonest, found = k, exp, true
				}
				if seen++; seen >= evictionSample {
					break
				}
			}
			if !found {
				break
			}
			m.used.Add(-sh.items[victim].size(victim))
			delete(sh.items, victim)
		}
		sh.mu.Unlock()
	}
}

// Delete implements Store.
func (m *Memory) Delete(_ context.Context, keys ...string) error {
	if m.closed.Load() {
		return ErrClosed
	}
	for _, key := range keys {
		sh := &m.shards[m.shardIndex(key)]
		sh.mu.Lock()
		if it, ok := sh.items[key]; ok {
			delete(sh.items, key)
			m.used.Add(-it.size(key))
		}
		delete(sh.buckets, key)
		delete(sh.counters, key)
		sh.mu.Unlock()
	}
	return nil
}

// Incr implements Store. A counter whose expiry has passed counts as absent;
// one created with an expiry already past is reported but not kept.
func (m *Memory) Incr(_ context.Context, key string, n int64, expireAt time.Time) (int64, error) {
	if m.closed.Load() {
		return 0, ErrClosed
	}
	sh := &m.shards[m.shardIndex(key)]
	now := m.now().UnixNano()
	sh.mu.Lock()
	defer sh.mu.Unlock()
	c, ok := sh.counters[key]
	if ok && c.expires <= now {
		delete(sh.counters, key)
		ok = false
	}
	if !ok {
		if n == 0 {
			return 0, nil
		}
		c.expires = expireAt.UnixNano()
	}
	c.n += n
	if c.expires > now {
		sh.counters[key] = c
	}
	return c.n, nil
}

// Allow implements Store. n = 0 reports the bucket without taking from it.
func (m *Memory) Allow(_ context.Context, key string, l Limit, n int) (Decision, error) {
	return m.AllowAt(key, l, n, m.now())
}

// AllowAt is Allow deciding at now instead of reading the store's clock,
// for a caller that has read the clock already. It never keeps key (a new
// bucket stores a copy), so a caller holding the concrete type may pass a
// key that views a reused or stack buffer: the call does not make it
// escape.
func (m *Memory) AllowAt(key string, l Limit, n int, now time.Time) (Decision, error) {
	if m.closed.Load() {
		return Decision{}, ErrClosed
	}
	p, err := resolveLimit(l, n)
	if err != nil {
		return Decision{}, err
	}
	sh := &m.shards[m.shardIndex(key)]
	sh.mu.Lock()
	b := sh.buckets[key]
	var tat int64
	if b != nil {
		tat = *b
	}
	d, tat, save := gcraStep(p, now.UnixNano(), tat, int64(n))
	if save {
		if b == nil {
			b = new(int64)
			sh.buckets[strings.Clone(key)] = b
		}
		*b = tat
	}
	sh.mu.Unlock()
	return d, nil
}

// Ping implements Store.
func (m *Memory) Ping(context.Context) error {
	if m.closed.Load() {
		return ErrClosed
	}
	return nil
}

// Close stops the sweep goroutine and every subscription. It is idempotent.
func (m *Memory) Close() error {
	m.closeOnce.Do(func() {
		m.closed.Store(true)
		close(m.stop)
		<-m.sweepDone
		m.psMu.Lock()
		for _, set := range m.subs {
			for s := range set {
				s.stop()
			}
		}
		m.subs = map[string]map[*memSub]struct{}{}
		m.psMu.Unlock()
		m.subsWG.Wait()
	})
	return nil
}

func (m *Memory) sweepLoop(interval time.Duration) {
	defer close(m.sweepDone)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-m.stop:
			return
		case <-t.C:
			m.sweep()
		}
	}
}

// sweep drops expired values, counters and full (expired) buckets, one
// shard at a time.
func (m *Memory) sweep() {
	for i := range m.shards {
		now := m.now().UnixNano()
		sh := &m.shards[i]
		sh.mu.Lock()
		for k, it := range sh.items {
			if it.expires != 0 && it.expires <= now {
				delete(sh.items, k)
				m.used.Add(-it.size(k))
			}
		}
		for k, tat := range sh.buckets {
			if *tat <= now {
				delete(sh.buckets, k)
			}
		}
		for k, c := range sh.counters {
			if c.expires <= now {
				delete(sh.counters, k)
			}
		}
		sh.mu.Unlock()
	}
}

// Len reports how many values are stored (expired ones not yet swept
// included). For tests and the admin API.
func (m *Memory) Len() int {
	n := 0
	for i := range m.shards {
		sh := &m.shards[i]
		sh.mu.Lock()
		n += len(sh.items)
		sh.mu.Unlock()
	}
	return n
}

// UsedBytes reports the bytes accounted against MaxBytes.
func (m *Memory) UsedBytes() int64 { return m.used.Load() }
