package store

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"runtime"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"

	"github.com/portunus-gw/portunus/internal/config"
)

// Connection settings. The store sits on the request path (every rate-limited
// request makes one round trip), so it fails fast rather than queueing:
// a request waiting on an unreachable Redis is worse than the fail_open /
// fail_closed decision its caller makes on error.
const (
	redisDialTimeout  = 2 * time.Second        // a healthy LAN dial takes < 1ms
	redisReadTimeout  = 500 * time.Millisecond // GCRA and GET answer in well under 1ms
	redisWriteTimeout = 500 * time.Millisecond
	redisPoolTimeout  = time.Second // waiting for a free pooled connection
	redisMaxRetries   = 1           // one retry on a broken pooled connection, no more
	redisDialRetries  = 1           // one dial attempt per operation: a down Redis is reported at once
	redisMinIdle      = 2
	redisPoolPerCPU   = 10 // pool size = 10 x GOMAXPROCS, the go-redis default, made explicit
	redisSubQueue     = 256
)

// DefaultKeyPrefix is put before every key when config.RedisStore.KeyPrefix is empty.
const DefaultKeyPrefix = "portunus:"

// gcraScript is the Redis twin of gcraStep (gcra.go), in microseconds and
// on Redis's own clock (TIME), so every instance sharing the server agrees
// on "now". KEYS[1] bucket; ARGV: emission interval µs, burst, n.
// Returns {allowed, remaining, retry_after_us, reset_after_us}.
// The TAT is stored with %.0f so large numbers keep every digit, and the
// key expires by itself once the bucket is full again.
var gcraScript = redis.NewScript(`
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local n = tonumber(ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local offset = burst * interval
local tat = tonumber(redis.call('GET', KEYS[1]))
if tat == nil or tat < now then tat = now end
local nxt = tat + n * interval
local diff = now - (nxt - offset)
if diff < 0 then
  local rem = math.floor((offset - (tat - now)) / interval)
  if rem < 0 then rem = 0 end
  return {0, rem, -diff, tat - now}
end
if n > 0 then
  local ttl = math.ceil((nxt - now) / 1000)
  if ttl < 1 then ttl = 1 end
  redis.call('SET', KEYS[1], string.format('%.0f', nxt), 'PX', ttl)
end
return {1, math.floor(diff / interval), 0, nxt - now}
`)

// incrScript is Incr: INCRBY and, when the counter is created, PEXPIREAT,
// as one atomic step so a counter never exists without its expiry.
// KEYS[1] counter; ARGV: n, expiry in unix milliseconds. n = 0 on a missing
// counter reads 0 without creating it.
var incrScript = redis.NewScript(`
local n = tonumber(ARGV[1])
if redis.call('EXISTS', KEYS[1]) == 0 then
  if n == 0 then return 0 end
  local v = redis.call('INCRBY', KEYS[1], n)
  redis.call('PEXPIREAT', KEYS[1], ARGV[2])
  return v
end
return redis.call('INCRBY', KEYS[1], n)
`)

// Redis is the Store backed by a Redis server, cluster or sentinel-managed
// master. Every key and channel is prefixed with the configured key prefix.
type Redis struct {
	client redis.UniversalClient
	prefix string

	mu     sync.Mutex
	subs   map[*redis.PubSub]struct{}
	closed bool
	wg     sync.WaitGroup
}

