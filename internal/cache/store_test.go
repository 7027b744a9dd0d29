package cache

import (
	"context"
	"fmt"
	"net/http"
	"reflect"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/portunus-gw/portunus/internal/store/redistest"
)

func sampleEntry() *Entry {
	return &Entry{
		Status:         200,
		Header:         http.Header{"Content-Type": {"text/plain"}, "Etag": {`"x"`}, "X-Multi": {"a", "b"}},
		Body:           []byte("hello"),
		ResponseTime:   time.Unix(1700000000, 123),
		InitialAge:     3 * time.Second,
		Lifetime:       time.Minute,
		SWR:            time.Second,
		SIE:            2 * time.Second,
		MustRevalidate: true,
		Shared:         true,
		Vary:           []string{"Accept"},
	}
}

func TestEntryRoundTrip(t *testing.T) {
	t.Parallel()
	e := sampleEntry()
	got, err := decodeEntry(e.encode())
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, e) {
		t.Fatalf("decode(encode(e)) = %+v; want %+v", got, e)
	}
	b := e.encode()
	for i := 0; i < len(b); i++ {
		if _, err := decodeEntry(b[:i]); err == nil {
			t.Fatalf("a %d-byte prefix of a %d-byte entry decoded; want an error", i, len(b))
		}
	}
}

func FuzzDecodeEntry(f *testing.F) {
	f.Add(sampleEntry().encode())
	f.Add([]byte{1})
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := decodeEntry(b)
		if err != nil {
			return
		}
		again, err := decodeEntry(e.encode())
		if err != nil || !reflect.DeepEqual(again.Body, e.Body) || again.Status != e.Status {
			t.Fatalf("re-encoding a decoded entry changed it: %v", err)
		}
	})
}

func TestMemoryStaysWithinBudget(t *testing.T) {
	t.Parallel()
	var evicted atomic.Int32
	m := NewMemory(64<<10, func() { evicted.Add(1) })
	defer m.Close()
	ctx := context.Background()
	body := make([]byte, 1000)
	for i := 0; i < 500; i++ {
		k := Key{Route: "r", Host: "h", Path: fmt.Sprintf("/%d", i)}
		_ = m.Set(ctx, k.String(), k.URLKey(), &Entry{Status: 200, Header: http.Header{}, Body: body}, time.Hour)
	}
	m.c.CleanUp()
	st := m.Stats()
	if st.Bytes > 64<<10 {
		t.Fatalf("weighted size %d; want at most %d", st.Bytes, 64<<10)
	}
	if st.Entries == 0 || st.Entries >= 500 {
		t.Fatalf("entries = %d; want some, fewer than 500", st.Entries)
	}
	if evicted.Load() == 0 {
		t.Fatal("no eviction was reported")
	}
}

// backends runs fn against the memory backend and a Redis backend on a
// real redis-server.
func backends(t *testing.T, fn func(t *testing.T, b Backend)) {
	t.Run("memory", func(t *testing.T) {
		t.Parallel()
		m := NewMemory(1<<20, nil)
		t.Cleanup(func() { _ = m.Close() })
		fn(t, m)
	})
	t.Run("redis", func(t *testing.T) {
		t.Parallel()
		addr := redistest.Start(t)
		c := redis.NewClient(&redis.Options{Addr: addr})
		t.Cleanup(func() { _ = c.Close() })
		fn(t, NewRedis(c, redistest.KeyPrefix(t)))
	})
}

func TestBackendPurge(t *testing.T) {
	t.Parallel()
	keys := []Key{
		{Route: "users", Host: "a.example", Path: "/v1/users/1", Query: "", Extra: "v="},
		{Route: "users", Host: "a.example", Path: "/v1/users/1", Query: "x=1", Extra: "v="},
		{Route: "users", Host: "b.example", Path: "/v1/users/2", Extra: "v="},
		{Route: "docs", Host: "a.example", Path: "/docs/*[weird]?", Extra: "v="},
	}
	for _, tc := range []struct {
		desc string
		sel  Selector
		left []int // indexes of keys that survive
	}{
		{"all", Selector{All: true}, nil},
		{"route", Selector{Route: "users"}, []int{3}},
		{"route with glob characters elsewhere", Selector{Route: "docs"}, []int{0, 1, 2}},
		{"path prefix", Selector{PathPrefix: "/v1/"}, []int{3}},
		{"one URL, any query form listed", Selector{Route: "users", Host: "a.example", Path: "/v1/users/1", Queries: []string{"x=1"}}, []int{0, 2, 3}},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			backends(t, func(t *testing.T, b Backend) {
				ctx := context.Background()
				for _, k := range keys {
					if err := b.Set(ctx, k.String(), k.URLKey(), &Entry{Status: 200, Header: http.Header{}}, time.Hour); err != nil {
						t.Fatal(err)
					}
				}
				n, err := b.Purge(ctx, tc.sel)
				if err != nil {
					t.Fatal(err)
				}
				if want := len(keys) - len(tc.left); n != want {
					t.Fatalf("purged %d; want %d", n, want)
				}
				for i, k := range keys {
					e, err := b.Get(ctx, k.String())
					if err != nil {
						t.Fatal(err)
					}
					survives := false
					for _, j := range tc.left {
						survives = survives || i == j
					}
					if (e != nil) != survives {
						t.Fatalf("key %d present = %v; want %v", i, e != nil, survives)
					}
				}
			})
		})
	}
}

func TestBackendInvalidateURL(t *testing.T) {
	t.Parallel()
	backends(t, func(t *testing.T, b Backend) {
		ctx := context.Background()
		a1 := Key{Route: "r1", Host: "h", Path: "/a", Query: "q=1", Extra: "v="}
		a2 := Key{Route: "r2", Host: "h", Path: "/a", Extra: "v=\x1ec=alice"}
		other := Key{Route: "r1", Host: "h", Path: "/b", Extra: "v="}
		for _, k := range []Key{a1, a2, other} {
			if err := b.Set(ctx, k.String(), k.URLKey(), sampleEntry(), time.Hour); err != nil {
				t.Fatal(err)
			}
		}
		if err := b.InvalidateURL(ctx, a1.URLKey()); err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct {
			k    Key
			want bool
		}{{a1, false}, {a2, false}, {other, true}} {
			e, err := b.Get(ctx, tc.k.String())
			if err != nil {
				t.Fatal(err)
			}
			if (e != nil) != tc.want {
				t.Fatalf("%q present = %v; want %v", tc.k.String(), e != nil, tc.want)
			}
		}
	})
}

func TestRedisEntriesExpire(t *testing.T) {
	t.Parallel()
	addr := redistest.Start(t)
	c := redis.NewClient(&redis.Options{Addr: addr})
	t.Cleanup(func() { _ = c.Close() })
	prefix := redistest.KeyPrefix(t)
	b := NewRedis(c, prefix)
	k := Key{Route: "r", Host: "h", Path: "/a"}
	if err := b.Set(context.Background(), k.String(), k.URLKey(), sampleEntry(), 90*time.Second); err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{b.entryKey(k.String()), b.urlKey(k.URLKey())} {
		ttl, err := c.PTTL(context.Background(), key).Result()
		if err != nil || ttl <= 0 || ttl > 90*time.Second {
			t.Fatalf("PTTL(%q) = %v, %v; want a TTL of at most 90s", key, ttl, err)
		}
	}
}
