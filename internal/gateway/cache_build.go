package gateway

import (
	"fmt"
	"time"

	"github.com/portunus-gw/portunus/internal/cache"
	"github.com/portunus-gw/portunus/internal/carry"
	"github.com/portunus-gw/portunus/internal/config"
	"github.com/portunus-gw/portunus/internal/pipeline"
	"github.com/portunus-gw/portunus/internal/store"
)

// defaultCacheWait bounds how long a request waits for a concurrent miss
// of the same key when the route has no timeout.
const defaultCacheWait = 10 * time.Second

// buildCache compiles a route's cache policy. Its backend follows
// store.backend: the shared Redis store, or one in-process cache bounded
// by store.memory.cache_max_bytes that every route shares and that is
// carried across reloads while that bound is unchanged.
func buildCache(cfg *config.Config, rc *config.Route, rt *Route, deps compileDeps) (pipeline.Middleware, error) {
	ca := rc.Cache
	backend, err := cacheBackend(cfg, deps)
	if err != nil {
		return nil, err
	}
	maxObj := int64(ca.MaxObjectBytes)
	if limit := int64(cfg.Store.Memory.CacheMaxBytes); cfg.Store.Backend != "redis" && limit > 0 && maxObj > limit {
		maxObj = limit
	}
	wait := defaultCacheWait
	if rc.Timeout != nil && rc.Timeout.D() > 0 {
		wait = rc.Timeout.D()
	}
	var rec cache.Recorder
	if r := deps.metrics.Cache(rc.Name); r != nil {
		rec = r
	}
	p := cache.New(cache.Options{
		Route:              rc.Name,
		TTL:                ca.TTL.D(),
		Vary:               ca.Vary,
		Query:              ca.Query,
		IgnoreQuery:        ca.IgnoreQuery,
		PerConsumer:        len(rc.Auth) > 0,
		HonorClientNoCache: ca.HonorClientNoCache,
		MaxObjectBytes:     maxObj,
		Wait:               wait,
		RefreshTimeout:     wait,
		Backend:            backend,
		Metrics:            rec,
		Log:                deps.logger(),
	})
	rt.cache = p
	return p.Middleware(), nil
}

func cacheBackend(cfg *config.Config, deps compileDeps) (cache.Backend, error) {
	if cfg.Store.Backend == "redis" {
		rs, ok := deps.store.(*store.Redis)
		if !ok {
			return nil, fmt.Errorf("store.backend is redis but the store is %T", deps.store)
		}
		// One wrapper per store, so a purge scans the shared keys once.
		return carry.Get(deps.build, carry.Key("response-cache-redis", "", cfg.Store), func() (*cache.Redis, error) {
			return cache.NewRedis(rs.Client(), rs.Prefix()), nil
		})
	}
	size := int64(cfg.Store.Memory.CacheMaxBytes)
	return carry.Get(deps.build, carry.Key("response-cache", "", size), func() (*cache.Memory, error) {
		evicted := deps.metrics.CacheStore(nil)
		m := cache.NewMemory(size, evicted)
		deps.metrics.CacheStore(func() (int64, int64) {
			st := m.Stats()
			return st.Entries, st.Bytes
		})
		return m, nil
	})
}