// NewRedis builds the client from cfg. It does not dial: the pool connects
// lazily, so a Redis that is down at start is reported by Ping and by the
// first operations, and the store recovers by itself once Redis is back.
func NewRedis(cfg config.RedisStore) (*Redis, error) {
	if len(cfg.Addresses) == 0 {
		return nil, errors.New("store: redis needs at least one address")
	}
	opts := &redis.UniversalOptions{
		Addrs:           cfg.Addresses,
		MasterName:      cfg.SentinelMaster,
		IsClusterMode:   cfg.Cluster,
		Password:        cfg.Password,
		DB:              cfg.DB,
		DialTimeout:     redisDialTimeout,
		ReadTimeout:     redisReadTimeout,
		WriteTimeout:    redisWriteTimeout,
		PoolTimeout:     redisPoolTimeout,
		DialerRetries:   redisDialRetries,
		MaxRetries:      redisMaxRetries,
		PoolSize:        redisPoolPerCPU * runtime.GOMAXPROCS(0),
		MinIdleConns:    redisMinIdle,
		DisableIdentity: true, // no CLIENT SETINFO: older servers refuse it
		// Respect the caller's context deadline rather than only the fixed timeouts.
		ContextTimeoutEnabled: true,
		// No maintenance-notification handshake: plain OSS Redis does not know it.
		MaintNotificationsConfig: &maintnotifications.Config{Mode: maintnotifications.ModeDisabled},
	}
	if cfg.SentinelMaster != "" {
		// The sentinels usually share the master's password in simple setups.
		opts.SentinelPassword = cfg.Password
	}
	if cfg.TLS.Enabled {
		tc := &tls.Config{MinVersion: tls.VersionTLS12}
		if cfg.TLS.CAFile != "" {
			pem, err := os.ReadFile(cfg.TLS.CAFile)
			if err != nil {
				return nil, fmt.Errorf("store: redis tls ca_file: %w", err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("store: redis tls ca_file %s: no PEM certificates", cfg.TLS.CAFile)
			}
			tc.RootCAs = pool
		}
		if !cfg.Cluster && cfg.SentinelMaster == "" {
			if host, _, err := net.SplitHostPort(cfg.Addresses[0]); err == nil {
				tc.ServerName = host
			}
		}
		opts.TLSConfig = tc
	}
	prefix := cfg.KeyPrefix
	if prefix == "" {
		prefix = DefaultKeyPrefix
	}
	return &Redis{
		client: redis.NewUniversalClient(opts),
		prefix: prefix,
		subs:   make(map[*redis.PubSub]struct{}),
	}, nil
}

// Client exposes the underlying client for packages that need a command the
// Store interface does not have. Keys they write must use Prefix().
func (r *Redis) Client() redis.UniversalClient { return r.client }

// Prefix is the key prefix every key of this store carries.
func (r *Redis) Prefix() string { return r.prefix }

// Get implements Store.
func (r *Redis) Get(ctx context.Context, key string) ([]byte, error) {
	b, err := r.client.Get(ctx, r.prefix+key).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("store: redis get: %w", err)
	}
	return b, nil
}

// Set implements Store.
func (r *Redis) Set(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	if ttl < 0 {
		ttl = 0
	}
	if err := r.client.Set(ctx, r.prefix+key, value, ttl).Err(); err != nil {
		return fmt.Errorf("store: redis set: %w", err)
	}
	return nil
}

// Delete implements Store. Several keys go as one pipeline of single-key
// DELs, which works in cluster mode where keys live in different slots.
func (r *Redis) Delete(ctx context.Context, keys ...string) error {
	switch len(keys) {
	case 0:
		return nil
	case 1:
		if err := r.client.Del(ctx, r.prefix+keys[0]).Err(); err != nil {
			return fmt.Errorf("store: redis delete: %w", err)
		}
		return nil
	}
	_, err := r.client.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, k := range keys {
			p.Del(ctx, r.prefix+k)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: redis delete: %w", err)
	}
	return nil
}

// Allow implements Store with one atomic Lua script (EVALSHA, falling back
// to EVAL when the server does not have it cached, e.g. after a restart).
func (r *Redis) Allow(ctx context.Context, key string, l Limit, n int) (Decision, error) {
	p, err := resolveLimit(l, n)
	if err != nil {
		return Decision{}, err
	}
	return r.runGCRA(ctx, gcraScript, "allow", key, p, n)
}

