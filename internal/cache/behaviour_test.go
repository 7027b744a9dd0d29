package cache

import (
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func etagOrigin(f *fixture) {
	lm := time.Date(2025, 5, 1, 0, 0, 0, 0, time.UTC).Format(http.TimeFormat)
	f.origin.set(static("body", "Cache-Control", "max-age=60", "ETag", `W/"abc"`, "Last-Modified", lm))
}

func TestClientIfNoneMatchGets304FromCache(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		desc, inm string
		want      int
	}{
		{"weak match", `W/"abc"`, 304},
		{"strong form matches weakly", `"abc"`, 304},
		{"in a list", `"x", W/"abc"`, 304},
		{"star", `*`, 304},
		{"no match", `"zzz"`, 200},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, Options{})
			etagOrigin(f)
			f.get("/a")
			a := f.get("/a", "If-None-Match", tc.inm)
			if a.status != tc.want {
				t.Fatalf("status = %d; want %d", a.status, tc.want)
			}
			if tc.want == 304 && (a.body != "" || a.header.Get("ETag") != `W/"abc"`) {
				t.Fatalf("304 body %q ETag %q; want empty body and the ETag", a.body, a.header.Get("ETag"))
			}
			f.wantCalls(1)
		})
	}
}

func TestClientIfModifiedSinceGets304FromCache(t *testing.T) {
	t.Parallel()
	f := newFixture(t, Options{})
	etagOrigin(f)
	f.get("/a")
	later := time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC).Format(http.TimeFormat)
	earlier := time.Date(2025, 4, 1, 0, 0, 0, 0, time.UTC).Format(http.TimeFormat)
	if a := f.get("/a", "If-Modified-Since", later); a.status != 304 {
		t.Fatalf("If-Modified-Since after Last-Modified: status %d; want 304", a.status)
	}
	if a := f.get("/a", "If-Modified-Since", earlier); a.status != 200 || a.body != "body" {
		t.Fatalf("If-Modified-Since before Last-Modified: %d %q; want 200 body", a.status, a.body)
	}
	// If-None-Match wins over If-Modified-Since (RFC 9110 §13.2.2).
	if a := f.get("/a", "If-Modified-Since", later, "If-None-Match", `"other"`); a.status != 200 {
		t.Fatalf("non-matching If-None-Match with If-Modified-Since: status %d; want 200", a.status)
	}
	f.wantCalls(1)
}

func TestRevalidationWithValidators(t *testing.T) {
	t.Parallel()
	f := newFixture(t, Options{})
	lm := time.Date(2025, 5, 1, 0, 0, 0, 0, time.UTC).Format(http.TimeFormat)
	f.origin.set(func(w http.ResponseWriter, r *http.Request, n int) {
		w.Header().Set("Cache-Control", "max-age=10")
		w.Header().Set("ETag", `"e1"`)
		w.Header().Set("Last-Modified", lm)
		w.Header().Set("X-Generation", string(rune('0'+n)))
		if r.Header.Get("If-None-Match") == `"e1"` {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		_, _ = w.Write([]byte("full"))
	})
	f.get("/a")
	f.clock.Advance(30 * time.Second)
	// The client's own precondition is answered by the cache, not forwarded.
	a := f.get("/a", "If-None-Match", `"client"`)
	wantStatus(t, a, 200, "portunus; fwd=stale; fwd-status=304")
	seen := f.origin.last()
	if seen.Header.Get("If-None-Match") != `"e1"` || seen.Header.Get("If-Modified-Since") != lm {
		t.Fatalf("revalidation sent If-None-Match %q If-Modified-Since %q; want the stored validators", seen.Header.Get("If-None-Match"), seen.Header.Get("If-Modified-Since"))
	}
	// The 304's fields refresh the entry (RFC 9111 §4.3.4), and it is fresh again.
	if a.body != "full" || a.header.Get("X-Generation") != "2" {
		t.Fatalf("answer %q X-Generation %q; want the stored body with the 304's X-Generation 2", a.body, a.header.Get("X-Generation"))
	}
	b := f.get("/a")
	wantStatus(t, b, 200, "portunus; hit; ttl=10")
	if b.header.Get("X-Generation") != "2" {
		t.Fatalf("refreshed entry X-Generation = %q; want 2", b.header.Get("X-Generation"))
	}
	f.wantCalls(2)
}

func TestUnsafeMethodInvalidates(t *testing.T) {
	t.Parallel()
	for _, m := range []string{"POST", "PUT", "PATCH", "DELETE"} {
		t.Run(m, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, Options{})
			f.origin.set(func(w http.ResponseWriter, r *http.Request, n int) {
				if r.Method != "GET" {
					w.WriteHeader(http.StatusNoContent)
					return
				}
				w.Header().Set("Cache-Control", "max-age=600")
				_, _ = w.Write([]byte("x"))
			})
			f.get("/items/1?view=full")
			f.get("/items/2")
			wantStatus(t, f.get("/items/1?view=full"), 200, "portunus; hit; ttl=600")
			f.do(m, "/items/1")
			wantStatus(t, f.get("/items/1?view=full"), 200, "portunus; fwd=uri-miss; stored")
			wantStatus(t, f.get("/items/2"), 200, "portunus; hit; ttl=600")
		})
	}
}

