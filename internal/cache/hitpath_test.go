package cache

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/portunus-gw/portunus/internal/pipeline"
)

// keyLog is a backend that records the keys read and answers a marker
// at the keys listed in markers.
type keyLog struct {
	Backend
	gets    []string
	markers map[string]*Entry
}

func (k *keyLog) Get(_ context.Context, key string) (*Entry, error) {
	k.gets = append(k.gets, key)
	return k.markers[key], nil
}

// The keys the hit path builds in a buffer are the keys the store path
// writes (Key.String of baseKeys and variant), for every key shape.
func TestLookupKeysMatchStoredKeys(t *testing.T) {
	cases := []struct {
		name string
		o    Options
	}{
		{"plain", Options{}},
		{"vary", Options{Vary: []string{"accept-language", "X-Tenant"}}},
		{"consumer", Options{PerConsumer: true}},
		{"consumer and vary, sorted query", Options{PerConsumer: true, Vary: []string{"X-Tenant"}, Query: "sort", IgnoreQuery: []string{"utm"}}},
		{"ignored query", Options{Query: "ignore"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			log := &keyLog{markers: map[string]*Entry{}}
			tc.o.Route, tc.o.TTL, tc.o.Backend = "items", time.Minute, log
			p := New(tc.o)
			r := httptest.NewRequest("GET", "http://API.example.com:8080/v1/items?b=2&utm=x&a=1", nil)
			r.Header.Add("Accept-Language", " de ")
			r.Header.Add("Accept-Language", "en")
			r.Header.Set("X-Tenant", "t1")
			r.Header.Set("Accept-Encoding", "gzip, br")
			const path, consumer = "/v1/items", "alice"

			_, _, _ = p.lookup(r, path, consumer, &keyBuf{})
			want := []string{p.keyOf(r, path, consumer, keyRef{}).String()}
			if tc.o.PerConsumer {
				want = append(want, p.keyOf(r, path, consumer, keyRef{own: true}).String())
			}
			if !slices.Equal(log.gets, want) {
				t.Fatalf("keys read = %q; want %q", log.gets, want)
			}

			// A Vary marker at the last base key: the variant is read next.
			names := []string{"Accept-Encoding", "Accept-Language"}
			log.markers[want[len(want)-1]] = &Entry{Vary: names}
			log.gets = nil
			_, _, marker := p.lookup(r, path, consumer, &keyBuf{b: make([]byte, 0, 4)})
			if marker == nil {
				t.Fatal("marker not found")
			}
			vk := p.keyOf(r, path, consumer, keyRef{own: tc.o.PerConsumer, variant: true, names: names}).String()
			if got := log.gets[len(log.gets)-1]; got != vk {
				t.Fatalf("variant key read = %q; want %q", got, vk)
			}
		})
	}
}