// runGCRA runs a GCRA script (the decision, or the read-only peek) on key
// and reads its four-value reply: allowed, remaining, retry-after and
// reset-after in microseconds. n is passed when the script takes it.
func (r *Redis) runGCRA(ctx context.Context, script *redis.Script, op, key string, p gcraParams, n ...int) (Decision, error) {
	intervalUS := p.interval / int64(time.Microsecond)
	if intervalUS < 1 {
		intervalUS = 1
	}
	args := append(make([]any, 0, 3), intervalUS, p.burst)
	for _, v := range n {
		args = append(args, v)
	}
	res, err := script.Run(ctx, r.client, []string{r.prefix + key}, args...).Int64Slice()
	if err != nil {
		return Decision{}, fmt.Errorf("store: redis %s: %w", op, err)
	}
	if len(res) != 4 {
		return Decision{}, fmt.Errorf("store: redis %s: unexpected reply of %d values", op, len(res))
	}
	return Decision{
		Allowed:    res[0] == 1,
		Limit:      int(p.burst),
		Remaining:  int(res[1]),
		RetryAfter: time.Duration(res[2]) * time.Microsecond,
		ResetAfter: time.Duration(res[3]) * time.Microsecond,
	}, nil
}

// Incr implements Store with one atomic Lua script. The expiry is an
// absolute time on this instance's clock.
func (r *Redis) Incr(ctx context.Context, key string, n int64, expireAt time.Time) (int64, error) {
	v, err := incrScript.Run(ctx, r.client, []string{r.prefix + key}, n, expireAt.UnixMilli()).Int64()
	if err != nil {
		return 0, fmt.Errorf("store: redis incr: %w", err)
	}
	return v, nil
}

// Publish implements Store.
func (r *Redis) Publish(ctx context.Context, channel string, msg []byte) error {
	if err := r.client.Publish(ctx, r.prefix+channel, msg).Err(); err != nil {
		return fmt.Errorf("store: redis publish: %w", err)
	}
	return nil
}

// Subscribe implements Store. It returns once Redis confirmed the
// subscription. go-redis re-subscribes by itself after a lost connection;
// messages published while disconnected are lost (Redis pub/sub is at most
// once), so each re-subscription is reported as fn(nil).
func (r *Redis) Subscribe(ctx context.Context, channel string, fn func(msg []byte)) (func(), error) {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil, ErrClosed
	}
	r.mu.Unlock()

	ps := r.client.Subscribe(ctx, r.prefix+channel)
	if _, err := ps.Receive(ctx); err != nil { // the subscription confirmation
		_ = ps.Close()
		return nil, fmt.Errorf("store: redis subscribe: %w", err)
	}
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		_ = ps.Close()
		return nil, ErrClosed
	}
	r.subs[ps] = struct{}{}
	r.wg.Add(1)
	r.mu.Unlock()

	// The first confirmation was read above; any later one is go-redis
	// subscribing again on a new connection.
	ch := ps.ChannelWithSubscriptions(redis.WithChannelSize(redisSubQueue))
	go func() {
		defer r.wg.Done()
		for m := range ch { // closed by ps.Close
			switch m := m.(type) {
			case *redis.Message:
				fn([]byte(m.Payload))
			case *redis.Subscription:
				if m.Kind == "subscribe" {
					fn(nil)
				}
			}
		}
	}()
	var once sync.Once
	return func() {
		once.Do(func() {
			r.mu.Lock()
			delete(r.subs, ps)
			r.mu.Unlock()
			_ = ps.Close()
		})
	}, nil
}

// Ping implements Store.
func (r *Redis) Ping(ctx context.Context) error {
	if err := r.client.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("store: redis ping: %w", err)
	}
	return nil
}

// Close ends every subscription, waits for their goroutines and closes the client.
func (r *Redis) Close() error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil
	}
	r.closed = true
	subs := r.subs
	r.subs = nil
	r.mu.Unlock()
	for ps := range subs {
		_ = ps.Close()
	}
	r.wg.Wait()
	return r.client.Close()
}
