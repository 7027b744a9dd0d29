package cache

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestMaxAge(t *testing.T) {
	t.Parallel()
	f := newFixture(t, Options{})
	f.origin.set(static("v1", "Cache-Control", "max-age=60"))
	wantStatus(t, f.get("/a"), 200, "portunus; fwd=uri-miss; stored")
	f.clock.Advance(10 * time.Second)
	a := f.get("/a")
	wantStatus(t, a, 200, "portunus; hit; ttl=50")
	if a.body != "v1" || a.header.Get("Age") != "10" {
		t.Fatalf("hit = %q Age %q; want v1 Age 10", a.body, a.header.Get("Age"))
	}
	f.wantCalls(1)
	f.clock.Advance(51 * time.Second)
	wantStatus(t, f.get("/a"), 200, "portunus; fwd=stale; stored")
	f.wantCalls(2)
}

func TestSMaxAgeWinsOverMaxAge(t *testing.T) {
	t.Parallel()
	f := newFixture(t, Options{})
	f.origin.set(static("v1", "Cache-Control", "max-age=1, s-maxage=100"))
	f.get("/a")
	f.clock.Advance(50 * time.Second)
	wantStatus(t, f.get("/a"), 200, "portunus; hit; ttl=50")
	f.wantCalls(1)
}

func TestUpstreamAgeCountsAgainstFreshness(t *testing.T) {
	t.Parallel()
	f := newFixture(t, Options{})
	f.origin.set(static("v1", "Cache-Control", "max-age=60", "Age", "50"))
	f.get("/a")
	a := f.get("/a")
	wantStatus(t, a, 200, "portunus; hit; ttl=10")
	if a.header.Get("Age") != "50" {
		t.Fatalf("Age = %q; want 50", a.header.Get("Age"))
	}
}

func TestRouteTTLAppliesWithoutFreshness(t *testing.T) {
	t.Parallel()
	f := newFixture(t, Options{TTL: 30 * time.Second})
	f.get("/a")
	f.clock.Advance(29 * time.Second)
	wantStatus(t, f.get("/a"), 200, "portunus; hit; ttl=1")
	f.clock.Advance(2 * time.Second)
	f.get("/a")
	f.wantCalls(2)
}

func TestNeverStored(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		desc string
		kv   []string
	}{
		{"no-store", []string{"Cache-Control", "max-age=60, no-store"}},
		{"private", []string{"Cache-Control", "private, max-age=60"}},
		{"Set-Cookie", []string{"Cache-Control", "public, max-age=60", "Set-Cookie", "sid=1"}},
		{"Vary star", []string{"Cache-Control", "max-age=60", "Vary", "*"}},
		{"Vary star in a list", []string{"Cache-Control", "max-age=60", "Vary", "Accept, *"}},
		{"Expires in the past", []string{"Expires", "Thu, 01 Jan 1970 00:00:00 GMT"}},
		{"invalid Expires", []string{"Expires", "0"}},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, Options{})
			f.origin.set(static("x", tc.kv...))
			wantStatus(t, f.get("/a"), 200, "portunus; fwd=uri-miss")
			wantStatus(t, f.get("/a"), 200, "portunus; fwd=uri-miss")
			f.wantCalls(2)
		})
	}
}