func TestFailedUnsafeMethodKeepsEntry(t *testing.T) {
	t.Parallel()
	f := newFixture(t, Options{})
	f.origin.set(func(w http.ResponseWriter, r *http.Request, n int) {
		if r.Method != "GET" {
			w.WriteHeader(http.StatusConflict)
			return
		}
		_, _ = w.Write([]byte("x"))
	})
	f.get("/a")
	f.do("POST", "/a")
	wantStatus(t, f.get("/a"), 200, "portunus; hit; ttl=60")
}

func TestUnsafeMethodInvalidatesLocation(t *testing.T) {
	t.Parallel()
	f := newFixture(t, Options{})
	f.origin.set(func(w http.ResponseWriter, r *http.Request, n int) {
		if r.Method == "POST" {
			w.Header().Set("Location", "/items/9")
			w.Header().Set("Content-Location", "http://other.example/items/8")
			w.WriteHeader(http.StatusCreated)
			return
		}
		_, _ = w.Write([]byte("x"))
	})
	f.get("/items/9")
	f.get("/items/8")
	f.do("POST", "/items")
	wantStatus(t, f.get("/items/9"), 200, "portunus; fwd=uri-miss; stored")
	// Another host's URL is not ours to drop.
	wantStatus(t, f.get("/items/8"), 200, "portunus; hit; ttl=60")
}

func TestAuthorizationOnRouteWithoutAuthBypasses(t *testing.T) {
	t.Parallel()
	f := newFixture(t, Options{})
	f.origin.set(static("secret", "Cache-Control", "public, max-age=60"))
	wantStatus(t, f.get("/a", "Authorization", "Bearer x"), 200, "portunus; fwd=bypass; detail=authorization")
	wantStatus(t, f.get("/a"), 200, "portunus; fwd=uri-miss; stored")
	wantStatus(t, f.get("/a", "Authorization", "Bearer y"), 200, "portunus; fwd=bypass; detail=authorization")
	f.wantCalls(3)
}

func TestConsumerIsInTheKey(t *testing.T) {
	t.Parallel()
	f := newFixture(t, Options{PerConsumer: true})
	f.origin.set(func(w http.ResponseWriter, r *http.Request, n int) {
		w.Header().Set("Cache-Control", "max-age=60")
		_, _ = w.Write([]byte("for " + r.Header.Get("X-Test-Consumer")))
	})
	f.get("/me", "X-Test-Consumer", "alice")
	a := f.get("/me", "X-Test-Consumer", "bob")
	if a.body != "for bob" {
		t.Fatalf("bob got %q; want his own answer", a.body)
	}
	if a := f.get("/me", "X-Test-Consumer", "alice"); a.body != "for alice" || !strings.HasPrefix(a.header.Get("Cache-Status"), "portunus; hit") {
		t.Fatalf("alice got %q (%s); want her cached answer", a.body, a.header.Get("Cache-Status"))
	}
	if a := f.get("/me"); a.body != "for " {
		t.Fatalf("anonymous got %q; want its own answer", a.body)
	}
	f.wantCalls(3)
}

func TestPublicAnswerSharedAcrossConsumers(t *testing.T) {
	t.Parallel()
	for _, cc := range []string{"public, max-age=60", "s-maxage=60"} {
		t.Run(cc, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, Options{PerConsumer: true})
			f.origin.set(static("shared", "Cache-Control", cc))
			f.get("/a", "X-Test-Consumer", "alice")
			wantStatus(t, f.get("/a", "X-Test-Consumer", "bob"), 200, "portunus; hit; ttl=60")
			f.wantCalls(1)
		})
	}
}

