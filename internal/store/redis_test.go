package store

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/portunus-gw/portunus/internal/config"
	"github.com/portunus-gw/portunus/internal/store/redistest"
)

// TestRedisRecoversAfterRestart stops Redis under a live client: operations
// fail while it is down and work again once it is back, with the same client
// and the same subscription.
func TestRedisRecoversAfterRestart(t *testing.T) {
	t.Parallel()
	srv := redistest.StartServer(t)
	r, err := NewRedis(config.RedisStore{Addresses: []string{srv.Addr()}})
	if err != nil {
		t.Fatalf("NewRedis: %v", err)
	}
	defer r.Close()
	ctx := ctxT(t)
	got := make(chan string, 64)
	cancel, err := r.Subscribe(ctx, "reload", func(m []byte) {
		if m == nil {
			got <- "(re-subscribed)"
			return
		}
		got <- string(m)
	})
	if err != nil {
		t.Fatalf("Subscribe: %v", err)
	}
	defer cancel()
	if err := r.Set(ctx, "k", []byte("v"), 0); err != nil {
		t.Fatalf("Set before restart: %v", err)
	}

	srv.Stop()
	short, stop := context.WithTimeout(ctx, 5*time.Second)
	defer stop()
	if err := r.Ping(short); err == nil {
		t.Error("Ping while Redis is down: got nil; want an error")
	}
	if _, err := r.Allow(short, "lim", Limit{Rate: 1, Period: time.Hour}, 1); err == nil {
		t.Error("Allow while Redis is down: got nil; want an error")
	}
	if _, err := r.Get(short, "k"); err == nil || errors.Is(err, ErrNotFound) {
		t.Errorf("Get while Redis is down: got %v; want a connection error", err)
	}

	srv.Restart()
	waitFor(t, "Ping after restart", func() bool { return r.Ping(ctx) == nil })
	if _, err := r.Get(ctx, "k"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get after restart (nothing is persisted): got %v; want ErrNotFound", err)
	}
	// The script cache is empty after a restart: EVALSHA must fall back to EVAL.
	d, err := r.Allow(ctx, "lim", Limit{Rate: 1, Period: time.Hour}, 1)
	if err != nil || !d.Allowed {
		t.Errorf("Allow after restart: got %+v, %v; want allowed", d, err)
	}
	// The subscription re-subscribes by itself, says so (messages may
	// have been lost meanwhile), and hears again.
	resubscribed := false
	waitFor(t, "subscription after restart", func() bool {
		_ = r.Publish(ctx, "reload", []byte("again"))
		for {
			select {
			case m := <-got:
				if m == "(re-subscribed)" {
					resubscribed = true
					continue
				}
				return m == "again"
			case <-time.After(100 * time.Millisecond):
				return false
			}
		}
	})
	if !resubscribed {
		t.Error("the re-subscription after the restart was not reported as fn(nil)")
	}
}

func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not working after 20s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestRedisKeyPrefix(t *testing.T) {
	t.Parallel()
	addr := redistest.Start(t)
	prefix := redistest.KeyPrefix(t)
	r, err := NewRedis(config.RedisStore{Addresses: []string{addr}, KeyPrefix: prefix})
	if err != nil {
		t.Fatalf("NewRedis: %v", err)
	}
	defer r.Close()
	ctx := ctxT(t)
	if err := r.Set(ctx, "k", []byte("v"), time.Minute); err != nil {
		t.Fatalf("Set: %v", err)
	}
	if got, err := r.Client().Get(ctx, prefix+"k").Result(); err != nil || got != "v" {
		t.Errorf("raw GET %sk: got %q, %v; want \"v\"", prefix, got, err)
	}
	if _, err := r.Allow(ctx, "lim", Limit{Rate: 2, Period: time.Minute}, 1); err != nil {
		t.Fatalf("Allow: %v", err)
	}
	ttl, err := r.Client().PTTL(ctx, prefix+"lim").Result()
	if err != nil || ttl <= 0 || ttl > 30*time.Second {
		t.Errorf("bucket PTTL: got %s, %v; want in (0, 30s]: the bucket expires once full again", ttl, err)
	}
	if got := r.Prefix(); got != prefix {
		t.Errorf("Prefix: got %q; want %q", got, prefix)
	}
	r2, _ := NewRedis(config.RedisStore{Addresses: []string{addr}})
	defer r2.Close()
	if got := r2.Prefix(); got != DefaultKeyPrefix {
		t.Errorf("default Prefix: got %q; want %q", got, DefaultKeyPrefix)
	}
}

func TestNewRedisTLSCAFile(t *testing.T) {
	t.Parallel()
	cfg := config.RedisStore{Addresses: []string{"127.0.0.1:1"}}
	cfg.TLS.Enabled = true
	cfg.TLS.CAFile = t.TempDir() + "/missing.pem"
	if _, err := NewRedis(cfg); err == nil {
		t.Error("got nil error for a missing CA file; want one")
	}
}
