package ratelimit

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/portunus-gw/portunus/internal/config"
	"github.com/portunus-gw/portunus/internal/pipeline"
	"github.com/portunus-gw/portunus/internal/store"
)

// restCases are limit sets whose headers at rest are checked against the
// general formatting.
var restCases = []struct {
	name   string
	limits []config.RateLimit
}{
	{"one per second", []config.RateLimit{{Limit: 1, Window: win(time.Second)}}},
	{"burst 1", []config.RateLimit{{Limit: 10, Window: win(time.Minute), Burst: 1, By: "route"}}},
	{"slow refill", []config.RateLimit{{Name: "daily", Limit: 1000, Window: win(24 * time.Hour), By: "consumer"}}},
	{"never reached", []config.RateLimit{{Limit: 1_000_000_000, Window: win(time.Second), By: "consumer"}}},
	{"burst above limit", []config.RateLimit{{Limit: 5, Window: win(time.Second), Burst: 50, By: "header:X-Tenant"}}},
	{"two limits", []config.RateLimit{
		{Name: "per-consumer", Limit: 100, Window: win(time.Minute), By: "consumer"},
		{Limit: 10, Window: win(time.Second), By: "ip", Burst: 10},
	}},
	{"two limits, a tie", []config.RateLimit{
		{Limit: 60, Window: win(time.Minute), By: "ip"},
		{Limit: 3600, Window: win(time.Hour), Burst: 60, By: "consumer"},
	}},
}

// newTestLimiter is a limiter on a fresh memory store and clk.
func newTestLimiter(t *testing.T, clk *clock, limits []config.RateLimit) *limiter {
	t.Helper()
	mem := store.NewMemory(store.MemoryOptions{Now: clk.Now})
	t.Cleanup(func() { mem.Close() })
	l, err := newLimiter(Options{Route: "r", Limits: limits, Store: mem, Now: clk.Now,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// The first request of a client finds its buckets at rest: it gets the
// precomputed values, which must be what the general formatting gives for
// the same decisions, header for header.
func TestHeadersAtRestAreTheFormattedOnes(t *testing.T) {
	t.Parallel()
	names := []string{hdrPolicy, hdrRateLimit, hdrLimit, hdrRemaining, hdrReset}
	for _, tc := range restCases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			answer := func(l *limiter) http.Header {
				r := httptest.NewRequest("GET", "/", nil)
				r.Header.Set("X-Tenant", "t1")
				w := httptest.NewRecorder()
				s := &pipeline.State{ClientIP: netip.MustParseAddr("192.0.2.7"), Consumer: "alice"}
				if !l.serve(w, r, s) {
					t.Fatalf("refused: %d %s", w.Code, w.Body)
				}
				return w.Header()
			}
			fast := newTestLimiter(t, newClock(), tc.limits)
			got := answer(fast)
			if &got[hdrRateLimit][0] != &fast.base.rest.vals[0] {
				t.Errorf("a request at rest did not get the precomputed values")
			}
			slow := newTestLimiter(t, newClock(), tc.limits)
			slow.base.rest = &restHeaders{} // matches nothing: always formatted
			want := answer(slow)
			for _, n := range names {
				if !slices.Equal(got[n], want[n]) || len(want[n]) != 1 {
					t.Errorf("%s = %q; formatted %q", n, got[n], want[n])
				}
			}
		})
	}
}

// Shared values are capped: adding a value to one answer's field leaves
// the next answer's alone.
func TestSharedHeaderValuesStayIntact(t *testing.T) {
	t.Parallel()
	clk := newClock()
	l := newTestLimiter(t, clk, []config.RateLimit{{Limit: 10, Window: win(time.Second)}})
	r := httptest.NewRequest("GET", "/", nil)
	s := &pipeline.State{ClientIP: netip.MustParseAddr("192.0.2.7")}
	want := map[string]string{
		hdrPolicy: `"ip0";q=10;w=1`, hdrRateLimit: `"ip0";r=9;t=1`,
		hdrLimit: "10", hdrRemaining: "9", hdrReset: "1",
	}
	for i := range 3 {
		w := httptest.NewRecorder()
		l.serve(w, r, s)
		for n, v := range want {
			if got := w.Header()[n]; len(got) != 1 || got[0] != v {
				t.Fatalf("request %d: %s = %q; want [%q]", i, n, got, v)
			}
			w.Header().Add(n, "appended")
		}
		clk.Advance(time.Second)
	}
}