func TestCoalescing(t *testing.T) {
	t.Parallel()
	const n = 20
	f := newFixture(t, Options{})
	var waiting atomic.Int32
	f.p.onWait = func() { waiting.Add(1) }
	release := make(chan struct{})
	f.origin.set(func(w http.ResponseWriter, r *http.Request, _ int) {
		<-release
		w.Header().Set("Cache-Control", "max-age=60")
		_, _ = w.Write([]byte("once"))
	})
	var wg sync.WaitGroup
	bodies := make([]string, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			bodies[i] = f.get("/hot").body
		}()
	}
	waitFor(t, "one request at the origin and the rest waiting", func() bool {
		return f.calls() == 1 && waiting.Load() == n-1
	})
	close(release)
	wg.Wait()
	f.wantCalls(1)
	for i, b := range bodies {
		if b != "once" {
			t.Fatalf("request %d got %q; want once", i, b)
		}
	}
}

func TestCoalescedWaitersGoUpstreamWhenNothingStored(t *testing.T) {
	t.Parallel()
	const n = 5
	f := newFixture(t, Options{})
	var waiting atomic.Int32
	f.p.onWait = func() { waiting.Add(1) }
	release := make(chan struct{})
	f.origin.set(func(w http.ResponseWriter, r *http.Request, _ int) {
		<-release
		w.Header().Set("Cache-Control", "no-store")
		_, _ = w.Write([]byte("each"))
	})
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() { defer wg.Done(); f.get("/x") }()
	}
	waitFor(t, "waiters", func() bool { return f.calls() == 1 && waiting.Load() == n-1 })
	close(release)
	wg.Wait()
	f.wantCalls(n)
}

func TestLargeBodyStreamsUnstored(t *testing.T) {
	t.Parallel()
	f := newFixture(t, Options{MaxObjectBytes: 1000})
	big := strings.Repeat("x", 5000)
	for _, known := range []bool{true, false} {
		f.origin.set(func(w http.ResponseWriter, r *http.Request, _ int) {
			if !known {
				// Several writes, no Content-Length: the copy is abandoned midway.
				for i := 0; i < 5; i++ {
					_, _ = w.Write([]byte(big[:1000]))
					http.NewResponseController(w).Flush()
				}
				return
			}
			_, _ = w.Write([]byte(big))
		})
		path := "/big?known=" + map[bool]string{true: "1", false: "0"}[known]
		for i := 0; i < 2; i++ {
			if a := f.get(path); a.body != big {
				t.Fatalf("known=%v: got %d bytes; want %d", known, len(a.body), len(big))
			}
		}
	}
	f.wantCalls(4)
}

func TestHeadServedFromGetEntry(t *testing.T) {
	t.Parallel()
	f := newFixture(t, Options{})
	f.origin.set(static("hello", "Cache-Control", "max-age=60"))
	wantStatus(t, f.do("HEAD", "/a"), 200, "portunus; fwd=uri-miss")
	f.get("/a")
	a := f.do("HEAD", "/a")
	wantStatus(t, a, 200, "portunus; hit; ttl=60")
	if a.body != "" || a.header.Get("Content-Length") != "5" {
		t.Fatalf("HEAD hit body %q Content-Length %q; want none and 5", a.body, a.header.Get("Content-Length"))
	}
	f.wantCalls(2)
}

func TestClientNoCache(t *testing.T) {
	t.Parallel()
	t.Run("ignored by default", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t, Options{})
		f.get("/a")
		wantStatus(t, f.get("/a", "Cache-Control", "no-cache"), 200, "portunus; hit; ttl=60")
		wantStatus(t, f.get("/a", "Cache-Control", "max-age=0"), 200, "portunus; hit; ttl=60")
		wantStatus(t, f.get("/a", "Pragma", "no-cache"), 200, "portunus; hit; ttl=60")
		f.wantCalls(1)
	})
	t.Run("honoured when the route allows", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t, Options{HonorClientNoCache: true})
		f.get("/a")
		wantStatus(t, f.get("/a", "Cache-Control", "no-cache"), 200, "portunus; fwd=request; stored")
		wantStatus(t, f.get("/a", "Cache-Control", "no-store"), 200, "portunus; fwd=request; detail=no-store")
		f.wantCalls(3)
	})
}

