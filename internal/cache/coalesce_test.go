package cache

import (
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// stampede sends n concurrent GETs of path (each with the header fields
// of hdr(i)) once the origin is blocked, waits until every one of them is
// either at the origin or waiting for a concurrent request of its key,
// releases the origin and returns the answers. upstream is how many
// origin calls were made before the stampede.
func stampede(t *testing.T, f *fixture, waiting *atomic.Int32, release *gate, upstream, n int, path string, hdr func(i int) []string) []answer {
	t.Helper()
	var wg sync.WaitGroup
	answers := make([]answer, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var kv []string
			if hdr != nil {
				kv = hdr(i)
			}
			answers[i] = f.get(path, kv...)
		}()
	}
	waitFor(t, "every request at the origin or waiting", func() bool {
		return f.calls()-upstream+int(waiting.Load()) == n
	})
	release.open()
	wg.Wait()
	return answers
}

// countStatus counts the answers whose Cache-Status is exactly v.
func countStatus(answers []answer, v string) int {
	n := 0
	for _, a := range answers {
		if a.header.Get("Cache-Status") == v {
			n++
		}
	}
	return n
}

// gate holds the origin until it is opened; a failing test opens it on
// cleanup, before the fixture's server waits for its handlers.
type gate struct {
	c    chan struct{}
	once sync.Once
}

func newGate(t *testing.T) *gate {
	g := &gate{c: make(chan struct{})}
	t.Cleanup(g.open)
	return g
}

func (g *gate) open() { g.once.Do(func() { close(g.c) }) }

func waitingFixture(t *testing.T, o Options) (*fixture, *atomic.Int32) {
	f := newFixture(t, o)
	var waiting atomic.Int32
	f.p.onWait = func() { waiting.Add(1) }
	return f, &waiting
}

// A hot ETag'd key going stale costs the upstream one conditional request:
// its 304 refreshes the entry and every concurrent request is served it.
func TestCoalescingStaleRevalidation(t *testing.T) {
	t.Parallel()
	const n = 20
	f, waiting := waitingFixture(t, Options{})
	release := newGate(t)
	f.origin.set(func(w http.ResponseWriter, r *http.Request, call int) {
		w.Header().Set("Cache-Control", "max-age=10")
		w.Header().Set("ETag", `"e1"`)
		if r.Header.Get("If-None-Match") == `"e1"` {
			<-release.c
			w.Header().Set("X-Generation", "2")
			w.WriteHeader(http.StatusNotModified)
			return
		}
		_, _ = w.Write([]byte("body"))
	})
	f.get("/hot")
	f.clock.Advance(30 * time.Second)
	answers := stampede(t, f, waiting, release, 1, n, "/hot", nil)
	f.wantCalls(2)
	for i, a := range answers {
		if a.status != 200 || a.body != "body" || a.header.Get("X-Generation") != "2" {
			t.Fatalf("request %d: %d %q X-Generation %q; want 200, the stored body and the 304's fields", i, a.status, a.body, a.header.Get("X-Generation"))
		}
	}
	if got := countStatus(answers, "portunus; fwd=stale; fwd-status=304"); got != 1 {
		t.Fatalf("%d answers revalidated; want 1", got)
	}
	if got := countStatus(answers, "portunus; hit; detail=coalesced"); got != n-1 {
		t.Fatalf("%d answers coalesced; want %d", got, n-1)
	}
	wantStatus(t, f.get("/hot"), 200, "portunus; hit; ttl=10")
	f.wantCalls(2)
}

// Without validators a stale entry (kept for its stale-if-error window)
// is refetched: once, and the new answer serves every waiting request.
func TestCoalescingStaleRefetch(t *testing.T) {
	t.Parallel()
	const n = 20
	f, waiting := waitingFixture(t, Options{})
	release := newGate(t)
	f.origin.set(func(w http.ResponseWriter, r *http.Request, call int) {
		if call > 1 {
			<-release.c
		}
		w.Header().Set("Cache-Control", "max-age=10, stale-if-error=600")
		_, _ = w.Write([]byte("v" + string(rune('0'+call))))
	})
	f.get("/hot")
	f.clock.Advance(30 * time.Second)
	answers := stampede(t, f, waiting, release, 1, n, "/hot", nil)
	f.wantCalls(2)
	for i, a := range answers {
		if a.status != 200 || a.body != "v2" {
			t.Fatalf("request %d: %d %q; want 200 v2", i, a.status, a.body)
		}
	}
	if got := countStatus(answers, "portunus; fwd=stale; stored"); got != 1 {
		t.Fatalf("%d answers refetched; want 1", got)
	}
	if got := countStatus(answers, "portunus; hit; detail=coalesced"); got != n-1 {
		t.Fatalf("%d answers coalesced; want %d", got, n-1)
	}
}

