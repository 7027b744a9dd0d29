package ttlcache

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func key(i int) Key { return sha256.Sum256(fmt.Appendf(nil, "k%d", i)) }

func TestGetPutExpiry(t *testing.T) {
	t.Parallel()
	c := New[string](100)
	now := time.Unix(1000, 0)
	c.Put(key(1), "a", now.Add(time.Second), now)
	c.Put(key(2), "b", now, now) // already expired: not stored
	tests := []struct {
		name string
		k    Key
		at   time.Time
		want string
		ok   bool
	}{
		{"fresh", key(1), now, "a", true},
		{"just before expiry", key(1), now.Add(time.Second - 1), "a", true},
		{"at expiry", key(1), now.Add(time.Second), "", false},
		{"never stored", key(2), now, "", false},
	}
	for _, tc := range tests {
		got, ok := c.Get(tc.k, tc.at)
		if got != tc.want || ok != tc.ok {
			t.Errorf("%s: got (%q, %v); want (%q, %v)", tc.name, got, ok, tc.want, tc.ok)
		}
	}
	if got := c.Len(); got != 1 {
		t.Errorf("Len: got %d; want 1", got)
	}
}

func TestBounded(t *testing.T) {
	t.Parallel()
	const max = 160
	c := New[int](max)
	now := time.Unix(1000, 0)
	for i := range 10 * max {
		c.Put(key(i), i, now.Add(time.Hour), now)
		if got := c.Len(); got > max {
			t.Fatalf("after %d inserts: Len %d; want at most %d", i+1, got, max)
		}
	}
	// The newest entry always survives its own insert.
	if v, ok := c.Get(key(10*max-1), now); !ok || v != 10*max-1 {
		t.Errorf("newest: got (%d, %v); want (%d, true)", v, ok, 10*max-1)
	}
}

func TestGroupCoalesces(t *testing.T) {
	t.Parallel()
	var g Group[int]
	var calls atomic.Int64
	release := make(chan struct{})
	started := make(chan struct{})
	var wg sync.WaitGroup
	results := make(chan int, 10)
	wg.Add(1)
	go func() {
		defer wg.Done()
		v, _, _ := g.Do(key(1), nil, nil, func() (int, error) {
			calls.Add(1)
			close(started)
			<-release
			return 42, nil
		})
		results <- v
	}()
	<-started
	for range 9 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			v, _, _ := g.Do(key(1), nil, nil, func() (int, error) { calls.Add(1); return 0, nil })
			results <- v
		}()
	}
	time.Sleep(20 * time.Millisecond) // let the waiters queue; correctness does not depend on it
	close(release)
	wg.Wait()
	close(results)
	for v := range results {
		if v != 42 && v != 0 {
			t.Errorf("result: got %d", v)
		}
	}
	if got := calls.Load(); got > 10 || got < 1 {
		t.Errorf("calls: got %d; want 1..10", got)
	}
}

func TestGroupStop(t *testing.T) {
	t.Parallel()
	var g Group[int]
	release := make(chan struct{})
	started := make(chan struct{})
	go g.Do(key(1), nil, nil, func() (int, error) { close(started); <-release; return 1, nil })
	<-started
	stop := make(chan struct{})
	close(stop)
	errStop := errors.New("stopped")
	_, err, shared := g.Do(key(1), stop, func() error { return errStop }, func() (int, error) { return 2, nil })
	close(release)
	if !errors.Is(err, errStop) || !shared {
		t.Errorf("got (%v, shared=%v); want (%v, true)", err, shared, errStop)
	}
}

func BenchmarkGetHit(b *testing.B) {
	c := New[int](10000)
	now := time.Unix(1000, 0)
	k := key(1)
	c.Put(k, 1, now.Add(time.Hour), now)
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := c.Get(k, now); !ok {
			b.Fatal("miss")
		}
	}
}
