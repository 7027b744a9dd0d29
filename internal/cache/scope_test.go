package cache

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/portunus-gw/portunus/internal/store/redistest"
)

// scopeOrigin answers the first request with a public ETag'd answer
// ("shared"), a conditional request for it with a 304 carrying cc, and
// any other request with a full answer for its consumer carrying cc.
func scopeOrigin(f *fixture, first, cc string) {
	f.origin.set(func(w http.ResponseWriter, r *http.Request, call int) {
		if call == 1 {
			w.Header().Set("Cache-Control", first)
			w.Header().Set("ETag", `"v1"`)
			_, _ = w.Write([]byte("shared"))
			return
		}
		w.Header().Set("Cache-Control", cc)
		w.Header().Set("ETag", `"v1"`)
		if r.Header.Get("If-None-Match") == `"v1"` {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		_, _ = w.Write([]byte("for " + r.Header.Get("X-Test-Consumer")))
	})
}

func isHit(a answer) bool { return strings.HasPrefix(a.header.Get("Cache-Status"), "portunus; hit") }

// A shared entry revalidated for alice whose 304 takes back `public` (or
// s-maxage) is no longer shared: bob is never served it, and alice's
// copy is kept (or not) as the store path would keep a fresh answer with
// the merged fields.
func TestRevalidationLosingPublicIsNotShared(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		first, cc string
		// aliceKeeps: the merged answer is stored for alice alone.
		aliceKeeps bool
	}{
		{"public, max-age=10", "max-age=60", true},
		{"s-maxage=10", "max-age=60", true},
		{"public, max-age=10", "private, max-age=60", false},
		{"public, max-age=10", "no-store", false},
	} {
		for _, store := range []string{"memory", "redis"} {
			t.Run(store+": "+tc.first+" then "+tc.cc, func(t *testing.T) {
				t.Parallel()
				o := Options{PerConsumer: true}
				if store == "redis" {
					o.Backend = redisBackend(t)
				}
				f := newFixture(t, o)
				scopeOrigin(f, tc.first, tc.cc)
				f.get("/a", "X-Test-Consumer", "alice")
				f.clock.Advance(30 * time.Second)
				a := f.get("/a", "X-Test-Consumer", "alice")
				wantStatus(t, a, 200, "portunus; fwd=stale; fwd-status=304")
				if a.body != "shared" || a.header.Get("Cache-Control") != tc.cc {
					t.Fatalf("alice got %q Cache-Control %q; want the stored body with the 304's %q", a.body, a.header.Get("Cache-Control"), tc.cc)
				}
				f.wantCalls(2)
				b := f.get("/a", "X-Test-Consumer", "bob")
				if isHit(b) || b.body != "for bob" {
					t.Fatalf("bob got %q (%s); want his own answer from the upstream", b.body, b.header.Get("Cache-Status"))
				}
				f.wantCalls(3)
				a = f.get("/a", "X-Test-Consumer", "alice")
				if tc.aliceKeeps {
					wantStatus(t, a, 200, "portunus; hit; ttl=60")
					if a.body != "shared" {
						t.Fatalf("alice's own entry = %q; want the revalidated body", a.body)
					}
					f.wantCalls(3)
				} else {
					if isHit(a) || a.body != "for alice" {
						t.Fatalf("alice got %q (%s); want the upstream's answer, nothing stored", a.body, a.header.Get("Cache-Status"))
					}
					f.wantCalls(4)
				}
			})
		}
	}
}

// redisBackend is a Redis backend on a real redis-server of its own.
func redisBackend(t *testing.T) Backend {
	addr := redistest.Start(t)
	c := redis.NewClient(&redis.Options{Addr: addr})
	t.Cleanup(func() { _ = c.Close() })
	return NewRedis(c, redistest.KeyPrefix(t))
}

// A 304 that keeps the answer public keeps it shared.
func TestRevalidationKeepingPublicStaysShared(t *testing.T) {
	t.Parallel()
	for _, cc := range []string{"public, max-age=60", "s-maxage=60"} {
		t.Run(cc, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, Options{PerConsumer: true})
			scopeOrigin(f, "public, max-age=10", cc)
			f.get("/a", "X-Test-Consumer", "alice")
			f.clock.Advance(30 * time.Second)
			wantStatus(t, f.get("/a", "X-Test-Consumer", "alice"), 200, "portunus; fwd=stale; fwd-status=304")
			b := f.get("/a", "X-Test-Consumer", "bob")
			wantStatus(t, b, 200, "portunus; hit; ttl=60")
			if b.body != "shared" {
				t.Fatalf("bob got %q; want the shared entry", b.body)
			}
			f.wantCalls(2)
		})
	}
}

