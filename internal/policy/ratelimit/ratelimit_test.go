package ratelimit

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/portunus-gw/portunus/internal/config"
	"github.com/portunus-gw/portunus/internal/pipeline"
	"github.com/portunus-gw/portunus/internal/store"
	"github.com/portunus-gw/portunus/internal/telemetry"
)

// clock is a fake clock shared by the store and the limiter.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Unix(1_700_000_000, 0)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func win(d time.Duration) config.Duration { return config.Duration(d) }

// harness is one limiter on a memory store with a fake clock.
type harness struct {
	t       *testing.T
	clk     *clock
	h       pipeline.Handler
	reached int
}

func newHarness(t *testing.T, o Options) *harness {
	t.Helper()
	return newHarnessAt(t, newClock(), o)
}

// newHarnessAt is newHarness on clk.
func newHarnessAt(t *testing.T, clk *clock, o Options) *harness {
	t.Helper()
	hs := &harness{t: t, clk: clk}
	if o.Store == nil {
		mem := store.NewMemory(store.MemoryOptions{Now: hs.clk.Now})
		t.Cleanup(func() { mem.Close() })
		o.Store = mem
	}
	if o.Route == "" {
		o.Route = "r"
	}
	o.Now = hs.clk.Now
	o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	mw, err := New(o)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	hs.h = mw(func(w http.ResponseWriter, r *http.Request, s *pipeline.State) {
		hs.reached++
		w.WriteHeader(http.StatusNoContent)
	})
	return hs
}

// req describes one request's identity.
type req struct {
	ip       string
	consumer string
	header   map[string]string
}

func (hs *harness) do(q req) (*httptest.ResponseRecorder, *pipeline.State) {
	r := httptest.NewRequest("GET", "/x", nil)
	for k, v := range q.header {
		r.Header.Set(k, v)
	}
	ip := q.ip
	if ip == "" {
		ip = "192.0.2.1"
	}
	s := &pipeline.State{ClientIP: netip.MustParseAddr(ip), Consumer: q.consumer, RequestID: "rid"}
	w := httptest.NewRecorder()
	hs.h(w, r, s)
	return w, s
}

// allowedN sends n requests and returns how many were allowed.
func (hs *harness) allowedN(n int, q req) int {
	ok := 0
	for range n {
		w, _ := hs.do(q)
		if w.Code == http.StatusNoContent {
			ok++
		}
	}
	return ok
}

func TestBurstThenRefuseThenRefill(t *testing.T) {
	t.Parallel()
	hs := newHarness(t, Options{Limits: []config.RateLimit{{Limit: 10, Window: win(time.Minute), By: "ip", Burst: 5}}})
	if got := hs.allowedN(5, req{}); got != 5 {
		t.Fatalf("allowed %d of the burst; want 5", got)
	}
	w, s := hs.do(req{})
	if w.Code != http.StatusTooManyRequests {
		t.Fatalf("6th request: status %d; want 429", w.Code)
	}
	if got := w.Header().Get("Content-Type"); got != "application/problem+json" {
		t.Errorf("Content-Type = %q; want application/problem+json", got)
	}
	if !strings.Contains(w.Body.String(), "urn:portunus:problem:rate-limited") {
		t.Errorf("body %q; want the rate-limited problem type", w.Body.String())
	}
	// One token every 6s: Retry-After is 6.
	if got := w.Header().Get("Retry-After"); got != "6" {
		t.Errorf("Retry-After = %q; want 6", got)
	}
	if s.RateLimit != "limited:ip0" || s.ErrorCode != "rate-limited" {
		t.Errorf("state RateLimit %q ErrorCode %q; want limited:ip0, rate-limited", s.RateLimit, s.ErrorCode)
	}
	hs.clk.Advance(5 * time.Second)
	if w, _ := hs.do(req{}); w.Code != http.StatusTooManyRequests {
		t.Errorf("after 5s: status %d; want 429", w.Code)
	} else if got := w.Header().Get("Retry-After"); got != "1" {
		t.Errorf("after 5s: Retry-After = %q; want 1", got)
	}
	hs.clk.Advance(time.Second)
	w, s = hs.do(req{})
	if w.Code != http.StatusNoContent || s.RateLimit != "allowed" {
		t.Errorf("after 6s: status %d, RateLimit %q; want 204, allowed", w.Code, s.RateLimit)
	}
	if hs.reached != 6 {
		t.Errorf("next reached %d times; want 6", hs.reached)
	}
}

func TestRetryAfterNeverZero(t *testing.T) {
	t.Parallel()
	// 1000/s: the wait is 1ms, still answered as 1 second.
	hs := newHarness(t, Options{Limits: []config.RateLimit{{Limit: 1000, Window: win(time.Second), By: "route", Burst: 1}}})
	hs.do(req{})
	w, _ := hs.do(req{})
	if w.Code != http.StatusTooManyRequests {
		t.Fatalf("status %d; want 429", w.Code)
	}
	if got := w.Header().Get("Retry-After"); got != "1" {
		t.Errorf("Retry-After = %q; want 1", got)
	}
}

