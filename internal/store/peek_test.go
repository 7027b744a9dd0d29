package store

import (
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/portunus-gw/portunus/internal/config"
	"github.com/portunus-gw/portunus/internal/store/redistest"
)

// TestPeek reads buckets on both backends: an absent bucket is full, a
// used one shows what is left, and no number of peeks takes anything.
func TestPeek(t *testing.T) {
	t.Parallel()
	forBackends(t, func(t *testing.T, b backend) {
		ctx := ctxT(t)
		l := Limit{Rate: 3, Period: time.Hour}
		p, ok := b.s.(Peeker)
		if !ok {
			t.Fatalf("%T does not implement Peeker", b.s)
		}
		peek := func(step string, want Decision) {
			t.Helper()
			got, err := p.Peek(ctx, "k", l)
			if err != nil {
				t.Fatalf("%s: Peek: %v", step, err)
			}
			t.Logf("%s: %+v", step, got)
			checkDecision(t, 0, b.exact, false, got, want)
		}
		full := Decision{Allowed: true, Limit: 3, Remaining: 3}
		peek("absent", full)
		peek("absent again", full)
		for range 2 {
			if _, err := b.s.Allow(ctx, "k", l, 1); err != nil {
				t.Fatal(err)
			}
		}
		oneLeft := Decision{Allowed: true, Limit: 3, Remaining: 1, ResetAfter: 40 * time.Minute}
		for range 5 {
			peek("after two", oneLeft)
		}
		// The peeks took nothing: the third request is allowed and is the last.
		d, err := b.s.Allow(ctx, "k", l, 1)
		if err != nil || !d.Allowed || d.Remaining != 0 {
			t.Fatalf("third Allow after peeks: got %+v, %v; want allowed with 0 remaining", d, err)
		}
		peek("empty", Decision{Limit: 3, RetryAfter: 20 * time.Minute, ResetAfter: time.Hour})
	})
}

// TestPeekAgreesWithAllow walks a bucket through takes and refills on the
// fake clock: before each take, Peek says exactly what that take finds.
func TestPeekAgreesWithAllow(t *testing.T) {
	t.Parallel()
	clock := newFakeClock()
	m := NewMemory(MemoryOptions{Now: clock.Now})
	defer m.Close()
	ctx := ctxT(t)
	l := Limit{Rate: 4, Period: time.Minute, Burst: 6}
	steps := []time.Duration{0, 0, 0, 0, 0, 0, 0, 0, 7 * time.Second, 15 * time.Second, 0, 0, 31 * time.Second, 0, 2 * time.Minute, 0}
	for i, wait := range steps {
		clock.Advance(wait)
		pk, err := m.Peek(ctx, "w", l)
		if err != nil {
			t.Fatal(err)
		}
		got, err := m.Allow(ctx, "w", l, 1)
		if err != nil {
			t.Fatal(err)
		}
		if pk.Allowed != got.Allowed || pk.Limit != got.Limit {
			t.Errorf("step %d: peek allowed=%v limit=%d; the take found allowed=%v limit=%d", i, pk.Allowed, pk.Limit, got.Allowed, got.Limit)
		}
		if got.Allowed && pk.Remaining != got.Remaining+1 || !got.Allowed && (pk.Remaining != 0 || pk.RetryAfter != got.RetryAfter) {
			t.Errorf("step %d: peek %+v; take %+v: want remaining one more than after the take, or the same retry when refused", i, pk, got)
		}
		if !got.Allowed && pk.ResetAfter != got.ResetAfter {
			t.Errorf("step %d: peek reset_after %s; refused take %s", i, pk.ResetAfter, got.ResetAfter)
		}
	}
}