// An entry alice kept for herself that a 304 makes public is shared from
// then on, as a fresh public answer would be.
func TestRevalidationGainingPublicIsShared(t *testing.T) {
	t.Parallel()
	f := newFixture(t, Options{PerConsumer: true})
	scopeOrigin(f, "max-age=10", "public, max-age=60")
	f.get("/a", "X-Test-Consumer", "alice")
	f.clock.Advance(30 * time.Second)
	wantStatus(t, f.get("/a", "X-Test-Consumer", "alice"), 200, "portunus; fwd=stale; fwd-status=304")
	b := f.get("/a", "X-Test-Consumer", "bob")
	wantStatus(t, b, 200, "portunus; hit; ttl=60")
	wantStatus(t, f.get("/a", "X-Test-Consumer", "alice"), 200, "portunus; hit; ttl=60")
	f.wantCalls(2)
}

// The same holds for an entry kept under a Vary variant: the revalidated
// answer moves to alice's own key with its marker, and bob's request
// with the same header values is not served it.
func TestRevalidationLosingPublicIsNotSharedWithVary(t *testing.T) {
	t.Parallel()
	f := newFixture(t, Options{PerConsumer: true})
	f.origin.set(func(w http.ResponseWriter, r *http.Request, call int) {
		w.Header().Set("Vary", "Accept-Language")
		w.Header().Set("ETag", `"v1"`)
		if call == 1 {
			w.Header().Set("Cache-Control", "public, max-age=10")
			_, _ = w.Write([]byte("shared"))
			return
		}
		w.Header().Set("Cache-Control", "max-age=60")
		if r.Header.Get("If-None-Match") == `"v1"` {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		_, _ = w.Write([]byte("for " + r.Header.Get("X-Test-Consumer")))
	})
	f.get("/a", "X-Test-Consumer", "alice", "Accept-Language", "de")
	f.clock.Advance(30 * time.Second)
	wantStatus(t, f.get("/a", "X-Test-Consumer", "alice", "Accept-Language", "de"), 200, "portunus; fwd=stale; fwd-status=304")
	b := f.get("/a", "X-Test-Consumer", "bob", "Accept-Language", "de")
	if isHit(b) || b.body != "for bob" {
		t.Fatalf("bob got %q (%s); want his own answer from the upstream", b.body, b.header.Get("Cache-Status"))
	}
	a := f.get("/a", "X-Test-Consumer", "alice", "Accept-Language", "de")
	wantStatus(t, a, 200, "portunus; hit; ttl=60")
	if a.body != "shared" {
		t.Fatalf("alice's own entry = %q; want the revalidated body", a.body)
	}
	f.wantCalls(3)
}

// A shared entry without validators refetched for alice, whose new answer
// is hers alone, is replaced: bob goes upstream, and alice is served her
// own new entry instead of refetching past the old shared one.
func TestRefetchLosingPublicDropsSharedEntry(t *testing.T) {
	t.Parallel()
	for _, cc := range []string{"max-age=60", "private, max-age=60", "no-store"} {
		t.Run(cc, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, Options{PerConsumer: true})
			f.origin.set(func(w http.ResponseWriter, r *http.Request, call int) {
				if call == 1 {
					w.Header().Set("Cache-Control", "public, max-age=10, stale-if-error=600")
					_, _ = w.Write([]byte("shared"))
					return
				}
				w.Header().Set("Cache-Control", cc)
				_, _ = w.Write([]byte("for " + r.Header.Get("X-Test-Consumer")))
			})
			f.get("/a", "X-Test-Consumer", "alice")
			f.clock.Advance(30 * time.Second)
			if a := f.get("/a", "X-Test-Consumer", "alice"); a.body != "for alice" {
				t.Fatalf("alice got %q", a.body)
			}
			// The upstream is down now: a shared stale entry left behind
			// would answer bob within its stale-if-error window.
			f.origin.set(func(w http.ResponseWriter, r *http.Request, call int) {
				w.WriteHeader(http.StatusBadGateway)
			})
			b := f.get("/a", "X-Test-Consumer", "bob")
			if b.status != http.StatusBadGateway || b.body == "shared" {
				t.Fatalf("bob got %d %q (%s); want the upstream's 502, no shared entry", b.status, b.body, b.header.Get("Cache-Status"))
			}
			a := f.get("/a", "X-Test-Consumer", "alice")
			if cc == "max-age=60" {
				wantStatus(t, a, 200, "portunus; hit; ttl=60")
				if a.body != "for alice" {
					t.Fatalf("alice's own entry = %q", a.body)
				}
				f.wantCalls(3)
			} else if a.status != http.StatusBadGateway {
				t.Fatalf("alice got %d %q (%s); want the upstream's 502", a.status, a.body, a.header.Get("Cache-Status"))
			}
		})
	}
}

// A background refresh (stale-while-revalidate) whose 304 takes back
// `public` leaves nothing shared: bob's next request goes upstream.
func TestBackgroundRefreshLosingPublicIsNotShared(t *testing.T) {
	t.Parallel()
	for _, cc := range []string{"max-age=60", "private, max-age=60", "no-store"} {
		t.Run(cc, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, Options{PerConsumer: true})
			scopeOrigin(f, "public, max-age=10, stale-while-revalidate=600", cc)
			f.get("/a", "X-Test-Consumer", "alice")
			f.clock.Advance(30 * time.Second)
			wantStatus(t, f.get("/a", "X-Test-Consumer", "alice"), 200, "portunus; hit; ttl=-20; detail=stale-while-revalidate")
			f.p.Wait()
			f.wantCalls(2)
			b := f.get("/a", "X-Test-Consumer", "bob")
			if isHit(b) || b.body != "for bob" {
				t.Fatalf("bob got %q (%s); want his own answer from the upstream", b.body, b.header.Get("Cache-Status"))
			}
			f.wantCalls(3)
		})
	}
}