func TestHeadersExact(t *testing.T) {
	t.Parallel()
	hs := newHarness(t, Options{Limits: []config.RateLimit{
		{Name: "per-consumer", Limit: 100, Window: win(time.Minute), By: "consumer", Burst: 100},
		{Limit: 10, Window: win(time.Second), By: "ip", Burst: 10},
	}})
	q := req{consumer: "alice"}
	w, _ := hs.do(q)
	cases := []struct{ name, want string }{
		{"RateLimit-Policy", `"per-consumer";q=100;w=60, "ip1";q=10;w=1`},
		{"RateLimit", `"per-consumer";r=99;t=1, "ip1";r=9;t=1`},
		// ip1 has 9 left of 10, per-consumer 99 of 100: ip1 is closest.
		{"RateLimit-Limit", "10"},
		{"RateLimit-Remaining", "9"},
		{"RateLimit-Reset", "1"},
	}
	for _, c := range cases {
		if got := w.Header().Get(c.name); got != c.want {
			t.Errorf("%s = %q; want %q", c.name, got, c.want)
		}
	}
	for range 9 {
		hs.do(q)
	}
	w, s := hs.do(q)
	if w.Code != http.StatusTooManyRequests || s.RateLimit != "limited:ip1" {
		t.Fatalf("11th in one second: status %d, RateLimit %q; want 429, limited:ip1", w.Code, s.RateLimit)
	}
	// ip1 refused: per-consumer was taken 10 times (ip1 is taken first:
	// shortest window), so the refused request did not consume from it.
	refused := []struct{ name, want string }{
		{"RateLimit", `"per-consumer";r=90;t=6, "ip1";r=0;t=1`},
		{"RateLimit-Limit", "10"},
		{"RateLimit-Remaining", "0"},
		{"RateLimit-Reset", "1"},
		{"Retry-After", "1"},
	}
	for _, c := range refused {
		if got := w.Header().Get(c.name); got != c.want {
			t.Errorf("refused: %s = %q; want %q", c.name, got, c.want)
		}
	}
}

func TestSeveralLimitsStrictestDecides(t *testing.T) {
	t.Parallel()
	hs := newHarness(t, Options{Limits: []config.RateLimit{
		{Name: "day", Limit: 15, Window: win(24 * time.Hour), By: "ip", Burst: 15},
		{Name: "second", Limit: 5, Window: win(time.Second), By: "ip", Burst: 5},
	}})
	if got := hs.allowedN(20, req{}); got != 5 {
		t.Fatalf("first second: allowed %d of 20; want 5 (per-second limit)", got)
	}
	hs.clk.Advance(time.Second)
	if got := hs.allowedN(20, req{}); got != 5 {
		t.Fatalf("second second: allowed %d; want 5", got)
	}
	hs.clk.Advance(time.Second)
	// 10 taken from the day limit so far (refusals by "second" took
	// nothing from "day"): 5 more today.
	if got := hs.allowedN(20, req{}); got != 5 {
		t.Fatalf("third second: allowed %d; want 5", got)
	}
	hs.clk.Advance(time.Second)
	w, s := hs.do(req{})
	if w.Code != http.StatusTooManyRequests || s.RateLimit != "limited:day" {
		t.Fatalf("day exhausted: status %d, RateLimit %q; want 429, limited:day", w.Code, s.RateLimit)
	}
	if got := w.Header().Get("RateLimit-Limit"); got != "15" {
		t.Errorf("RateLimit-Limit = %q; want 15 (the refusing limit)", got)
	}
	// One day-token every 96 minutes, counted from the first request 3s ago.
	if got := w.Header().Get("Retry-After"); got != "5757" {
		t.Errorf("Retry-After = %q; want 5757", got)
	}
}

func TestConsumerOverride(t *testing.T) {
	t.Parallel()
	hs := newHarness(t, Options{
		Limits: []config.RateLimit{{Limit: 2, Window: win(time.Minute), By: "consumer", Burst: 2}},
		Consumers: map[string][]config.RateLimit{
			"gold": {{Name: "gold", Limit: 5, Window: win(time.Minute), By: "consumer", Burst: 5}},
		},
	})
	if got := hs.allowedN(10, req{consumer: "bronze"}); got != 2 {
		t.Errorf("bronze: allowed %d; want 2", got)
	}
	if got := hs.allowedN(10, req{consumer: "gold"}); got != 5 {
		t.Errorf("gold: allowed %d; want 5", got)
	}
	w, _ := hs.do(req{consumer: "gold"})
	if got := w.Header().Get("RateLimit-Policy"); got != `"gold";q=5;w=60` {
		t.Errorf("gold RateLimit-Policy = %q; want the override's", got)
	}
}

