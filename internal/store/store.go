// Package store is the seam through which Portunus keeps state that may be
// shared between instances: cached values, GCRA rate-limit buckets, quota
// counters and invalidation messages (key revocations, reloads, cache purges).
//
// Two implementations exist. Memory keeps everything in this process (one
// instance, the default); Redis keeps it in a Redis server, cluster or
// sentinel-managed master so that many instances share limits, cache
// entries and revocations. Both compute GCRA the same way, so a limit means
// the same thing whichever backend holds it; the shared test table in
// store_test.go pins that.
package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/portunus-gw/portunus/internal/config"
)

// ErrNotFound is returned by Get when the key is absent or has expired.
var ErrNotFound = errors.New("store: not found")

// ErrTooLarge is returned by Memory.Set when one value alone exceeds the
// store's byte budget.
var ErrTooLarge = errors.New("store: value larger than the store's byte budget")

// ErrClosed is returned by operations on a closed store.
var ErrClosed = errors.New("store: closed")

// Limit is a GCRA limit: Rate requests per Period, refilled smoothly, Burst
// at once. Burst 0 means Burst = Rate.
type Limit struct {
	Rate   int
	Period time.Duration
	Burst  int
}

// Decision is the outcome of one Allow call.
type Decision struct {
	Allowed bool
	// Limit is the burst capacity.
	Limit int
	// Remaining is how many requests are still allowed right now, after this one.
	Remaining int
	// RetryAfter, when refused, is the time until the request would be
	// allowed (> 0). Zero when allowed. A request for more than the burst
	// is never allowed; its RetryAfter is what it would need were the burst large enough.
	RetryAfter time.Duration
	// ResetAfter is the time until the bucket is full again.
	ResetAfter time.Duration
}

// Store is the shared-state seam. Implementations are safe for concurrent use.
type Store interface {
	// Get returns the value at key, or ErrNotFound when absent or expired.
	// The caller owns the returned slice.
	Get(ctx context.Context, key string) ([]byte, error)
	// Set stores value at key; ttl 0 means no expiry. The store copies value.
	Set(ctx context.Context, key string, value []byte, ttl time.Duration) error
	// Delete removes the keys; absent keys are not an error.
	Delete(ctx context.Context, keys ...string) error
	// Allow atomically takes n (usually 1) from the GCRA bucket at key.
	// n = 0 reads the bucket without changing it (Peek, in peek.go, also
	// says whether one more request would be allowed).
	Allow(ctx context.Context, key string, l Limit, n int) (Decision, error)
	// Incr atomically adds n (which may be negative) to the counter at key
	// and returns the new value. A missing counter starts at 0 and is given
	// expireAt as its expiry when it is created; later calls keep that
	// expiry. n = 0 reads the counter without creating it (0 when absent).
	// Counters live apart from Get/Set values: they are never evicted to
	// make room for cached values, only expired.
	Incr(ctx context.Context, key string, n int64, expireAt time.Time) (int64, error)
	// Publish sends msg to every subscriber of channel, in every instance
	// sharing the store. Delivery is at most once.
	Publish(ctx context.Context, channel string, msg []byte) error
	// Subscribe calls fn for every message published on channel until
	// cancel is called or the store is closed. ctx bounds only the setup.
	// fn is called from one goroutine per subscription, must return
	// quickly, and must not keep msg after it returns. fn(nil) means the
	// subscription was re-established after a lost connection: messages
	// published meanwhile are gone, so a subscriber that keeps state in
	// step with the channel must resynchronize.
	Subscribe(ctx context.Context, channel string, fn func(msg []byte)) (cancel func(), err error)
	// Ping reports whether the store is reachable.
	Ping(ctx context.Context) error
	// Close releases the store; it stops background work and subscriptions.
	Close() error
}

// Open builds the store cfg selects: memory (the default) or redis.
func Open(cfg config.Store) (Store, error) {
	switch cfg.Backend {
	case "", "memory":
		return NewMemory(MemoryOptions{MaxBytes: int64(cfg.Memory.CacheMaxBytes)}), nil
	case "redis":
		return NewRedis(cfg.Redis)
	default:
		return nil, fmt.Errorf("store: unknown backend %q (want memory or redis)", cfg.Backend)
	}
}