// Requests waiting for alice's revalidation of a shared entry whose 304
// takes back `public`: alice's other request is served the refreshed
// answer, bob's goes upstream itself.
func TestCoalescedRevalidationLosingPublic(t *testing.T) {
	t.Parallel()
	f, waiting := waitingFixture(t, Options{PerConsumer: true})
	release := newGate(t)
	f.origin.set(func(w http.ResponseWriter, r *http.Request, call int) {
		w.Header().Set("ETag", `"v1"`)
		if call == 1 {
			w.Header().Set("Cache-Control", "public, max-age=10")
			_, _ = w.Write([]byte("shared"))
			return
		}
		if call == 2 {
			<-release.c
		}
		w.Header().Set("Cache-Control", "max-age=60")
		w.Header().Set("X-For", r.Header.Get("X-Test-Consumer"))
		if r.Header.Get("If-None-Match") == `"v1"` {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		_, _ = w.Write([]byte("for " + r.Header.Get("X-Test-Consumer")))
	})
	f.get("/a", "X-Test-Consumer", "alice")
	f.clock.Advance(30 * time.Second)
	lead := make(chan answer, 1)
	go func() { lead <- f.get("/a", "X-Test-Consumer", "alice") }()
	waitFor(t, "alice's revalidation at the origin", func() bool { return f.calls() == 2 })
	alice, bob := make(chan answer, 1), make(chan answer, 1)
	go func() { alice <- f.get("/a", "X-Test-Consumer", "alice") }()
	go func() { bob <- f.get("/a", "X-Test-Consumer", "bob") }()
	waitFor(t, "both waiting for it", func() bool { return waiting.Load() == 2 })
	release.open()
	wantStatus(t, <-lead, 200, "portunus; fwd=stale; fwd-status=304")
	a := <-alice
	wantStatus(t, a, 200, "portunus; hit; detail=coalesced")
	if a.header.Get("X-For") != "alice" {
		t.Fatalf("alice's waiter got X-For %q", a.header.Get("X-For"))
	}
	b := <-bob
	if isHit(b) || b.header.Get("X-For") != "bob" {
		t.Fatalf("bob got %q X-For %q (%s); want his own revalidation", b.body, b.header.Get("X-For"), b.header.Get("Cache-Status"))
	}
	f.wantCalls(3)
	// Each has an entry of their own now; nothing is shared.
	if a := f.get("/a", "X-Test-Consumer", "alice"); !isHit(a) || a.header.Get("X-For") != "alice" {
		t.Fatalf("alice got X-For %q (%s); want her own entry", a.header.Get("X-For"), a.header.Get("Cache-Status"))
	}
	if b := f.get("/a", "X-Test-Consumer", "bob"); !isHit(b) || b.header.Get("X-For") != "bob" {
		t.Fatalf("bob got X-For %q (%s); want his own entry", b.header.Get("X-For"), b.header.Get("Cache-Status"))
	}
	if c := f.get("/a", "X-Test-Consumer", "carol"); isHit(c) || c.body != "for carol" {
		t.Fatalf("carol got %q (%s); want her own answer from the upstream", c.body, c.header.Get("Cache-Status"))
	}
	f.wantCalls(4)
}

func TestBackendDelete(t *testing.T) {
	t.Parallel()
	backends(t, func(t *testing.T, b Backend) {
		ctx := context.Background()
		gone := Key{Route: "r", Host: "h", Path: "/a", Extra: "v=\x1es"}
		kept := Key{Route: "r", Host: "h", Path: "/a", Extra: "v=\x1ec=alice"}
		for _, k := range []Key{gone, kept} {
			if err := b.Set(ctx, k.String(), k.URLKey(), sampleEntry(), time.Hour); err != nil {
				t.Fatal(err)
			}
		}
		if err := b.Delete(ctx, gone.String()); err != nil {
			t.Fatal(err)
		}
		if err := b.Delete(ctx, "absent"); err != nil {
			t.Fatalf("deleting an absent key: %v", err)
		}
		for _, tc := range []struct {
			k    Key
			want bool
		}{{gone, false}, {kept, true}} {
			e, err := b.Get(ctx, tc.k.String())
			if err != nil {
				t.Fatal(err)
			}
			if (e != nil) != tc.want {
				t.Fatalf("%q present = %v; want %v", tc.k.String(), e != nil, tc.want)
			}
		}
		// The URL's other entries are still invalidated together.
		if err := b.InvalidateURL(ctx, kept.URLKey()); err != nil {
			t.Fatal(err)
		}
		if e, _ := b.Get(ctx, kept.String()); e != nil {
			t.Fatal("entry survived InvalidateURL after a Delete")
		}
	})
}
