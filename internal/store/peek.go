package store

import (
	"context"
	"time"

	"github.com/redis/go-redis/v9"
)

// Peeking reads a GCRA bucket without taking from it and without writing
// anything: no bucket is created, no TAT moved, no expiry touched. The
// admin API uses it to show rate-limit usage (GET /api/v1/rate-limits).

// Peeker is implemented by stores that can read a GCRA bucket without
// changing it. Memory and Redis implement it.
type Peeker interface {
	// Peek reports the bucket at key under l as the next request would
	// find it: Allowed is whether one request would be allowed now,
	// Remaining how many would be (none taken), RetryAfter the time
	// until one would be (0 when Allowed), ResetAfter the time until the
	// bucket is full again (0 when it is full or absent).
	Peek(ctx context.Context, key string, l Limit) (Decision, error)
}

// Peek reads the bucket at key through st without changing it. A store
// that does not implement Peeker is asked Allow with n = 0, which the
// Store contract makes a read as well; its Remaining is the same, and
// Allowed and RetryAfter are derived from it.
func Peek(ctx context.Context, st Store, key string, l Limit) (Decision, error) {
	if p, ok := st.(Peeker); ok {
		return p.Peek(ctx, key, l)
	}
	d, err := st.Allow(ctx, key, l, 0)
	if err != nil {
		return Decision{}, err
	}
	d.Allowed = d.Remaining > 0
	d.RetryAfter = 0
	if !d.Allowed {
		// As gcraPeek: the time until one interval has come back.
		p, err := resolveLimit(l, 0)
		if err != nil {
			return Decision{}, err
		}
		d.RetryAfter = d.ResetAfter + time.Duration(p.interval-p.offset)
		if d.RetryAfter <= 0 {
			d.RetryAfter = 1
		}
	}
	return d, nil
}

// gcraPeek is gcraStep for a request that is not made: what the next
// one-token request would find. tat is the stored TAT (0 when absent).
func gcraPeek(p gcraParams, now, tat int64) Decision {
	if tat < now {
		tat = now
	}
	ahead := tat - now // time taken from the bucket and not yet refilled
	d := Decision{Limit: int(p.burst), ResetAfter: time.Duration(ahead)}
	if rem := (p.offset - ahead) / p.interval; rem > 0 {
		d.Remaining = int(rem)
	}
	// One request is allowed when its push of one interval keeps the TAT
	// within burst intervals of now (gcraStep with n = 1).
	if wait := ahead + p.interval - p.offset; wait > 0 {
		d.RetryAfter = time.Duration(wait)
	} else {
		d.Allowed = true
	}
	return d
}

// Peek implements Peeker. It never creates, changes or expires a bucket.
func (m *Memory) Peek(_ context.Context, key string, l Limit) (Decision, error) {
	return m.PeekAt(key, l, m.now())
}

// PeekAt is Peek at now instead of the store's clock.
func (m *Memory) PeekAt(key string, l Limit, now time.Time) (Decision, error) {
	if m.closed.Load() {
		return Decision{}, ErrClosed
	}
	p, err := resolveLimit(l, 0)
	if err != nil {
		return Decision{}, err
	}
	sh := &m.shards[m.shardIndex(key)]
	sh.mu.Lock()
	var tat int64
	if b := sh.buckets[key]; b != nil {
		tat = *b
	}
	sh.mu.Unlock()
	return gcraPeek(p, now.UnixNano(), tat), nil
}

// peekScript is gcraPeek in Lua, on Redis's clock, in microseconds: it
// only reads (TIME and GET), so the bucket, its TTL and the keyspace stay
// as they were. KEYS[1] bucket; ARGV: emission interval µs, burst.
// Returns {allowed, remaining, retry_after_us, reset_after_us}.
var peekScript = redis.NewScript(`
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local offset = burst * interval
local tat = tonumber(redis.call('GET', KEYS[1]))
if tat == nil or tat < now then tat = now end
local ahead = tat - now
local rem = math.floor((offset - ahead) / interval)
if rem < 0 then rem = 0 end
local wait = ahead + interval - offset
if wait > 0 then return {0, rem, wait, ahead} end
return {1, rem, 0, ahead}
`)

// Peek implements Peeker with one read-only Lua script (EVALSHA, falling
// back to EVAL), so the reading agrees with Allow's clock and rounding.
func (r *Redis) Peek(ctx context.Context, key string, l Limit) (Decision, error) {
	p, err := resolveLimit(l, 0)
	if err != nil {
		return Decision{}, err
	}
	return r.runGCRA(ctx, peekScript, "peek", key, p)
}
