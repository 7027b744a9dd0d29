package store

import (
	"sync"
	"testing"
	"time"

	"github.com/portunus-gw/portunus/internal/config"
	"github.com/portunus-gw/portunus/internal/store/redistest"
)

func TestIncr(t *testing.T) {
	t.Parallel()
	type step struct {
		key  string // default "c"
		n    int64
		want int64
	}
	cases := []struct {
		name  string
		steps []step
	}{
		{name: "counts up from zero", steps: []step{{n: 1, want: 1}, {n: 1, want: 2}, {n: 5, want: 7}}},
		{name: "zero reads without creating", steps: []step{{n: 0, want: 0}, {n: 0, want: 0}, {n: 2, want: 2}, {n: 0, want: 2}}},
		{name: "negative takes back", steps: []step{{n: 3, want: 3}, {n: -1, want: 2}, {n: -2, want: 0}}},
		{name: "keys independent", steps: []step{{n: 4, want: 4}, {key: "d", n: 1, want: 1}, {n: 0, want: 4}, {key: "d", n: 0, want: 1}}},
	}
	forBackends(t, func(t *testing.T, b backend) {
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				ctx := ctxT(t)
				exp := time.Now().Add(time.Hour)
				if m, ok := b.s.(*Memory); ok {
					exp = m.now().Add(time.Hour)
				}
				for i, s := range tc.steps {
					key := s.key
					if key == "" {
						key = "c"
					}
					key = "incr:" + tc.name + ":" + key
					got, err := b.s.Incr(ctx, key, s.n, exp)
					if err != nil {
						t.Fatalf("step %d: Incr: %v", i, err)
					}
					if got != s.want {
						t.Errorf("step %d: Incr(%s, %d): got %d; want %d", i, key, s.n, got, s.want)
					}
				}
			})
		}
	})
}

// TestIncrExpiry pins that the expiry is set when the counter is created and
// is not moved by later calls, and that an expired counter starts again at 0.
func TestIncrExpiry(t *testing.T) {
	t.Parallel()
	forBackends(t, func(t *testing.T, b backend) {
		ctx := ctxT(t)
		now := time.Now()
		if m, ok := b.s.(*Memory); ok {
			now = m.now()
		}
		ttl := 400 * time.Millisecond
		if _, err := b.s.Incr(ctx, "e", 1, now.Add(ttl)); err != nil {
			t.Fatalf("Incr: %v", err)
		}
		// A later call with a far expiry must not extend the first one.
		if got, err := b.s.Incr(ctx, "e", 1, now.Add(time.Hour)); err != nil || got != 2 {
			t.Fatalf("second Incr: got %d, %v; want 2", got, err)
		}
		b.wait(ttl + 300*time.Millisecond)
		if got, err := b.s.Incr(ctx, "e", 0, now.Add(time.Hour)); err != nil || got != 0 {
			t.Errorf("read after expiry: got %d, %v; want 0", got, err)
		}
		if got, err := b.s.Incr(ctx, "e", 1, time.Now().Add(time.Hour)); err != nil || got != 1 {
			t.Errorf("Incr after expiry: got %d, %v; want 1 (a fresh counter)", got, err)
		}
	})
}

func TestIncrConcurrentExact(t *testing.T) {
	t.Parallel()
	forBackends(t, func(t *testing.T, b backend) {
		const workers, each = 16, 25
		ctx := ctxT(t)
		exp := time.Now().Add(time.Hour)
		if m, ok := b.s.(*Memory); ok {
			exp = m.now().Add(time.Hour)
		}
		var wg sync.WaitGroup
		errs := make(chan error, workers)
		for range workers {
			wg.Go(func() {
				for range each {
					if _, err := b.s.Incr(ctx, "hot", 1, exp); err != nil {
						errs <- err
						return
					}
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatalf("Incr: %v", err)
		}
		if got, err := b.s.Incr(ctx, "hot", 0, exp); err != nil || got != workers*each {
			t.Errorf("got %d, %v; want exactly %d", got, err, workers*each)
		}
	})
}

func TestRedisIncrKeyPrefixAndExpiry(t *testing.T) {
	t.Parallel()
	addr := redistest.Start(t)
	prefix := redistest.KeyPrefix(t)
	r, err := NewRedis(config.RedisStore{Addresses: []string{addr}, KeyPrefix: prefix})
	if err != nil {
		t.Fatalf("NewRedis: %v", err)
	}
	defer r.Close()
	ctx := ctxT(t)
	if _, err := r.Incr(ctx, "q", 0, time.Now().Add(time.Minute)); err != nil {
		t.Fatalf("Incr 0: %v", err)
	}
	if n, err := r.Client().Exists(ctx, prefix+"q").Result(); err != nil || n != 0 {
		t.Errorf("EXISTS after a read of a missing counter: got %d, %v; want 0", n, err)
	}
	if _, err := r.Incr(ctx, "q", 3, time.Now().Add(time.Minute)); err != nil {
		t.Fatalf("Incr: %v", err)
	}
	if got, err := r.Client().Get(ctx, prefix+"q").Result(); err != nil || got != "3" {
		t.Errorf("raw GET %sq: got %q, %v; want \"3\"", prefix, got, err)
	}
	ttl, err := r.Client().PTTL(ctx, prefix+"q").Result()
	if err != nil || ttl <= 0 || ttl > time.Minute {
		t.Errorf("counter PTTL: got %s, %v; want in (0, 1m]", ttl, err)
	}
}

func TestMemoryIncrSweptAndDeleted(t *testing.T) {
	t.Parallel()
	clock := newFakeClock()
	m := NewMemory(MemoryOptions{Now: clock.Now})
	defer m.Close()
	ctx := ctxT(t)
	if _, err := m.Incr(ctx, "a", 1, clock.Now().Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Incr(ctx, "b", 1, clock.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	clock.Advance(2 * time.Minute)
	m.sweep()
	counters := 0
	for i := range m.shards {
		counters += len(m.shards[i].counters)
	}
	if counters != 1 {
		t.Errorf("counters after sweep: got %d; want 1 (the expired one dropped)", counters)
	}
	if err := m.Delete(ctx, "b"); err != nil {
		t.Fatal(err)
	}
	if got, _ := m.Incr(ctx, "b", 0, time.Time{}); got != 0 {
		t.Errorf("after Delete: got %d; want 0", got)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Incr(ctx, "b", 1, clock.Now().Add(time.Hour)); err != ErrClosed {
		t.Errorf("Incr on closed store: got %v; want ErrClosed", err)
	}
}