// A revalidation that fails within stale-if-error answers every waiting
// request with the stale entry: the outage costs one upstream request.
func TestCoalescingFailedRevalidationServesStaleToWaiters(t *testing.T) {
	t.Parallel()
	const n = 20
	f, waiting := waitingFixture(t, Options{})
	release := newGate(t)
	f.origin.set(func(w http.ResponseWriter, r *http.Request, call int) {
		if call > 1 {
			<-release.c
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte("down"))
			return
		}
		w.Header().Set("Cache-Control", "max-age=10, stale-if-error=600")
		w.Header().Set("ETag", `"e1"`)
		_, _ = w.Write([]byte("body"))
	})
	f.get("/hot")
	f.clock.Advance(30 * time.Second)
	answers := stampede(t, f, waiting, release, 1, n, "/hot", nil)
	f.wantCalls(2)
	const want = "portunus; hit; ttl=-20; fwd-status=503; detail=stale-if-error"
	for i, a := range answers {
		if a.status != 200 || a.body != "body" {
			t.Fatalf("request %d: %d %q; want the stale 200 body", i, a.status, a.body)
		}
	}
	if got := countStatus(answers, want); got != n {
		t.Fatalf("%d answers were %q; want all %d", got, want, n)
	}
}

// Without stale-if-error a failed revalidation's error is not shared: each
// waiting request asks the upstream itself (and passes its error on).
func TestCoalescingFailedRevalidationWithoutStaleIfError(t *testing.T) {
	t.Parallel()
	const n = 5
	f, waiting := waitingFixture(t, Options{})
	release := newGate(t)
	f.origin.set(func(w http.ResponseWriter, r *http.Request, call int) {
		if call > 1 {
			<-release.c
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Cache-Control", "max-age=10")
		w.Header().Set("ETag", `"e1"`)
		_, _ = w.Write([]byte("body"))
	})
	f.get("/hot")
	f.clock.Advance(30 * time.Second)
	answers := stampede(t, f, waiting, release, 1, n, "/hot", nil)
	f.wantCalls(1 + n)
	for i, a := range answers {
		if a.status != 503 {
			t.Fatalf("request %d: status %d; want the upstream's 503", i, a.status)
		}
	}
}

// Stale-while-revalidate: stale hits start one background refresh per
// key, and a request that finds the entry past the window while that
// refresh runs waits for it instead of asking the upstream again.
func TestBackgroundRefreshIsTheKeysFlight(t *testing.T) {
	t.Parallel()
	const n = 10
	f, waiting := waitingFixture(t, Options{})
	release := newGate(t)
	f.origin.set(func(w http.ResponseWriter, r *http.Request, call int) {
		w.Header().Set("Cache-Control", "max-age=10, stale-while-revalidate=30")
		w.Header().Set("ETag", `"e1"`)
		if r.Header.Get("If-None-Match") == `"e1"` {
			<-release.c
			// The test clock moves 60 s while the refresh waits here: its
			// round trip counts against the new freshness (RFC 9111 §4.2.3).
			w.Header().Set("Cache-Control", "max-age=120, stale-while-revalidate=30")
			w.WriteHeader(http.StatusNotModified)
			return
		}
		_, _ = w.Write([]byte("body"))
	})
	f.get("/hot")
	f.clock.Advance(15 * time.Second)
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			a := f.get("/hot")
			if a.body != "body" || !strings.HasSuffix(a.header.Get("Cache-Status"), "detail=stale-while-revalidate") {
				t.Errorf("stale hit: %q (%s)", a.body, a.header.Get("Cache-Status"))
			}
		}()
	}
	wg.Wait()
	waitFor(t, "the background refresh at the origin", func() bool { return f.calls() == 2 })
	// Past the window: the request waits for the running refresh.
	f.clock.Advance(60 * time.Second)
	done := make(chan answer, 1)
	go func() { done <- f.get("/hot") }()
	waitFor(t, "the request to wait for the refresh", func() bool { return waiting.Load() == 1 })
	release.open()
	a := <-done
	wantStatus(t, a, 200, "portunus; hit; detail=coalesced")
	f.p.Wait()
	f.wantCalls(2)
	wantStatus(t, f.get("/hot"), 200, "portunus; hit; ttl=60")
}