// TestPeekWritesNothing checks the keyspace: a peek creates no bucket and
// leaves an existing one's value and expiry as they were.
func TestPeekWritesNothing(t *testing.T) {
	t.Parallel()
	t.Run("redis", func(t *testing.T) {
		t.Parallel()
		addr := redistest.Start(t)
		prefix := redistest.KeyPrefix(t)
		r, err := NewRedis(config.RedisStore{Addresses: []string{addr}, KeyPrefix: prefix})
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		ctx := ctxT(t)
		l := Limit{Rate: 10, Period: time.Hour}
		if _, err := r.Peek(ctx, "absent", l); err != nil {
			t.Fatalf("Peek: %v", err)
		}
		if n, err := r.Client().Exists(ctx, prefix+"absent").Result(); err != nil || n != 0 {
			t.Errorf("EXISTS after peeking an absent bucket: got %d, %v; want 0", n, err)
		}
		if _, err := r.Allow(ctx, "b", l, 3); err != nil {
			t.Fatal(err)
		}
		before, err := r.Client().Get(ctx, prefix+"b").Result()
		if err != nil {
			t.Fatal(err)
		}
		// Shorten the expiry so a peek that rewrote the key (SET ... PX
		// would restore about 18 minutes) would show.
		if err := r.Client().PExpire(ctx, prefix+"b", time.Hour+time.Minute).Err(); err != nil {
			t.Fatal(err)
		}
		for range 3 {
			d, err := r.Peek(ctx, "b", l)
			if err != nil || d.Remaining != 7 || !d.Allowed {
				t.Fatalf("Peek: got %+v, %v; want allowed with 7 remaining", d, err)
			}
		}
		after, err := r.Client().Get(ctx, prefix+"b").Result()
		if err != nil || after != before {
			t.Errorf("bucket value: %q before, %q (%v) after peeks; want unchanged", before, after, err)
		}
		if ttl, err := r.Client().PTTL(ctx, prefix+"b").Result(); err != nil || ttl <= time.Hour {
			t.Errorf("bucket PTTL after peeks: %s, %v; want the hour and a minute set before (untouched)", ttl, err)
		}
	})
	t.Run("memory", func(t *testing.T) {
		t.Parallel()
		m := NewMemory(MemoryOptions{})
		defer m.Close()
		if _, err := m.Peek(ctxT(t), "absent", Limit{Rate: 1, Period: time.Second}); err != nil {
			t.Fatal(err)
		}
		sh := &m.shards[m.shardIndex("absent")]
		sh.mu.Lock()
		_, made := sh.buckets["absent"]
		sh.mu.Unlock()
		if made {
			t.Error("Peek created a bucket")
		}
	})
}

// TestPeekConcurrentWithAllow peeks hard while requests take: exactly the
// burst is still allowed.
func TestPeekConcurrentWithAllow(t *testing.T) {
	t.Parallel()
	forBackends(t, func(t *testing.T, b backend) {
		const burst, workers, each = 12, 8, 4
		ctx := ctxT(t)
		l := Limit{Rate: burst, Period: time.Hour}
		var allowed atomic.Int64
		var wg sync.WaitGroup
		errs := make(chan error, 2*workers*each)
		for range workers {
			wg.Go(func() {
				for range each {
					if _, err := Peek(ctx, b.s, "hot", l); err != nil {
						errs <- err
					}
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
			t.Fatalf("Peek/Allow: %v", err)
		}
		if got := allowed.Load(); got != burst {
			t.Errorf("got %d allowed; want exactly %d", got, burst)
		}
		d, err := Peek(ctx, b.s, "hot", l)
		if err != nil || d.Allowed || d.Remaining != 0 || d.RetryAfter <= 0 {
			t.Errorf("Peek of the exhausted bucket: got %+v, %v; want refused, 0 remaining, retry_after > 0", d, err)
		}
	})
}

// hidePeek is a Store without Peek, for the Allow(n = 0) fallback.
type hidePeek struct{ Store }

func TestPeekFallbackMatchesPeeker(t *testing.T) {
	t.Parallel()
	clock := newFakeClock()
	m := NewMemory(MemoryOptions{Now: clock.Now})
	defer m.Close()
	ctx := ctxT(t)
	l := Limit{Rate: 2, Period: time.Minute}
	for i := range 4 {
		direct, err1 := m.Peek(ctx, "f", l)
		viaAllow, err2 := Peek(ctx, hidePeek{m}, "f", l)
		if err1 != nil || err2 != nil || direct != viaAllow {
			t.Errorf("step %d: Peeker %+v (%v); fallback %+v (%v); want equal", i, direct, err1, viaAllow, err2)
		}
		if _, err := m.Allow(ctx, "f", l, 1); err != nil {
			t.Fatal(err)
		}
		clock.Advance(10 * time.Second)
	}
	if _, err := Peek(ctx, m, "f", Limit{}); err == nil {
		t.Error("Peek with a zero limit: got nil error; want one")
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Peek(ctx, "f", l); !errors.Is(err, ErrClosed) {
		t.Errorf("Peek on a closed store: got %v; want ErrClosed", err)
	}
}
