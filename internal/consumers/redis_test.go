package consumers

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/portunus-gw/portunus/internal/config"
	"github.com/portunus-gw/portunus/internal/store"
	"github.com/portunus-gw/portunus/internal/store/redistest"
)

func redisManager(t *testing.T, addr, prefix string) *Manager {
	t.Helper()
	st, err := store.NewRedis(config.RedisStore{Addresses: []string{addr}, KeyPrefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	m, err := OpenManager(ManagerOptions{Store: st, BcryptCost: 4, PollEvery: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close(); _ = st.Close() })
	return m
}

// waitFor polls cond for up to 10 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 10s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestRedisClaimsAcrossInstances: two instances racing for one username
// (and one consumer name) through the same Redis: exactly one wins.
func TestRedisClaimsAcrossInstances(t *testing.T) {
	t.Parallel()
	addr, prefix := redistest.Start(t), redistest.KeyPrefix(t)
	a, b := redisManager(t, addr, prefix), redisManager(t, addr, prefix)
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i, m := range []*Manager{a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = m.Create(ctx, nil, "t", "same", Profile{})
		}()
	}
	wg.Wait()
	if (errs[0] == nil) == (errs[1] == nil) {
		t.Fatalf("racing creates: %v / %v; want exactly one success", errs[0], errs[1])
	}
	if _, err := a.Create(ctx, nil, "t", "other", Profile{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "b sees other", func() bool { return b.Get("other") != nil && b.Get("same") != nil })
	if _, err := a.AddBasic(ctx, nil, "t", "same", "login", "pw", ""); err != nil {
		t.Fatal(err)
	}
	if _, err := b.AddBasic(ctx, nil, "t", "other", "login", "pw", ""); KindOf(err) != KindConflict {
		t.Errorf("username taken through another instance: %v; want conflict", err)
	}
}

// TestRedisSeedAfterDataLoss: a Redis restarted empty is restored from an
// instance's copy, by exactly one instance, and the others keep theirs.
func TestRedisSeedAfterDataLoss(t *testing.T) {
	t.Parallel()
	srv := redistest.StartServer(t)
	prefix := redistest.KeyPrefix(t)
	a, b := redisManager(t, srv.Addr(), prefix), redisManager(t, srv.Addr(), prefix)
	ctx := context.Background()
	if _, err := a.Create(ctx, nil, "t", "kept", Profile{}); err != nil {
		t.Fatal(err)
	}
	k, err := a.IssueKey(ctx, nil, "t", "kept", 0)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "b sees the key", func() bool { return b.Live().Load().Version() == a.Live().Load().Version() })
	srv.Restart()
	// Both keep serving from memory, and Redis gets the set back.
	dir, _ := New(nil)
	dir.WithRuntime(b.Live())
	if dir.ByAPIKey(k.Key) == nil {
		t.Error("the key stopped working while Redis restarted")
	}
	c := redisManager(t, srv.Addr(), prefix)
	waitFor(t, "a fresh instance reads the restored set", func() bool {
		if c.Get("kept") != nil {
			return true
		}
		c.reloadSoon()
		return false
	})
	if _, err := b.Create(ctx, nil, "t", "after", Profile{}); err != nil {
		t.Fatalf("write after the restart: %v", err)
	}
	waitFor(t, "a and c see the new one", func() bool { return a.Get("after") != nil && c.Get("after") != nil && a.Get("kept") != nil })
}
