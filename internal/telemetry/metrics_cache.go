package telemetry

import (
	"errors"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// Cache results counted by portunus_cache_requests_total.
const (
	CacheHit         = "hit"
	CacheMiss        = "miss"
	CacheStale       = "stale"
	CacheBypass      = "bypass"
	CacheRevalidated = "revalidated"
)

// CacheRecorder counts one route's cache outcomes:
// portunus_cache_requests_total{route,result}. Its counters are resolved
// at compile time, so Observe is one atomic add. A nil recorder records
// nothing.
type CacheRecorder struct {
	hit, miss, stale, bypass, revalidated prometheus.Counter
}

// Cache returns the recorder for route, registering the family on first
// use (a gateway without a cached route exports none).
func (m *Metrics) Cache(route string) *CacheRecorder {
	if m == nil {
		return nil
	}
	vec := registerOrGet(m, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "portunus_cache_requests_total",
		Help: "Response cache lookups, by route and result (hit, miss, stale, bypass, revalidated).",
	}, []string{"route", "result"}))
	if vec == nil {
		return nil
	}
	return &CacheRecorder{
		hit:         vec.WithLabelValues(route, CacheHit),
		miss:        vec.WithLabelValues(route, CacheMiss),
		stale:       vec.WithLabelValues(route, CacheStale),
		bypass:      vec.WithLabelValues(route, CacheBypass),
		revalidated: vec.WithLabelValues(route, CacheRevalidated),
	}
}

// Observe counts one outcome; unknown results are ignored.
func (c *CacheRecorder) Observe(result string) {
	if c == nil {
		return
	}
	switch result {
	case CacheHit:
		c.hit.Inc()
	case CacheMiss:
		c.miss.Inc()
	case CacheStale:
		c.stale.Inc()
	case CacheBypass:
		c.bypass.Inc()
	case CacheRevalidated:
		c.revalidated.Inc()
	}
}

func registerOrGet(m *Metrics, vec *prometheus.CounterVec) *prometheus.CounterVec {
	if err := m.Registry.Register(vec); err != nil {
		var are prometheus.AlreadyRegisteredError
		if !errors.As(err, &are) {
			return nil
		}
		existing, ok := are.ExistingCollector.(*prometheus.CounterVec)
		if !ok {
			return nil
		}
		return existing
	}
	return vec
}

// CacheStoreStats reads the in-process cache's size.
type CacheStoreStats func() (entries, bytes int64)

// cacheStoreCollector exports the in-process cache's size from whichever
// store is current (a changed cache_max_bytes builds a new one).
type cacheStoreCollector struct {
	src            atomic.Pointer[CacheStoreStats]
	entries, bytes *prometheus.Desc
	evictions      prometheus.Counter
}

func (c *cacheStoreCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.entries
	ch <- c.bytes
	c.evictions.Describe(ch)
}

func (c *cacheStoreCollector) Collect(ch chan<- prometheus.Metric) {
	var n, b int64
	if f := c.src.Load(); f != nil {
		n, b = (*f)()
	}
	ch <- prometheus.MustNewConstMetric(c.entries, prometheus.GaugeValue, float64(n))
	ch <- prometheus.MustNewConstMetric(c.bytes, prometheus.GaugeValue, float64(b))
	c.evictions.Collect(ch)
}

// CacheStore exports portunus_cache_entries, portunus_cache_bytes and
// portunus_cache_evictions_total for the in-process response cache and
// returns the function that counts one eviction. Call it when the store
// is built; the latest stats function wins.
func (m *Metrics) CacheStore(stats CacheStoreStats) (evicted func()) {
	if m == nil {
		return func() {}
	}
	c := &cacheStoreCollector{
		entries: prometheus.NewDesc("portunus_cache_entries", "Entries in the in-process response cache.", nil, nil),
		bytes:   prometheus.NewDesc("portunus_cache_bytes", "Bytes held by the in-process response cache (keys, headers and bodies, approximately).", nil, nil),
		evictions: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "portunus_cache_evictions_total",
			Help: "Entries the in-process response cache dropped to stay within store.memory.cache_max_bytes.",
		}),
	}
	if err := m.Registry.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if !errors.As(err, &are) {
			return func() {}
		}
		existing, ok := are.ExistingCollector.(*cacheStoreCollector)
		if !ok {
			return func() {}
		}
		c = existing
	}
	if stats != nil {
		c.src.Store(&stats)
	}
	return c.evictions.Inc
}
