package store

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	SetClientLogger(nil) // the restart test makes the client log every failed dial
	goleak.VerifyTestMain(m)
}

func TestMemoryEvictsWithinBudget(t *testing.T) {
	t.Parallel()
	const budget = 64 << 10
	m := NewMemory(MemoryOptions{MaxBytes: budget})
	defer m.Close()
	ctx := context.Background()
	val := make([]byte, 1000)
	for i := range 500 { // ~530 KB offered to a 64 KiB budget
		key := fmt.Sprintf("k%03d", i)
		if err := m.Set(ctx, key, val, 0); err != nil {
			t.Fatalf("Set %s: %v", key, err)
		}
		if _, err := m.Get(ctx, key); err != nil {
			t.Fatalf("Get %s right after Set: got %v; want the value (the newest key is never the victim)", key, err)
		}
	}
	if got := m.UsedBytes(); got > budget {
		t.Errorf("got %d bytes used; want at most %d", got, budget)
	}
	if got := m.Len(); got == 0 || got >= 500 {
		t.Errorf("got %d entries kept; want some but not all 500", got)
	}
}

func TestMemoryTooLarge(t *testing.T) {
	t.Parallel()
	m := NewMemory(MemoryOptions{MaxBytes: 1024})
	defer m.Close()
	err := m.Set(context.Background(), "big", make([]byte, 2048), 0)
	if !errors.Is(err, ErrTooLarge) {
		t.Errorf("got %v; want ErrTooLarge", err)
	}
}

func TestMemorySweepDropsExpired(t *testing.T) {
	t.Parallel()
	clock := newFakeClock()
	m := NewMemory(MemoryOptions{Now: clock.Now, SweepInterval: time.Hour})
	defer m.Close()
	ctx := context.Background()
	_ = m.Set(ctx, "a", []byte("1"), time.Second)
	_ = m.Set(ctx, "b", []byte("2"), 0)
	_, _ = m.Allow(ctx, "bucket", Limit{Rate: 1, Period: time.Second}, 1)
	clock.Advance(2 * time.Second)
	m.sweep()
	if got := m.Len(); got != 1 {
		t.Errorf("got %d values after sweep; want 1", got)
	}
	sh := &m.shards[m.shardIndex("bucket")]
	sh.mu.Lock()
	_, ok := sh.buckets["bucket"]
	sh.mu.Unlock()
	if ok {
		t.Error("got the full bucket kept after sweep; want it dropped")
	}
	if got, want := m.UsedBytes(), int64(len("b")+1+itemOverhead); got != want {
		t.Errorf("got %d bytes accounted; want %d", got, want)
	}
}

func TestMemoryClosed(t *testing.T) {
	t.Parallel()
	m := NewMemory(MemoryOptions{})
	ctx := context.Background()
	got := make(chan []byte, 1)
	if _, err := m.Subscribe(ctx, "c", func(b []byte) { got <- b }); err != nil {
		t.Fatalf("Subscribe: %v", err)
	}
	if err := m.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := m.Close(); err != nil {
		t.Fatalf("second Close: got %v; want nil", err)
	}
	for name, err := range map[string]error{
		"Get":     func() error { _, err := m.Get(ctx, "k"); return err }(),
		"Set":     m.Set(ctx, "k", nil, 0),
		"Allow":   func() error { _, err := m.Allow(ctx, "k", Limit{Rate: 1, Period: time.Second}, 1); return err }(),
		"Publish": m.Publish(ctx, "c", []byte("x")),
		"Ping":    m.Ping(ctx),
	} {
		if !errors.Is(err, ErrClosed) {
			t.Errorf("%s after Close: got %v; want ErrClosed", name, err)
		}
	}
	if _, err := m.Subscribe(ctx, "c", func([]byte) {}); !errors.Is(err, ErrClosed) {
		t.Errorf("Subscribe after Close: got %v; want ErrClosed", err)
	}
}

func TestMemoryPublishBoundedByContext(t *testing.T) {
	t.Parallel()
	m := NewMemory(MemoryOptions{})
	defer m.Close()
	release := make(chan struct{})
	cancel, err := m.Subscribe(context.Background(), "slow", func([]byte) { <-release })
	if err != nil {
		t.Fatalf("Subscribe: %v", err)
	}
	defer cancel()
	defer close(release)
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	var pubErr error
	// The subscriber holds at most one message and its queue subscriberQueue
	// more, so the publish after those finds it full whatever the timing.
	for i := 0; i < subscriberQueue+2; i++ {
		if i == subscriberQueue {
			stop() // a full queue: the publisher must give up, not block
		}
		if pubErr = m.Publish(ctx, "slow", []byte("m")); pubErr != nil {
			break
		}
	}
	if !errors.Is(pubErr, context.Canceled) {
		t.Errorf("got %v publishing into a full queue with a cancelled context; want context.Canceled", pubErr)
	}
}

func BenchmarkMemoryAllow(b *testing.B) {
	m := NewMemory(MemoryOptions{})
	defer m.Close()
	l := Limit{Rate: 1_000_000_000, Period: time.Second}
	b.Run("one key", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			ctx := context.Background()
			for pb.Next() {
				_, _ = m.Allow(ctx, "hot", l, 1)
			}
		})
	})
	keys := make([]string, 1024)
	for i := range keys {
		keys[i] = fmt.Sprintf("client-%d", i)
	}
	b.Run("many keys", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			ctx := context.Background()
			i := 0
			for pb.Next() {
				_, _ = m.Allow(ctx, keys[i&1023], l, 1)
				i++
			}
		})
	})
}

func BenchmarkMemoryGet(b *testing.B) {
	m := NewMemory(MemoryOptions{})
	defer m.Close()
	ctx := context.Background()
	_ = m.Set(ctx, "k", make([]byte, 512), 0)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			_, _ = m.Get(ctx, "k")
		}
	})
}