func TestStatusCacheability(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		desc   string
		status int
		cc     string
		stored bool
	}{
		{"404 heuristic", 404, "", true},
		{"410 heuristic", 410, "", true},
		{"301 heuristic", 301, "", true},
		{"500 never", 500, "max-age=60", false},
		{"206 never: no ranges", 206, "max-age=60", false},
		{"302 without freshness", 302, "", false},
		{"302 with max-age", 302, "max-age=60", true},
		{"201 never", 201, "max-age=60", false},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, Options{})
			f.origin.set(func(w http.ResponseWriter, r *http.Request, n int) {
				if tc.cc != "" {
					w.Header().Set("Cache-Control", tc.cc)
				}
				if tc.status/100 == 3 {
					w.Header().Set("Location", "/elsewhere")
				}
				w.WriteHeader(tc.status)
			})
			f.get("/a")
			a := f.get("/a")
			if a.status != tc.status {
				t.Fatalf("status = %d; want %d", a.status, tc.status)
			}
			if got := strings.HasPrefix(a.header.Get("Cache-Status"), "portunus; hit"); got != tc.stored {
				t.Fatalf("second answer a hit = %v (Cache-Status %q); want %v", got, a.header.Get("Cache-Status"), tc.stored)
			}
		})
	}
}

func TestExpires(t *testing.T) {
	t.Parallel()
	f := newFixture(t, Options{TTL: time.Hour})
	f.origin.set(func(w http.ResponseWriter, r *http.Request, n int) {
		now := f.clock.Now()
		w.Header().Set("Date", now.Format(http.TimeFormat))
		w.Header().Set("Expires", now.Add(20*time.Second).Format(http.TimeFormat))
		_, _ = w.Write([]byte("x"))
	})
	f.get("/a")
	f.clock.Advance(15 * time.Second)
	wantStatus(t, f.get("/a"), 200, "portunus; hit; ttl=5")
	f.clock.Advance(6 * time.Second)
	wantStatus(t, f.get("/a"), 200, "portunus; fwd=stale; stored")
	f.wantCalls(2)
}