// The limiter's hot path allocates nothing for an allowed request at rest
// in the memory store, whatever the limit counts by.
func TestAllowedAtRestDoesNotAllocate(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts differ under the race detector")
	}
	for _, by := range []string{"ip", "consumer", "route", "header:X-Tenant"} {
		for _, ip := range []string{"192.0.2.7", "2001:db8::1:2:3:4"} {
			clk := newClock()
			l := newTestLimiter(t, clk, []config.RateLimit{{Limit: 100, Window: win(time.Second), By: by}})
			h := l.middleware(func(http.ResponseWriter, *http.Request, *pipeline.State) {})
			r := httptest.NewRequest("GET", "/", nil)
			r.Header.Set("X-Tenant", "t1")
			if ip != "192.0.2.7" {
				r.Header.Set("X-Tenant", strings.Repeat("long-tenant-", 20)) // past any stack copy
			}
			s := &pipeline.State{ClientIP: netip.MustParseAddr(ip), Consumer: "alice"}
			w := &nopWriter{h: http.Header{}}
			h(w, r, s) // the bucket's first sight stores its key
			allocs := testing.AllocsPerRun(100, func() {
				clk.Advance(time.Second)
				clear(w.h)
				h(w, r, s)
			})
			if s.RateLimit != "allowed" || w.h.Get(hdrRemaining) != "99" {
				t.Fatalf("by %s, %s: RateLimit %q, remaining %q", by, ip, s.RateLimit, w.h.Get(hdrRemaining))
			}
			if allocs != 0 {
				t.Errorf("by %s, %s: %v allocations per request; want 0", by, ip, allocs)
			}
			// Not at rest: only the header values are allocated.
			allocs = testing.AllocsPerRun(100, func() {
				clear(w.h)
				h(w, r, s)
			})
			if allocs > 1 {
				t.Errorf("by %s, %s, not at rest: %v allocations per request; want at most 1", by, ip, allocs)
			}
		}
	}
}

// The limiter hands the memory store keys that view its stack buffer; the
// store must copy a key it keeps.
func TestMemoryAllowAtKeepsNoKey(t *testing.T) {
	t.Parallel()
	clk := newClock()
	mem := store.NewMemory(store.MemoryOptions{Now: clk.Now})
	defer mem.Close()
	lim := store.Limit{Rate: 1, Period: time.Hour}
	buf := []byte("rl:key-a")
	if d, err := mem.AllowAt(unsafe.String(&buf[0], len(buf)), lim, 1, clk.Now()); err != nil || !d.Allowed {
		t.Fatalf("first: %+v, %v", d, err)
	}
	copy(buf, "rl:key-b")
	if d, err := mem.AllowAt(unsafe.String(&buf[0], len(buf)), lim, 1, clk.Now()); err != nil || !d.Allowed {
		t.Fatalf("other key: %+v, %v; want allowed (its own bucket)", d, err)
	}
	for _, k := range []string{"rl:key-a", "rl:key-b"} {
		if d, err := mem.AllowAt(k, lim, 1, clk.Now()); err != nil || d.Allowed {
			t.Errorf("%s again: %+v, %v; want refused", k, d, err)
		}
	}
}

// Through the limiter: clients decided one after the other keep their
// own buckets (the key buffer is reused between them).
func TestClientsKeepTheirBuckets(t *testing.T) {
	t.Parallel()
	hs := newHarness(t, Options{Limits: []config.RateLimit{{Limit: 1, Window: win(time.Hour), By: "ip"}}})
	ips := []string{"192.0.2.1", "192.0.2.2", "2001:db8::1", "2001:db8:0:1::1"}
	for _, ip := range ips {
		if w, _ := hs.do(req{ip: ip}); w.Code != http.StatusNoContent {
			t.Fatalf("%s first: %d", ip, w.Code)
		}
	}
	for _, ip := range ips {
		if w, _ := hs.do(req{ip: ip}); w.Code != http.StatusTooManyRequests {
			t.Errorf("%s again: %d; want 429", ip, w.Code)
		}
	}
}

// Without an injected clock a decision is dated now, not at the request's
// start (which may be long past after a slow step before the limiter).
func TestDecisionTimeIsNowNotStart(t *testing.T) {
	t.Parallel()
	l := &limiter{}
	start := time.Now().Add(-time.Hour)
	got := l.decisionTime(&pipeline.State{Start: start})
	if got.Sub(start) < 59*time.Minute {
		t.Errorf("decision at %v, start %v: dated at the start", got, start)
	}
	if got := l.decisionTime(&pipeline.State{}); got.IsZero() || got.Before(start) {
		t.Errorf("no start: decision at %v", got)
	}
}