func TestQueryModes(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		mode   string
		ignore []string
		a, b   string
		same   bool
	}{
		{"keep", nil, "/q?a=1&b=2", "/q?b=2&a=1", false},
		{"sort", nil, "/q?a=1&b=2", "/q?b=2&a=1", true},
		{"ignore", nil, "/q?a=1", "/q?a=2", true},
		{"keep", []string{"utm_source"}, "/q?a=1&utm_source=x", "/q?a=1&utm_source=y", true},
		{"sort", []string{"utm_source"}, "/q?utm_source=x&a=1", "/q?a=1", true},
		{"keep", []string{"utm_source"}, "/q?a=1", "/q?a=2", false},
	} {
		t.Run(tc.mode+" "+tc.a+" "+tc.b, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, Options{Query: tc.mode, IgnoreQuery: tc.ignore})
			f.get(tc.a)
			hit := strings.HasPrefix(f.get(tc.b).header.Get("Cache-Status"), "portunus; hit")
			if hit != tc.same {
				t.Fatalf("second request a hit = %v; want %v", hit, tc.same)
			}
		})
	}
}

func TestPerRequestHeadersAreNotStored(t *testing.T) {
	t.Parallel()
	f := newFixture(t, Options{})
	f.origin.set(static("x", "Cache-Control", "max-age=60", "Connection", "X-Hop", "X-Hop", "1", "Keep-Alive", "timeout=5"))
	f.get("/a", "X-Test-Rid", "first")
	a := f.get("/a", "X-Test-Rid", "second")
	if a.header.Get("X-Hop") != "" || a.header.Get("Keep-Alive") != "" {
		t.Fatalf("hop-by-hop fields were stored: %v", a.header)
	}
	if got := a.header.Get("X-Request-Id"); got != "second" {
		t.Fatalf("X-Request-Id = %q; want this request's (second), not the stored one", got)
	}
}

func TestUnkeyedOverrideHeadersNeverReachTheOrigin(t *testing.T) {
	t.Parallel()
	f := newFixture(t, Options{})
	f.origin.set(func(w http.ResponseWriter, r *http.Request, _ int) {
		_, _ = w.Write([]byte("url=" + r.Header.Get("X-Original-URL") + r.Header.Get("X-Rewrite-URL") + r.Header.Get("X-Host")))
	})
	a := f.get("/page", "X-Original-URL", "/admin", "X-Rewrite-URL", "/admin", "X-Host", "evil.example")
	if a.body != "url=" {
		t.Fatalf("origin saw %q; want the override headers removed", a.body)
	}
	if b := f.get("/page").body; b != "url=" {
		t.Fatalf("next client got %q; want the clean answer", b)
	}
}

func TestOverrideHeaderListedInVaryIsKeyed(t *testing.T) {
	t.Parallel()
	f := newFixture(t, Options{Vary: []string{"X-Original-URL"}})
	f.origin.set(func(w http.ResponseWriter, r *http.Request, _ int) {
		_, _ = w.Write([]byte("url=" + r.Header.Get("X-Original-URL")))
	})
	if a := f.get("/page", "X-Original-URL", "/x"); a.body != "url=/x" {
		t.Fatalf("got %q; want url=/x", a.body)
	}
	if b := f.get("/page").body; b != "url=" {
		t.Fatalf("a client without the header got %q; want its own answer", b)
	}
}

func TestRevalidationDoesNotStorePerRequestHeaders(t *testing.T) {
	t.Parallel()
	f := newFixture(t, Options{})
	f.origin.set(func(w http.ResponseWriter, r *http.Request, _ int) {
		w.Header().Set("Cache-Control", "max-age=10")
		w.Header().Set("ETag", `"e"`)
		if r.Header.Get("If-None-Match") != "" {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		_, _ = w.Write([]byte("x"))
	})
	f.get("/a", "X-Test-Rid", "one")
	f.clock.Advance(20 * time.Second)
	wantStatus(t, f.get("/a", "X-Test-Rid", "two"), 200, "portunus; fwd=stale; fwd-status=304")
	a := f.get("/a", "X-Test-Rid", "three")
	if !strings.HasPrefix(a.header.Get("Cache-Status"), "portunus; hit") || a.header.Get("X-Request-Id") != "three" {
		t.Fatalf("Cache-Status %q X-Request-Id %q; want a hit carrying this request's id", a.header.Get("Cache-Status"), a.header.Get("X-Request-Id"))
	}
}
