package cache

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// Redis is the shared backend: every instance on one Redis sees the same
// entries, each a string with its own TTL. Keys are
// <prefix>cache:e:<key>; <prefix>cache:u:<urlKey> is a set of the entry
// keys of one URL, for invalidation by unsafe requests.
type Redis struct {
	c      redis.UniversalClient
	prefix string
}

// NewRedis uses client with the store's key prefix.
func NewRedis(client redis.UniversalClient, prefix string) *Redis {
	return &Redis{c: client, prefix: prefix}
}

func (r *Redis) entryKey(key string) string { return r.prefix + "cache:e:" + key }
func (r *Redis) urlKey(u string) string     { return r.prefix + "cache:u:" + u }

// Get implements Backend.
func (r *Redis) Get(ctx context.Context, key string) (*Entry, error) {
	b, err := r.c.Get(ctx, r.entryKey(key)).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("cache: redis get: %w", err)
	}
	e, err := decodeEntry(b)
	if err != nil {
		return nil, err
	}
	return e, nil
}

// Set implements Backend: the entry, and its key in the URL's index set,
// whose expiry only grows (PEXPIRE GT) so it outlives every member.
func (r *Redis) Set(ctx context.Context, key, urlKey string, e *Entry, ttl time.Duration) error {
	uk := r.urlKey(urlKey)
	_, err := r.c.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.Set(ctx, r.entryKey(key), e.encode(), ttl)
		p.SAdd(ctx, uk, key)
		ms := max(ttl.Milliseconds(), 1)
		p.Do(ctx, "PEXPIRE", uk, ms, "NX") // a new set gets an expiry
		p.Do(ctx, "PEXPIRE", uk, ms, "GT") // an existing one only grows
		return nil
	})
	if err != nil {
		return fmt.Errorf("cache: redis set: %w", err)
	}
	return nil
}

// Delete implements Backend: the entry, and its key in its URL's set.
func (r *Redis) Delete(ctx context.Context, key string) error {
	_, err := r.c.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.Del(ctx, r.entryKey(key))
		if k, ok := parseKey(key); ok {
			p.SRem(ctx, r.urlKey(k.URLKey()), key)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("cache: redis delete: %w", err)
	}
	return nil
}

// InvalidateURL implements Backend.
func (r *Redis) InvalidateURL(ctx context.Context, urlKey string) error {
	uk := r.urlKey(urlKey)
	keys, err := r.c.SMembers(ctx, uk).Result()
	if err != nil {
		return fmt.Errorf("cache: redis invalidate: %w", err)
	}
	_, err = r.c.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, k := range keys {
			p.Del(ctx, r.entryKey(k))
		}
		p.Del(ctx, uk)
		return nil
	})
	if err != nil {
		return fmt.Errorf("cache: redis invalidate: %w", err)
	}
	return nil
}

// Purge implements Backend by SCANning entry keys (on every master in
// cluster mode). A route purge narrows the scan with a MATCH prefix.
func (r *Redis) Purge(ctx context.Context, sel Selector) (int, error) {
	pattern := globEscape(r.prefix+"cache:e:") + "*"
	if sel.Route != "" && !sel.All {
		pattern = globEscape(r.entryKey(sel.Route+sep)) + "*"
	}
	strip := len(r.entryKey(""))
	// In cluster mode the scan runs on every master at once: the count is
	// shared, and every master's error is kept.
	var total atomic.Int64
	var (
		mu   sync.Mutex
		errs []error
	)
	fail := func(err error) {
		mu.Lock()
		errs = append(errs, err)
		mu.Unlock()
	}
	scan := func(ctx context.Context, c redis.Cmdable) error {
		it := c.Scan(ctx, 0, pattern, 1000).Iterator()
		var batch []string
		flush := func() error {
			if len(batch) == 0 {
				return nil
			}
			n, err := c.Del(ctx, batch...).Result()
			total.Add(n)
			batch = batch[:0]
			return err
		}
		for it.Next(ctx) {
			full := it.Val()
			if len(full) < strip {
				continue
			}
			if k, ok := parseKey(full[strip:]); ok && sel.match(k) {
				batch = append(batch, full)
				if len(batch) == 200 {
					if err := flush(); err != nil {
						return err
					}
				}
			}
		}
		if err := it.Err(); err != nil {
			return err
		}
		return flush()
	}
	if cc, ok := r.c.(*redis.ClusterClient); ok {
		// Keys of one batch may hash to different slots: delete one by
		// one, through the cluster client (it follows MOVED). A failed
		// DEL ends that master's scan; the others go on.
		err := cc.ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error {
			it := c.Scan(ctx, 0, pattern, 1000).Iterator()
			for it.Next(ctx) {
				full := it.Val()
				if k, ok := parseKey(full[min(strip, len(full)):]); ok && sel.match(k) {
					n, err := cc.Del(ctx, full).Result()
					if err != nil {
						err = fmt.Errorf("%s: %w", c.Options().Addr, err)
						fail(err)
						return err
					}
					total.Add(n)
				}
			}
			if err := it.Err(); err != nil {
				err = fmt.Errorf("%s: %w", c.Options().Addr, err)
				fail(err)
				return err
			}
			return nil
		})
		if err != nil && len(errs) == 0 {
			fail(err) // the cluster state could not be loaded
		}
	} else if err := scan(ctx, r.c); err != nil {
		fail(err)
	}
	if len(errs) > 0 {
		return int(total.Load()), fmt.Errorf("cache: redis purge: %w", errors.Join(errs...))
	}
	return int(total.Load()), nil
}

// globEscape quotes the SCAN MATCH metacharacters in s.
func globEscape(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '*', '?', '[', ']', '\\':
			b.WriteByte('\\')
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