func TestKeysBy(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name       string
		by         string
		a, b       req
		sameBucket bool
	}{
		{"ip: other address", "ip", req{ip: "192.0.2.1"}, req{ip: "192.0.2.2"}, false},
		{"ip: consumer does not matter", "ip", req{consumer: "a"}, req{consumer: "b"}, true},
		{"ip: mapped v4 is v4", "ip", req{ip: "192.0.2.1"}, req{ip: "::ffff:192.0.2.1"}, true},
		{"ip: one v6 /64", "ip", req{ip: "2001:db8::1"}, req{ip: "2001:db8::ffff:1"}, true},
		{"ip: other v6 /64", "ip", req{ip: "2001:db8::1"}, req{ip: "2001:db8:0:1::1"}, false},
		{"consumer: other consumer", "consumer", req{consumer: "a"}, req{consumer: "b"}, false},
		{"consumer: address does not matter", "consumer", req{consumer: "a", ip: "192.0.2.1"}, req{consumer: "a", ip: "192.0.2.9"}, true},
		{"consumer: anonymous by address", "consumer", req{ip: "192.0.2.1"}, req{ip: "192.0.2.9"}, false},
		{"consumer: anonymous same address", "consumer", req{ip: "192.0.2.1"}, req{ip: "192.0.2.1"}, true},
		{"route: one bucket", "route", req{ip: "192.0.2.1", consumer: "a"}, req{ip: "192.0.2.9", consumer: "b"}, true},
		{"header: other value", "header:X-Tenant", req{header: map[string]string{"X-Tenant": "t1"}}, req{header: map[string]string{"X-Tenant": "t2"}}, false},
		{"header: same value, other address", "header:x-tenant", req{ip: "192.0.2.1", header: map[string]string{"X-Tenant": "t1"}}, req{ip: "192.0.2.9", header: map[string]string{"X-Tenant": "t1"}}, true},
		{"header: absent counts by address", "header:X-Tenant", req{ip: "192.0.2.1"}, req{ip: "192.0.2.9"}, false},
		{"header: absent, same address", "header:X-Tenant", req{ip: "192.0.2.1"}, req{ip: "192.0.2.1"}, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			hs := newHarness(t, Options{Limits: []config.RateLimit{{Limit: 1, Window: win(time.Hour), By: c.by}}})
			if w, _ := hs.do(c.a); w.Code != http.StatusNoContent {
				t.Fatalf("first request: status %d; want 204", w.Code)
			}
			w, _ := hs.do(c.b)
			if got, want := w.Code == http.StatusTooManyRequests, c.sameBucket; got != want {
				t.Errorf("second request refused = %v; want %v (same bucket)", got, want)
			}
		})
	}
}

func TestHeaderKeyIsBounded(t *testing.T) {
	t.Parallel()
	lm, err := compileLimit("r", "", 0, config.RateLimit{Limit: 1, Window: win(time.Second), By: "header:X-K"})
	if err != nil {
		t.Fatal(err)
	}
	short := httptest.NewRequest("GET", "/", nil)
	short.Header.Set("X-K", "a")
	long := httptest.NewRequest("GET", "/", nil)
	long.Header.Set("X-K", strings.Repeat("a", 10000))
	s := &pipeline.State{}
	ks, kl := lm.appendKey(nil, short, s), lm.appendKey(nil, long, s)
	if len(ks) != len(kl) || len(kl) > 100 {
		t.Errorf("key lengths %d and %d; want equal and short", len(ks), len(kl))
	}
}

func TestKeysDoNotCollideAcrossNames(t *testing.T) {
	t.Parallel()
	// Route "a:1:b" with limit "c" vs route "a" ... must differ.
	pairs := [][3]string{{"a:1:b", "", "c"}, {"a", "1:b", "c"}, {"a", "", "1:b:c"}}
	seen := map[string]bool{}
	for _, p := range pairs {
		k := keyPrefix(p[0], p[1], p[2])
		if seen[k] {
			t.Errorf("key prefix %q produced twice", k)
		}
		seen[k] = true
	}
}