// getBytes reads with a key in a buffer the caller then reuses: the
// stored keys must stay intact (otter keeps no reference to a read key).
func TestMemoryGetBytesKeepsNoReference(t *testing.T) {
	m := NewMemory(64<<20, nil)
	defer m.Close()
	ctx := context.Background()
	var keys []string
	for i := range 100 {
		k := Key{Route: "r", Host: "h", Path: fmt.Sprintf("/items/%d", i), Extra: "v="}
		keys = append(keys, k.String())
		if err := m.Set(ctx, k.String(), k.URLKey(), &Entry{Status: 200, Header: http.Header{}, Body: []byte{byte(i)}}, time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	buf := make([]byte, 0, 64)
	for round := range 3 {
		for i, k := range keys {
			buf = append(buf[:0], k...)
			e := m.getBytes(buf)
			if e == nil || e.Body[0] != byte(i) {
				t.Fatalf("round %d: getBytes(%q) = %v; want entry %d", round, k, e, i)
			}
			for j := range buf {
				buf[j] = 'x'
			}
		}
	}
	if m.getBytes([]byte("absent")) != nil {
		t.Fatal("getBytes of an absent key found an entry")
	}
	var got []string
	for k := range m.c.Keys() {
		got = append(got, k)
	}
	slices.Sort(got)
	slices.Sort(keys)
	if !slices.Equal(got, keys) {
		t.Fatalf("stored keys changed after reads:\n got %q\nwant %q", got, keys)
	}
}

func TestHitFields(t *testing.T) {
	e := &Entry{Lifetime: time.Hour, memo: &hitMemo{}}
	cases := []struct {
		age         time.Duration
		stale       bool
		wantAge     string
		wantStatus  string
		sameAsAbove bool
	}{
		{5 * time.Second, false, "5", "portunus; hit; ttl=3595", false},
		{5*time.Second + 900*time.Millisecond, false, "5", "portunus; hit; ttl=3594", false},
		{5*time.Second + 950*time.Millisecond, false, "5", "portunus; hit; ttl=3594", true},
		{700 * time.Second, false, "700", "portunus; hit; ttl=2900", false},
		{700*time.Second + time.Millisecond, false, "700", "portunus; hit; ttl=2899", false},
		{3610 * time.Second, true, "3610", "portunus; hit; ttl=-10; detail=stale-while-revalidate", false},
		{3610*time.Second + 500*time.Millisecond, true, "3610", "portunus; hit; ttl=-10; detail=stale-while-revalidate", true},
	}
	var prevAge, prevStatus []string
	for _, tc := range cases {
		ageV, st := e.hitFields(tc.age, tc.stale)
		if len(ageV) != 1 || ageV[0] != tc.wantAge || len(st) != 1 || st[0] != tc.wantStatus {
			t.Fatalf("hitFields(%v, %v) = %q, %q; want %q, %q", tc.age, tc.stale, ageV, st, tc.wantAge, tc.wantStatus)
		}
		if cap(ageV) != 1 || cap(st) != 1 {
			t.Fatalf("hitFields(%v): caps %d, %d; want clipped values", tc.age, cap(ageV), cap(st))
		}
		if prevStatus != nil {
			if shared := &st[0] == &prevStatus[0] && &ageV[0] == &prevAge[0]; shared != tc.sameAsAbove {
				t.Fatalf("hitFields(%v): values shared with the previous hit = %v; want %v", tc.age, shared, tc.sameAsAbove)
			}
		}
		prevAge, prevStatus = ageV, st
	}
	// Without a memo (entries read from Redis) the values are the same.
	noMemo := &Entry{Lifetime: time.Hour}
	if ageV, st := noMemo.hitFields(700*time.Second, false); ageV[0] != "700" || st[0] != "portunus; hit; ttl=2900" {
		t.Fatalf("hitFields without memo = %q, %q", ageV, st)
	}
}

// A layer outside the cache that appends to the Age or Cache-Status of a
// hit must not change what later hits send.
func TestHitFieldValuesStayShared(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC) // every hit in one second: one memo
	p := New(Options{Route: "r", TTL: time.Hour, Backend: NewMemory(64<<20, nil), Now: func() time.Time { return now }})
	h := p.Middleware()(func(w http.ResponseWriter, r *http.Request, s *pipeline.State) {
		_, _ = w.Write([]byte("ok"))
	})
	r := httptest.NewRequest("GET", "http://api.example.com/a", nil)
	h(httptest.NewRecorder(), r, &pipeline.State{})
	for i := range 3 {
		w := httptest.NewRecorder()
		h(w, r, &pipeline.State{})
		if got := w.Header()["Cache-Status"]; len(got) != 1 || !strings.HasPrefix(got[0], "portunus; hit; ttl=") {
			t.Fatalf("hit %d: Cache-Status = %q", i, got)
		}
		if got := w.Header()["Age"]; len(got) != 1 || got[0] != "0" {
			t.Fatalf("hit %d: Age = %q", i, got)
		}
		w.Header().Add("Cache-Status", "outer; hit")
		w.Header().Add("Age", "1")
		w.Header().Add("Content-Length", "9")
	}
}

// A hit on the memory backend allocates nothing in the policy: plain
// routes, routes with vary headers and auth, and Vary variants.
func TestHitAllocations(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector makes sync.Pool drop buffers")
	}
	cases := []struct {
		name string
		o    Options
		vary string // the upstream's Vary
	}{
		{"plain", Options{}, ""},
		{"vary and consumer", Options{Vary: []string{"X-Tenant"}, PerConsumer: true}, ""},
		{"response vary", Options{}, "Accept-Language"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.o.Route, tc.o.TTL, tc.o.Backend = "r", time.Hour, NewMemory(64<<20, nil)
			p := New(tc.o)
			h := p.Middleware()(func(w http.ResponseWriter, r *http.Request, s *pipeline.State) {
				w.Header().Set("Content-Type", "application/json")
				if tc.vary != "" {
					w.Header().Set("Vary", tc.vary)
				}
				_, _ = w.Write([]byte(`{"id":42}`))
			})
			r := httptest.NewRequest("GET", "http://api.example.com/v1/items/42?x=1", nil)
			r.Header.Set("X-Tenant", "t1")
			r.Header.Set("Accept-Language", "de")
			s := &pipeline.State{Path: "/v1/items/42", Consumer: "alice"}
			h(httptest.NewRecorder(), r, s)
			w := &benchWriter{h: http.Header{}}
			allocs := testing.AllocsPerRun(100, func() {
				clear(w.h)
				h(w, r, s)
			})
			if got := w.h.Get("Cache-Status"); !strings.HasPrefix(got, "portunus; hit") {
				t.Fatalf("Cache-Status = %q; want a hit", got)
			}
			if allocs != 0 {
				t.Fatalf("a hit allocates %v times; want 0", allocs)
			}
		})
	}
}
