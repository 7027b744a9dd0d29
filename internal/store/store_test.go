package store

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/portunus-gw/portunus/internal/config"
	"github.com/portunus-gw/portunus/internal/store/redistest"
)

// The tests in this file run the same tables against Memory (fake clock,
// exact values) and Redis (a throwaway redis-server, real clock).

type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{now: time.Unix(1_700_000_000, 0)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

type backend struct {
	name string
	s    Store
	// wait lets time pass: the fake clock advances, a real backend sleeps.
	wait func(time.Duration)
	// exact is true when no time passes between calls (fake clock).
	exact bool
}

func memoryBackend(t *testing.T) backend {
	t.Helper()
	clock := newFakeClock()
	m := NewMemory(MemoryOptions{Now: clock.Now})
	t.Cleanup(func() { _ = m.Close() })
	return backend{name: "memory", s: m, wait: clock.Advance, exact: true}
}

func redisBackend(t *testing.T) backend {
	t.Helper()
	addr := redistest.Start(t)
	r, err := NewRedis(config.RedisStore{Addresses: []string{addr}, KeyPrefix: redistest.KeyPrefix(t)})
	if err != nil {
		t.Fatalf("NewRedis: %v", err)
	}
	t.Cleanup(func() { _ = r.Close() })
	return backend{name: "redis", s: r, wait: time.Sleep}
}

// forBackends runs fn as a parallel subtest per backend.
func forBackends(t *testing.T, fn func(t *testing.T, b backend)) {
	t.Helper()
	for _, be := range []struct {
		name string
		mk   func(*testing.T) backend
	}{{"memory", memoryBackend}, {"redis", redisBackend}} {
		t.Run(be.name, func(t *testing.T) {
			t.Parallel()
			fn(t, be.mk(t))
		})
	}
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

type gcraStepCase struct {
	key  string        // default "k"
	wait time.Duration // before the call
	n    int           // default 1; -1 means 0 (peek)
	want Decision
}

var gcraCases = []struct {
	name  string
	limit Limit
	// slow cases use rates so slow that refill during the test cannot
	// matter, so a real backend must give the same counts and durations
	// within a small slack; fast ones need real time to pass.
	fast  bool
	steps []gcraStepCase
}{
	{
		name:  "burst then refuse",
		limit: Limit{Rate: 3, Period: time.Hour},
		steps: []gcraStepCase{
			{want: Decision{Allowed: true, Limit: 3, Remaining: 2, ResetAfter: 20 * time.Minute}},
			{want: Decision{Allowed: true, Limit: 3, Remaining: 1, ResetAfter: 40 * time.Minute}},
			{want: Decision{Allowed: true, Limit: 3, Remaining: 0, ResetAfter: time.Hour}},
			{want: Decision{Allowed: false, Limit: 3, Remaining: 0, RetryAfter: 20 * time.Minute, ResetAfter: time.Hour}},
			{want: Decision{Allowed: false, Limit: 3, Remaining: 0, RetryAfter: 20 * time.Minute, ResetAfter: time.Hour}},
		},
	},
	{
		name:  "burst larger than rate",
		limit: Limit{Rate: 2, Period: time.Hour, Burst: 5},
		steps: []gcraStepCase{
			{n: 5, want: Decision{Allowed: true, Limit: 5, Remaining: 0, ResetAfter: 150 * time.Minute}},
			{want: Decision{Allowed: false, Limit: 5, Remaining: 0, RetryAfter: 30 * time.Minute, ResetAfter: 150 * time.Minute}},
		},
	},
	{
		name:  "n greater than one",
		limit: Limit{Rate: 10, Period: time.Hour},
		steps: []gcraStepCase{
			{n: 4, want: Decision{Allowed: true, Limit: 10, Remaining: 6, ResetAfter: 24 * time.Minute}},
			{n: 7, want: Decision{Allowed: false, Limit: 10, Remaining: 6, RetryAfter: 6 * time.Minute, ResetAfter: 24 * time.Minute}},
			{n: 6, want: Decision{Allowed: true, Limit: 10, Remaining: 0, ResetAfter: time.Hour}},
		},
	},
	{
		name:  "n larger than burst never allowed",
		limit: Limit{Rate: 5, Period: time.Hour},
		steps: []gcraStepCase{
			{n: 6, want: Decision{Allowed: false, Limit: 5, Remaining: 5, RetryAfter: 12 * time.Minute}},
			{want: Decision{Allowed: true, Limit: 5, Remaining: 4, ResetAfter: 12 * time.Minute}},
		},
	},
	{
		name:  "n zero peeks without taking",
		limit: Limit{Rate: 4, Period: time.Hour},
		steps: []gcraStepCase{
			{want: Decision{Allowed: true, Limit: 4, Remaining: 3, ResetAfter: 15 * time.Minute}},
			{n: -1, want: Decision{Allowed: true, Limit: 4, Remaining: 3, ResetAfter: 15 * time.Minute}},
			{want: Decision{Allowed: true, Limit: 4, Remaining: 2, ResetAfter: 30 * time.Minute}},
		},
	},
	{
		name:  "different keys independent",
		limit: Limit{Rate: 1, Period: time.Hour},
		steps: []gcraStepCase{
			{key: "a", want: Decision{Allowed: true, Limit: 1, Remaining: 0, ResetAfter: time.Hour}},
			{key: "a", want: Decision{Allowed: false, Limit: 1, Remaining: 0, RetryAfter: time.Hour, ResetAfter: time.Hour}},
			{key: "b", want: Decision{Allowed: true, Limit: 1, Remaining: 0, ResetAfter: time.Hour}},
		},
	},
	{
		name:  "smooth refill",
		limit: Limit{Rate: 1, Period: 2 * time.Second, Burst: 2},
		fast:  true,
		steps: []gcraStepCase{
			{want: Decision{Allowed: true, Limit: 2, Remaining: 1, ResetAfter: 2 * time.Second}},
			{want: Decision{Allowed: true, Limit: 2, Remaining: 0, ResetAfter: 4 * time.Second}},
			{want: Decision{Allowed: false, Limit: 2, Remaining: 0, RetryAfter: 2 * time.Second, ResetAfter: 4 * time.Second}},
			// one interval later exactly one request has come back
			{wait: 2 * time.Second, want: Decision{Allowed: true, Limit: 2, Remaining: 0, ResetAfter: 4 * time.Second}},
		},
	},
	{
		name:  "full again after reset",
		limit: Limit{Rate: 1, Period: 2 * time.Second, Burst: 2},
		fast:  true,
		steps: []gcraStepCase{
			{n: 2, want: Decision{Allowed: true, Limit: 2, Remaining: 0, ResetAfter: 4 * time.Second}},
			{wait: 4 * time.Second, want: Decision{Allowed: true, Limit: 2, Remaining: 1, ResetAfter: 2 * time.Second}},
		},
	},
}

func TestAllowGCRA(t *testing.T) {
	t.Parallel()
	forBackends(t, func(t *testing.T, b backend) {
		for _, tc := range gcraCases {
			t.Run(tc.name, func(t *testing.T) {
				t.Parallel()
				ctx := ctxT(t)
				for i, st := range tc.steps {
					if st.wait > 0 {
						// A real clock may run a little past the wait; a few
						// milliseconds more never change an "allowed".
						b.wait(st.wait + map[bool]time.Duration{true: 0, false: 20 * time.Millisecond}[b.exact])
					}
					key := tc.name + "/" + st.key
					n := st.n
					switch n {
					case 0:
						n = 1
					case -1:
						n = 0
					}
					got, err := b.s.Allow(ctx, key, tc.limit, n)
					if err != nil {
						t.Fatalf("step %d: Allow: %v", i, err)
					}
					checkDecision(t, i, b.exact, tc.fast, got, st.want)
				}
			})
		}
	})
}

// checkDecision compares exactly on a fake clock. On a real clock time
// passes between calls: durations may be a little shorter (slack 5s), and in
// fast cases only what refill cannot undo is checked.
func checkDecision(t *testing.T, step int, exact, fast bool, got, want Decision) {
	t.Helper()
	if exact {
		if got != want {
			t.Errorf("step %d: got %+v; want %+v", step, got, want)
		}
		return
	}
	if got.Allowed != want.Allowed || got.Limit != want.Limit {
		t.Errorf("step %d: got allowed=%v limit=%d; want allowed=%v limit=%d", step, got.Allowed, got.Limit, want.Allowed, want.Limit)
	}
	const slack = 5 * time.Second
	durOK := func(g, w time.Duration) bool { return g <= w && (fast || g >= w-slack) }
	if !durOK(got.RetryAfter, want.RetryAfter) || !durOK(got.ResetAfter, want.ResetAfter) {
		t.Errorf("step %d: got retry_after=%s reset_after=%s; want %s and %s (minus up to %s)", step, got.RetryAfter, got.ResetAfter, want.RetryAfter, want.ResetAfter, slack)
	}
	if fast && got.Remaining < want.Remaining || !fast && got.Remaining != want.Remaining {
		t.Errorf("step %d: got remaining=%d; want %d", step, got.Remaining, want.Remaining)
	}
	if got.Allowed && got.RetryAfter != 0 || !got.Allowed && got.RetryAfter <= 0 {
		t.Errorf("step %d: got retry_after=%s with allowed=%v; want 0 when allowed, > 0 when refused", step, got.RetryAfter, got.Allowed)
	}
}

func TestAllowRejectsBadLimits(t *testing.T) {
	t.Parallel()
	forBackends(t, func(t *testing.T, b backend) {
		for _, tc := range []struct {
			name string
			l    Limit
			n    int
		}{
			{"zero rate", Limit{Rate: 0, Period: time.Second}, 1},
			{"zero period", Limit{Rate: 1}, 1},
			{"negative burst", Limit{Rate: 1, Period: time.Second, Burst: -1}, 1},
			{"negative n", Limit{Rate: 1, Period: time.Second}, -1},
		} {
			if _, err := b.s.Allow(ctxT(t), "bad", tc.l, tc.n); err == nil {
				t.Errorf("%s: got nil error; want one", tc.name)
			}
		}
	})
}

func TestAllowConcurrentExactlyBurst(t *testing.T) {
	t.Parallel()
	forBackends(t, func(t *testing.T, b backend) {
		const burst, workers, each = 20, 16, 5
		ctx := ctxT(t)
		l := Limit{Rate: burst, Period: time.Hour}
		var allowed atomic.Int64
		var wg sync.WaitGroup
		errs := make(chan error, workers*each)
		for range workers {
			wg.Go(func() {
				for range each {
					d, err := b.s.Allow(ctx, "hot", l, 1)
					if err != nil {
						errs <- err
						return
					}
					if d.Allowed {
						allowed.Add(1)
					}
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatalf("Allow: %v", err)
		}
		if got := allowed.Load(); got != burst {
			t.Errorf("got %d allowed of %d; want exactly %d", got, workers*each, burst)
		}
	})
}

func TestGetSetDelete(t *testing.T) {
	t.Parallel()
	forBackends(t, func(t *testing.T, b backend) {
		ctx := ctxT(t)
		if _, err := b.s.Get(ctx, "missing"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("Get missing: got %v; want ErrNotFound", err)
		}
		val := []byte("hello")
		if err := b.s.Set(ctx, "k1", val, 0); err != nil {
			t.Fatalf("Set: %v", err)
		}
		val[0] = 'J' // the store must have copied
		got, err := b.s.Get(ctx, "k1")
		if err != nil || string(got) != "hello" {
			t.Fatalf("Get k1: got %q, %v; want \"hello\", nil", got, err)
		}
		if err := b.s.Set(ctx, "k1", []byte("again"), time.Hour); err != nil {
			t.Fatalf("Set overwrite: %v", err)
		}
		if got, _ := b.s.Get(ctx, "k1"); string(got) != "again" {
			t.Errorf("Get after overwrite: got %q; want \"again\"", got)
		}
		if err := b.s.Set(ctx, "k2", []byte("two"), 0); err != nil {
			t.Fatalf("Set k2: %v", err)
		}
		if err := b.s.Delete(ctx, "k1", "k2", "never-set"); err != nil {
			t.Fatalf("Delete: %v", err)
		}
		for _, k := range []string{"k1", "k2"} {
			if _, err := b.s.Get(ctx, k); !errors.Is(err, ErrNotFound) {
				t.Errorf("Get %s after Delete: got %v; want ErrNotFound", k, err)
			}
		}
		if err := b.s.Delete(ctx); err != nil {
			t.Errorf("Delete of nothing: got %v; want nil", err)
		}
		if err := b.s.Ping(ctx); err != nil {
			t.Errorf("Ping: got %v; want nil", err)
		}
	})
}

func TestTTLExpires(t *testing.T) {
	t.Parallel()
	forBackends(t, func(t *testing.T, b backend) {
		ctx := ctxT(t)
		if err := b.s.Set(ctx, "short", []byte("x"), 100*time.Millisecond); err != nil {
			t.Fatalf("Set: %v", err)
		}
		if err := b.s.Set(ctx, "long", []byte("y"), time.Hour); err != nil {
			t.Fatalf("Set: %v", err)
		}
		// Wait until "short" is gone; on a real clock poll with a generous bound.
		deadline := time.Now().Add(10 * time.Second)
		for {
			b.wait(100 * time.Millisecond)
			_, err := b.s.Get(ctx, "short")
			if errors.Is(err, ErrNotFound) {
				break
			}
			if err != nil {
				t.Fatalf("Get short: %v", err)
			}
			if time.Now().After(deadline) {
				t.Fatal("got value for \"short\" 10s after its 100ms TTL; want ErrNotFound")
			}
		}
		if got, err := b.s.Get(ctx, "long"); err != nil || string(got) != "y" {
			t.Errorf("Get long: got %q, %v; want \"y\", nil", got, err)
		}
	})
}

func TestPublishSubscribe(t *testing.T) {
	t.Parallel()
	forBackends(t, func(t *testing.T, b backend) {
		ctx := ctxT(t)
		first := make(chan string, 16)
		second := make(chan string, 16)
		cancel1, err := b.s.Subscribe(ctx, "revocations", func(m []byte) { first <- string(m) })
		if err != nil {
			t.Fatalf("Subscribe: %v", err)
		}
		cancel2, err := b.s.Subscribe(ctx, "revocations", func(m []byte) { second <- string(m) })
		if err != nil {
			t.Fatalf("Subscribe: %v", err)
		}
		defer cancel2()
		other := make(chan string, 16)
		cancel3, err := b.s.Subscribe(ctx, "other", func(m []byte) { other <- string(m) })
		if err != nil {
			t.Fatalf("Subscribe: %v", err)
		}
		defer cancel3()

		buf := []byte("key-1")
		if err := b.s.Publish(ctx, "revocations", buf); err != nil {
			t.Fatalf("Publish: %v", err)
		}
		copy(buf, "XXXXX") // a publisher may reuse its buffer
		for name, ch := range map[string]chan string{"first": first, "second": second} {
			if got := receive(t, ch); got != "key-1" {
				t.Errorf("%s subscriber: got %q; want \"key-1\"", name, got)
			}
		}

		cancel1()
		cancel1() // idempotent
		if err := b.s.Publish(ctx, "revocations", []byte("key-2")); err != nil {
			t.Fatalf("Publish: %v", err)
		}
		if got := receive(t, second); got != "key-2" {
			t.Errorf("second subscriber: got %q; want \"key-2\"", got)
		}
		if err := b.s.Publish(ctx, "other", []byte("o")); err != nil {
			t.Fatalf("Publish: %v", err)
		}
		if got := receive(t, other); got != "o" {
			t.Errorf("other channel: got %q; want \"o\"", got)
		}
		select {
		case m := <-first:
			t.Errorf("cancelled subscriber got %q; want nothing", m)
		default:
		}
		if len(other) != 0 || len(second) != 0 {
			t.Errorf("got %d extra messages on other, %d on second; want none crossing channels", len(other), len(second))
		}
	})
}

func receive(t *testing.T, ch <-chan string) string {
	t.Helper()
	select {
	case m := <-ch:
		return m
	case <-time.After(10 * time.Second):
		t.Fatal("no message within 10s")
		return ""
	}
}

func TestOpen(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		cfg     config.Store
		wantErr bool
		want    string
	}{
		{name: "default is memory", cfg: config.Store{}, want: "*store.Memory"},
		{name: "memory", cfg: config.Store{Backend: "memory"}, want: "*store.Memory"},
		{name: "redis", cfg: config.Store{Backend: "redis", Redis: config.RedisStore{Addresses: []string{"127.0.0.1:1"}}}, want: "*store.Redis"},
		{name: "redis without address", cfg: config.Store{Backend: "redis"}, wantErr: true},
		{name: "unknown backend", cfg: config.Store{Backend: "etcd"}, wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s, err := Open(tc.cfg)
			if tc.wantErr {
				if err == nil {
					_ = s.Close()
					t.Fatal("got nil error; want one")
				}
				return
			}
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			defer s.Close()
			if got := fmt.Sprintf("%T", s); got != tc.want {
				t.Errorf("got %s; want %s", got, tc.want)
			}
		})
	}
}