func TestNewErrors(t *testing.T) {
	t.Parallel()
	mem := store.NewMemory(store.MemoryOptions{})
	t.Cleanup(func() { mem.Close() })
	ok := config.RateLimit{Limit: 1, Window: win(time.Second), By: "ip"}
	cases := []struct {
		name string
		o    Options
		want string
	}{
		{"duplicate names", Options{Limits: []config.RateLimit{ok, {Name: "ip0", Limit: 2, Window: win(time.Second)}}}, "two limits named"},
		{"zero limit", Options{Limits: []config.RateLimit{{Limit: 0, Window: win(time.Second)}}}, "at least 1"},
		{"zero window", Options{Limits: []config.RateLimit{{Limit: 1}}}, "window"},
		{"unknown by", Options{Limits: []config.RateLimit{{Limit: 1, Window: win(time.Second), By: "path"}}}, "unknown by"},
		{"unknown on_error", Options{Limits: []config.RateLimit{ok}, OnError: "maybe"}, "on_error"},
		{"bad override", Options{Limits: []config.RateLimit{ok}, Consumers: map[string][]config.RateLimit{"a": {{Limit: 1}}}}, `consumer "a"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			c.o.Store = mem
			_, err := New(c.o)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("New error = %v; want one containing %q", err, c.want)
			}
		})
	}
}

func TestMetricsCountDecisions(t *testing.T) {
	t.Parallel()
	m := telemetry.NewMetrics()
	hs := newHarness(t, Options{Route: "api", Metrics: m, Limits: []config.RateLimit{{Name: "l", Limit: 2, Window: win(time.Hour)}}})
	hs.allowedN(5, req{})
	vec := `portunus_ratelimit_decisions_total`
	got, err := testutil.GatherAndCount(m.Registry, vec)
	if err != nil || got != 2 {
		t.Fatalf("series = %d (%v); want 2", got, err)
	}
	want := `
# HELP portunus_ratelimit_decisions_total Rate limit decisions, by route, limit name and decision (allowed or limited).
# TYPE portunus_ratelimit_decisions_total counter
portunus_ratelimit_decisions_total{decision="allowed",limit="l",route="api"} 2
portunus_ratelimit_decisions_total{decision="limited",limit="l",route="api"} 3
`
	if err := testutil.GatherAndCompare(m.Registry, strings.NewReader(want), vec); err != nil {
		t.Error(err)
	}
}

// flakyStore fails while down is set; otherwise it is a memory store.
type flakyStore struct {
	*store.Memory
	mu    sync.Mutex
	down  bool
	calls int
}

var errDown = errors.New("connection refused")

func (f *flakyStore) setDown(v bool) {
	f.mu.Lock()
	f.down = v
	f.mu.Unlock()
}

func (f *flakyStore) Allow(ctx context.Context, key string, l store.Limit, n int) (store.Decision, error) {
	f.mu.Lock()
	f.calls++
	down := f.down
	f.mu.Unlock()
	if down {
		return store.Decision{}, errDown
	}
	return f.Memory.Allow(ctx, key, l, n)
}

func (f *flakyStore) callCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls
}

func TestOnError(t *testing.T) {
	t.Parallel()
	for _, mode := range []string{"fail_open", "fail_closed"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			clk := newClock()
			fs := &flakyStore{Memory: store.NewMemory(store.MemoryOptions{Now: clk.Now})}
			t.Cleanup(func() { fs.Close() })
			hs := newHarnessAt(t, clk, Options{Store: fs, OnError: mode, Limits: []config.RateLimit{{Limit: 3, Window: win(time.Hour)}}})

			if got := hs.allowedN(1, req{}); got != 1 {
				t.Fatalf("store up: allowed %d; want 1", got)
			}
			fs.setDown(true)
			w, s := hs.do(req{})
			switch mode {
			case "fail_open":
				if w.Code != http.StatusNoContent {
					t.Fatalf("store down, fail_open: status %d; want 204", w.Code)
				}
				// The local limiter has its own buckets: 3 in all, one used.
				if got := hs.allowedN(5, req{}); got != 2 {
					t.Errorf("store down, fail_open: allowed %d more; want 2 (local limit)", got)
				}
			case "fail_closed":
				if w.Code != http.StatusServiceUnavailable || w.Header().Get("Retry-After") != "1" {
					t.Fatalf("store down, fail_closed: status %d, Retry-After %q; want 503, 1", w.Code, w.Header().Get("Retry-After"))
				}
				if !strings.Contains(w.Body.String(), "rate limit store unavailable") {
					t.Errorf("body %q; want the store detail", w.Body.String())
				}
				if s.RateLimit != "error" {
					t.Errorf("State.RateLimit = %q; want error", s.RateLimit)
				}
			}
			// Backing off: the store is not asked again within a second.
			before := fs.callCount()
			hs.do(req{})
			if got := fs.callCount(); got != before {
				t.Errorf("store called %d times while backing off; want 0", got-before)
			}
			fs.setDown(false)
			clk.Advance(2 * time.Second)
			w, _ = hs.do(req{})
			if w.Code != http.StatusNoContent || fs.callCount() == before {
				t.Fatalf("store back: status %d, store asked %v; want 204, true", w.Code, fs.callCount() != before)
			}
			// Back on the shared store: 2 used there (one before, one now).
			if got := hs.allowedN(5, req{}); got != 1 {
				t.Errorf("store back: allowed %d more; want 1", got)
			}
		})
	}
}