func TestNoCacheRevalidatesEveryTime(t *testing.T) {
	t.Parallel()
	f := newFixture(t, Options{})
	f.origin.set(func(w http.ResponseWriter, r *http.Request, n int) {
		w.Header().Set("Cache-Control", "no-cache")
		w.Header().Set("ETag", `"v1"`)
		if r.Header.Get("If-None-Match") == `"v1"` {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		_, _ = w.Write([]byte("body-v1"))
	})
	wantStatus(t, f.get("/a"), 200, "portunus; fwd=uri-miss; stored")
	a := f.get("/a")
	wantStatus(t, a, 200, "portunus; fwd=stale; fwd-status=304")
	if a.body != "body-v1" {
		t.Fatalf("body = %q; want the stored body-v1", a.body)
	}
	if got := f.origin.last().Header.Get("If-None-Match"); got != `"v1"` {
		t.Fatalf("revalidation If-None-Match = %q; want \"v1\"", got)
	}
	f.wantCalls(2)
}

func TestMustRevalidateNeverServesStale(t *testing.T) {
	t.Parallel()
	f := newFixture(t, Options{})
	f.origin.set(static("v1", "Cache-Control", "max-age=1, must-revalidate, stale-if-error=600, stale-while-revalidate=600"))
	f.get("/a")
	f.clock.Advance(5 * time.Second)
	f.origin.set(func(w http.ResponseWriter, r *http.Request, n int) { w.WriteHeader(http.StatusServiceUnavailable) })
	a := f.get("/a")
	wantStatus(t, a, 503, "portunus; fwd=stale")
}

func TestProxyRevalidateNeverServesStale(t *testing.T) {
	t.Parallel()
	f := newFixture(t, Options{})
	f.origin.set(static("v1", "Cache-Control", "max-age=1, proxy-revalidate, stale-if-error=600"))
	f.get("/a")
	f.clock.Advance(5 * time.Second)
	f.origin.set(func(w http.ResponseWriter, r *http.Request, n int) { w.WriteHeader(http.StatusBadGateway) })
	wantStatus(t, f.get("/a"), 502, "portunus; fwd=stale")
}

func TestVary(t *testing.T) {
	t.Parallel()
	f := newFixture(t, Options{})
	f.origin.set(func(w http.ResponseWriter, r *http.Request, n int) {
		w.Header().Set("Cache-Control", "max-age=60")
		w.Header().Set("Vary", "Accept-Language")
		_, _ = w.Write([]byte("lang=" + r.Header.Get("Accept-Language")))
	})
	wantStatus(t, f.get("/a", "Accept-Language", "en"), 200, "portunus; fwd=uri-miss; stored")
	a := f.get("/a", "Accept-Language", "de")
	wantStatus(t, a, 200, "portunus; fwd=vary-miss; stored")
	if a.body != "lang=de" {
		t.Fatalf("body = %q; want lang=de", a.body)
	}
	for _, lang := range []string{"en", "de"} {
		a := f.get("/a", "Accept-Language", lang)
		if a.body != "lang="+lang || !strings.HasPrefix(a.header.Get("Cache-Status"), "portunus; hit") {
			t.Fatalf("%s: got %q (%s); want a hit with lang=%s", lang, a.body, a.header.Get("Cache-Status"), lang)
		}
	}
	f.wantCalls(2)
}

func TestRouteVaryHeadersAreKeyed(t *testing.T) {
	t.Parallel()
	f := newFixture(t, Options{Vary: []string{"x-tenant"}})
	f.origin.set(func(w http.ResponseWriter, r *http.Request, n int) {
		_, _ = w.Write([]byte("tenant=" + r.Header.Get("X-Tenant")))
	})
	f.get("/a", "X-Tenant", "a")
	if b := f.get("/a", "X-Tenant", "b").body; b != "tenant=b" {
		t.Fatalf("body = %q; want tenant=b", b)
	}
	if b := f.get("/a", "X-Tenant", "a").body; b != "tenant=a" {
		t.Fatalf("body = %q; want tenant=a", b)
	}
	f.wantCalls(2)
}

func TestStaleWhileRevalidateRefreshesInBackground(t *testing.T) {
	t.Parallel()
	f := newFixture(t, Options{})
	release := make(chan struct{})
	f.origin.set(func(w http.ResponseWriter, r *http.Request, n int) {
		if n > 1 {
			<-release // the refresh waits: the client must not
		}
		w.Header().Set("Cache-Control", "max-age=10, stale-while-revalidate=60")
		_, _ = w.Write([]byte("v" + string(rune('0'+n))))
	})
	f.get("/a")
	f.clock.Advance(15 * time.Second)
	a := f.get("/a")
	wantStatus(t, a, 200, "portunus; hit; ttl=-5; detail=stale-while-revalidate")
	if a.body != "v1" {
		t.Fatalf("stale body = %q; want v1", a.body)
	}
	// A second stale hit while the refresh runs starts no other refresh.
	f.get("/a")
	waitFor(t, "the background refresh to reach the origin", func() bool { return f.calls() == 2 })
	close(release)
	waitFor(t, "the refreshed answer", func() bool { return f.get("/a").body == "v2" })
	f.wantCalls(2)
}

func TestStaleIfErrorServesDuringOutage(t *testing.T) {
	t.Parallel()
	f := newFixture(t, Options{})
	f.origin.set(static("v1", "Cache-Control", "max-age=10, stale-if-error=60"))
	f.get("/a")
	f.clock.Advance(20 * time.Second)
	f.origin.set(func(w http.ResponseWriter, r *http.Request, n int) {
		w.Header().Set("Content-Type", "application/problem+json")
		w.WriteHeader(http.StatusBadGateway)
		_, _ = w.Write([]byte(`{"status":502}`))
	})
	a := f.get("/a")
	wantStatus(t, a, 200, "portunus; hit; ttl=-10; fwd-status=502; detail=stale-if-error")
	if a.body != "v1" || a.header.Get("Content-Type") == "application/problem+json" {
		t.Fatalf("answer = %q %q; want the stale v1", a.body, a.header.Get("Content-Type"))
	}
	// Past the window the error goes through.
	f.clock.Advance(60 * time.Second)
	wantStatus(t, f.get("/a"), 502, "portunus; fwd=stale")
}
