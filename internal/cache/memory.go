package cache

import (
	"context"
	"hash/maphash"
	"math"
	"sync"
	"time"
	"unsafe"

	"github.com/maypok86/otter/v2"
)

// MemoryStats is what a memory backend reports for metrics.
type MemoryStats struct {
	Entries, Bytes int64
}

// Memory is the in-process backend: an otter cache bounded by bytes
// (S3-FIFO eviction, per-entry expiry), plus an index from URL to keys so
// that unsafe requests invalidate without scanning.
type Memory struct {
	c       *otter.Cache[string, *Entry]
	seed    maphash.Seed
	shards  [indexShards]indexShard
	evicted func()
}

const indexShards = 32

type indexShard struct {
	mu   sync.Mutex
	urls map[string]map[string]struct{}
}

// NewMemory builds a memory backend holding at most maxBytes (keys and
// entries, approximately). onEvict, if not nil, is called for each entry
// dropped to make room.
func NewMemory(maxBytes int64, onEvict func()) *Memory {
	if maxBytes <= 0 {
		maxBytes = 256 << 20
	}
	m := &Memory{seed: maphash.MakeSeed(), evicted: onEvict}
	for i := range m.shards {
		m.shards[i].urls = map[string]map[string]struct{}{}
	}
	m.c = otter.Must(&otter.Options[string, *Entry]{
		MaximumWeight: uint64(maxBytes),
		Weigher: func(k string, e *Entry) uint32 {
			return uint32(min(2*len(k)+e.size(), math.MaxUint32)) // the key is held twice: cache and index
		},
		ExpiryCalculator: otter.ExpiryWritingFunc(func(e otter.Entry[string, *Entry]) time.Duration {
			return e.Value.ttl
		}),
		OnDeletion: func(ev otter.DeletionEvent[string, *Entry]) {
			if ev.Cause == otter.CauseReplacement {
				return
			}
			if ev.Cause == otter.CauseOverflow && m.evicted != nil {
				m.evicted()
			}
			if k, ok := parseKey(ev.Key); ok {
				m.unindex(k.URLKey(), ev.Key)
			}
		},
	})
	return m
}

func (m *Memory) shard(urlKey string) *indexShard {
	return &m.shards[maphash.String(m.seed, urlKey)%indexShards]
}

func (m *Memory) unindex(urlKey, key string) {
	sh := m.shard(urlKey)
	sh.mu.Lock()
	if set := sh.urls[urlKey]; set != nil {
		delete(set, key)
		if len(set) == 0 {
			delete(sh.urls, urlKey)
		}
	}
	sh.mu.Unlock()
}

// Get implements Backend.
func (m *Memory) Get(_ context.Context, key string) (*Entry, error) {
	e, ok := m.c.GetIfPresent(key)
	if !ok {
		return nil, nil
	}
	return e, nil
}

// getBytes is Get for a key held in a byte slice, without converting it
// to a string: otter only hashes and compares the key of a read and keeps
// no reference to it, so the caller may reuse key once getBytes returns.
func (m *Memory) getBytes(key []byte) *Entry {
	e, _ := m.c.GetIfPresent(unsafe.String(unsafe.SliceData(key), len(key)))
	return e
}

// Set implements Backend. The entry is kept as is: callers never modify
// an entry after storing it.
func (m *Memory) Set(_ context.Context, key, urlKey string, e *Entry, ttl time.Duration) error {
	sh := m.shard(urlKey)
	sh.mu.Lock()
	set := sh.urls[urlKey]
	if set == nil {
		set = map[string]struct{}{}
		sh.urls[urlKey] = set
	}
	set[key] = struct{}{}
	sh.mu.Unlock()
	c := *e
	c.ttl = ttl
	if !c.isMarker() {
		c.memo = &hitMemo{}
	}
	m.c.Set(key, &c)
	return nil
}

// Delete implements Backend; the URL index forgets key as the entry goes.
func (m *Memory) Delete(_ context.Context, key string) error {
	m.c.Invalidate(key)
	return nil
}

// InvalidateURL implements Backend.
func (m *Memory) InvalidateURL(_ context.Context, urlKey string) error {
	sh := m.shard(urlKey)
	sh.mu.Lock()
	set := sh.urls[urlKey]
	delete(sh.urls, urlKey)
	sh.mu.Unlock()
	for k := range set {
		m.c.Invalidate(k)
	}
	return nil
}

// Purge implements Backend; it walks every entry.
func (m *Memory) Purge(_ context.Context, sel Selector) (int, error) {
	var keys []string
	for k := range m.c.Keys() {
		if pk, ok := parseKey(k); ok && sel.match(pk) {
			keys = append(keys, k)
		}
	}
	n := 0
	for _, k := range keys {
		if _, ok := m.c.Invalidate(k); ok {
			n++
		}
	}
	return n, nil
}

// Stats reports the entry count and weighted bytes.
func (m *Memory) Stats() MemoryStats {
	return MemoryStats{Entries: int64(m.c.EstimatedSize()), Bytes: int64(m.c.WeightedSize())}
}

// Close stops otter's background work.
func (m *Memory) Close() error {
	m.c.InvalidateAll()
	m.c.StopAllGoroutines()
	return nil
}