// Waiting requests are served the answer fetched for another only when it
// fits them: the same values of the headers its Vary names. Those it does
// not fit wait once more, for one request per variant.
func TestCoalescingRespectsVary(t *testing.T) {
	t.Parallel()
	const n = 10
	f, waiting := waitingFixture(t, Options{})
	gates := map[string]*gate{"de": newGate(t), "en": newGate(t)}
	f.origin.set(func(w http.ResponseWriter, r *http.Request, call int) {
		lang := r.Header.Get("Accept-Language")
		<-gates[lang].c
		w.Header().Set("Cache-Control", "max-age=60")
		w.Header().Set("Vary", "Accept-Language")
		_, _ = w.Write([]byte("lang=" + lang))
	})
	de := make(chan answer, 1)
	go func() { de <- f.get("/v", "Accept-Language", "de") }()
	waitFor(t, "the de request at the origin", func() bool { return f.calls() == 1 })
	var wg sync.WaitGroup
	en := make([]answer, n)
	for i := range n {
		wg.Add(1)
		go func() { defer wg.Done(); en[i] = f.get("/v", "Accept-Language", "en") }()
	}
	waitFor(t, "the en requests waiting", func() bool { return waiting.Load() == n })
	gates["de"].open()
	if a := <-de; a.body != "lang=de" {
		t.Fatalf("de got %q", a.body)
	}
	// The de answer does not fit them: one en request goes upstream, the
	// others wait for it.
	waitFor(t, "one en request at the origin, the rest waiting again", func() bool {
		return f.calls() == 2 && waiting.Load() == n+n-1
	})
	gates["en"].open()
	wg.Wait()
	f.wantCalls(2)
	for i, a := range en {
		if a.body != "lang=en" {
			t.Fatalf("en request %d got %q", i, a.body)
		}
	}
	if got := countStatus(en, "portunus; hit; detail=coalesced"); got != n-1 {
		t.Fatalf("%d en answers coalesced; want %d", got, n-1)
	}
}

// A shared (public) entry is revalidated once for every consumer; when
// the new answer is no longer public it is not handed to another
// consumer's waiting request.
func TestCoalescingSharedEntryAcrossConsumers(t *testing.T) {
	t.Parallel()
	f, waiting := waitingFixture(t, Options{PerConsumer: true})
	release := newGate(t)
	f.origin.set(func(w http.ResponseWriter, r *http.Request, call int) {
		if call == 1 {
			w.Header().Set("Cache-Control", "public, max-age=10, stale-if-error=600")
			_, _ = w.Write([]byte("shared"))
			return
		}
		if call == 2 {
			<-release.c
		}
		w.Header().Set("Cache-Control", "max-age=10")
		_, _ = w.Write([]byte("for " + r.Header.Get("X-Test-Consumer")))
	})
	f.get("/a", "X-Test-Consumer", "alice")
	f.clock.Advance(30 * time.Second)
	alice := make(chan answer, 1)
	go func() { alice <- f.get("/a", "X-Test-Consumer", "alice") }()
	waitFor(t, "alice's refetch at the origin", func() bool { return f.calls() == 2 })
	bob := make(chan answer, 1)
	go func() { bob <- f.get("/a", "X-Test-Consumer", "bob") }()
	waitFor(t, "bob waiting for it", func() bool { return waiting.Load() == 1 })
	release.open()
	if a := <-alice; a.body != "for alice" {
		t.Fatalf("alice got %q", a.body)
	}
	if b := <-bob; b.body != "for bob" {
		t.Fatalf("bob got %q (%s); want his own answer, not alice's", b.body, b.header.Get("Cache-Status"))
	}
	f.wantCalls(3)
}

// A no-cache answer must be validated before each use: a validation that
// completes while a request waits for it counts, so concurrent requests
// still cost one conditional request.
func TestCoalescingNoCacheRevalidation(t *testing.T) {
	t.Parallel()
	const n = 10
	f, waiting := waitingFixture(t, Options{})
	release := newGate(t)
	f.origin.set(func(w http.ResponseWriter, r *http.Request, call int) {
		w.Header().Set("Cache-Control", "no-cache")
		w.Header().Set("ETag", `"v1"`)
		if r.Header.Get("If-None-Match") == `"v1"` {
			<-release.c
			w.WriteHeader(http.StatusNotModified)
			return
		}
		_, _ = w.Write([]byte("body-v1"))
	})
	f.get("/a")
	answers := stampede(t, f, waiting, release, 1, n, "/a", nil)
	f.wantCalls(2)
	for i, a := range answers {
		if a.status != 200 || a.body != "body-v1" {
			t.Fatalf("request %d: %d %q", i, a.status, a.body)
		}
	}
	if got := countStatus(answers, "portunus; hit; detail=coalesced"); got != n-1 {
		t.Fatalf("%d answers coalesced; want %d", got, n-1)
	}
	// Sequential requests still revalidate each time.
	wantStatus(t, f.get("/a"), 200, "portunus; fwd=stale; fwd-status=304")
	f.wantCalls(3)
}
