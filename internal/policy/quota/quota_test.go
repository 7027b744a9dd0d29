package quota

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/portunus-gw/portunus/internal/config"
	"github.com/portunus-gw/portunus/internal/pipeline"
	"github.com/portunus-gw/portunus/internal/store"
)

type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Set(t time.Time) {
	c.mu.Lock()
	c.now = t
	c.mu.Unlock()
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// gateway is a test server running the quota middleware in front of a 200
// handler. The client address is the socket's; X-Test-Consumer plays the
// authenticated consumer; X-Test-Upstream-Policy plays a rate limiter
// that set its fields first.
type gateway struct {
	srv   *httptest.Server
	clock *fakeClock
	st    store.Store
	hits  int
	mu    sync.Mutex
}

type gwOpts struct {
	quotas    []config.Quota
	consumers map[string][]config.Quota
	lookup    func(string) []config.Quota
	st        store.Store // nil: a memory store on the fake clock
	onError   string
	route     string
	clock     *fakeClock
}

func newGateway(t *testing.T, o gwOpts) *gateway {
	t.Helper()
	g := &gateway{clock: o.clock}
	if g.clock == nil {
		g.clock = &fakeClock{now: time.Date(2026, 5, 4, 12, 0, 0, 0, time.UTC)}
	}
	g.st = o.st
	if g.st == nil {
		m := store.NewMemory(store.MemoryOptions{Now: g.clock.Now})
		t.Cleanup(func() { _ = m.Close() })
		g.st = m
	}
	route := o.route
	if route == "" {
		route = uniqueRoute(t.Name())
	}
	mw, err := New(Options{Route: route, Quotas: o.quotas, Consumers: o.consumers, Lookup: o.lookup, Store: g.st, OnError: o.onError, Now: g.clock.Now})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	h := mw(func(w http.ResponseWriter, r *http.Request, s *pipeline.State) {
		g.mu.Lock()
		g.hits++
		g.mu.Unlock()
		w.WriteHeader(http.StatusOK)
	})
	g.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host, _, _ := net.SplitHostPort(r.RemoteAddr)
		s := &pipeline.State{ClientIP: netip.MustParseAddr(host), Consumer: r.Header.Get("X-Test-Consumer"), RouteName: route}
		if ip := r.Header.Get("X-Test-IP"); ip != "" {
			s.ClientIP = netip.MustParseAddr(ip)
		}
		if p := r.Header.Get("X-Test-Upstream-Policy"); p != "" {
			w.Header().Set("RateLimit-Policy", p)
			w.Header().Set("RateLimit", p)
		}
		h(w, r, s)
	}))
	t.Cleanup(g.srv.Close)
	return g
}

type answer struct {
	status int
	header http.Header
	body   string
}

func (g *gateway) get(t *testing.T, hdr ...string) answer {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, g.srv.URL+"/x", nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := g.srv.Client().Do(req)
	if err != nil {
		t.Fatalf("GET: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return answer{resp.StatusCode, resp.Header, string(b)}
}

// expectStatuses sends len(want) requests and checks each status.
func (g *gateway) expectStatuses(t *testing.T, what string, want []int, hdr ...string) answer {
	t.Helper()
	var a answer
	for i, w := range want {
		a = g.get(t, hdr...)
		if a.status != w {
			t.Fatalf("%s: request %d: got status %d; want %d (body %s)", what, i, a.status, w, a.body)
		}
	}
	return a
}

func repeat(status, n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = status
	}
	return out
}

func TestCountsUpToLimitThen429(t *testing.T) {
	t.Parallel()
	g := newGateway(t, gwOpts{quotas: []config.Quota{{Limit: 3, Period: "day", By: "ip"}}})
	// 12:00 UTC: 12h to midnight.
	for i := range 3 {
		a := g.get(t)
		if a.status != http.StatusOK {
			t.Fatalf("request %d: got %d; want 200", i, a.status)
		}
		if got, want := a.header.Get("RateLimit-Policy"), `"quota-0";q=3;w=86400`; got != want {
			t.Errorf("request %d: RateLimit-Policy: got %q; want %q", i, got, want)
		}
		if got, want := a.header.Get("RateLimit"), `"quota-0";r=`+strconv.Itoa(2-i)+`;t=43200`; got != want {
			t.Errorf("request %d: RateLimit: got %q; want %q", i, got, want)
		}
	}
	a := g.get(t)
	if a.status != http.StatusTooManyRequests {
		t.Fatalf("4th request: got %d; want 429", a.status)
	}
	if got := a.header.Get("Retry-After"); got != "43200" {
		t.Errorf("Retry-After: got %q; want 43200 (seconds to midnight)", got)
	}
	if got := a.header.Get("Content-Type"); got != "application/problem+json" {
		t.Errorf("Content-Type: got %q; want application/problem+json", got)
	}
	var p struct{ Type, Detail string }
	if err := json.Unmarshal([]byte(a.body), &p); err != nil {
		t.Fatalf("body %q: %v", a.body, err)
	}
	if p.Type != "urn:portunus:problem:rate-limited" || p.Detail != "quota exhausted" {
		t.Errorf("problem: got type %q detail %q; want rate-limited, quota exhausted", p.Type, p.Detail)
	}
	if got, want := a.header.Get("RateLimit"), `"quota-0";r=0;t=43200`; got != want {
		t.Errorf("429 RateLimit: got %q; want %q", got, want)
	}
	if g.hits != 3 {
		t.Errorf("upstream hits: got %d; want 3", g.hits)
	}
	// Retry-After follows the clock: 1s before midnight it says 1.
	g.clock.Set(time.Date(2026, 5, 4, 23, 59, 59, 500_000_000, time.UTC))
	if a := g.get(t); a.status != http.StatusTooManyRequests || a.header.Get("Retry-After") != "1" {
		t.Errorf("0.5s before midnight: got %d, Retry-After %q; want 429, 1", a.status, a.header.Get("Retry-After"))
	}
	g.clock.Set(time.Date(2026, 5, 5, 0, 0, 0, 0, time.UTC))
	g.expectStatuses(t, "after midnight", []int{200, 200, 200, 429})
}

// TestResetsOnBoundary walks the clock to just before each kind of
// boundary, exhausts the quota, and checks it holds one second before and
// resets exactly on the boundary.
func TestResetsOnBoundary(t *testing.T) {
	t.Parallel()
	paris := mustLoc(t, "Europe/Paris")
	cases := []struct {
		name     string
		quota    config.Quota
		at       time.Time // the boundary
		window   int       // w= in the period before the boundary
		sameFrom time.Time // a time in the same period, earlier (e.g. a previous day of the week)
	}{
		{"midnight utc", config.Quota{Limit: 2, Period: "day"}, time.Date(2026, 5, 5, 0, 0, 0, 0, time.UTC), 86400, time.Date(2026, 5, 4, 0, 0, 0, 0, time.UTC)},
		{"midnight paris after spring forward", config.Quota{Limit: 2, Period: "day", TimeZone: "Europe/Paris"},
			time.Date(2026, 3, 30, 0, 0, 0, 0, paris), 82800, time.Date(2026, 3, 29, 0, 0, 0, 0, paris)},
		{"midnight paris after fall back", config.Quota{Limit: 2, Period: "day", TimeZone: "Europe/Paris"},
			time.Date(2026, 10, 26, 0, 0, 0, 0, paris), 90000, time.Date(2026, 10, 25, 1, 30, 0, 0, paris)},
		{"iso week monday", config.Quota{Limit: 2, Period: "week"}, time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC), 7 * 86400,
			time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)},
		{"month jan 31 to feb 1 in a leap year", config.Quota{Limit: 2, Period: "month"}, time.Date(2028, 2, 1, 0, 0, 0, 0, time.UTC), 31 * 86400,
			time.Date(2028, 1, 1, 0, 0, 0, 0, time.UTC)},
		{"month feb 29 to mar 1", config.Quota{Limit: 2, Period: "month"}, time.Date(2028, 3, 1, 0, 0, 0, 0, time.UTC), 29 * 86400,
			time.Date(2028, 2, 1, 0, 0, 0, 0, time.UTC)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			clock := &fakeClock{now: tc.sameFrom}
			g := newGateway(t, gwOpts{quotas: []config.Quota{tc.quota}, clock: clock})
			g.expectStatuses(t, "start of period", []int{200})
			clock.Set(tc.at.Add(-time.Second))
			a := g.expectStatuses(t, "1s before the boundary", []int{200, 429})
			if got := a.header.Get("Retry-After"); got != "1" {
				t.Errorf("Retry-After 1s before the boundary: got %q; want 1", got)
			}
			if got, want := a.header.Get("RateLimit-Policy"), `"quota-0";q=2;w=`+strconv.Itoa(tc.window); got != want {
				t.Errorf("RateLimit-Policy: got %q; want %q", got, want)
			}
			clock.Set(tc.at)
			g.expectStatuses(t, "on the boundary", []int{200, 200, 429})
		})
	}
}

func TestRefusedRequestsDoNotCount(t *testing.T) {
	t.Parallel()
	// The day quota refuses the 3rd request; the month quota must not be
	// charged for refused ones, so after the day resets the month still
	// has 5-2 = 3 left.
	g := newGateway(t, gwOpts{quotas: []config.Quota{
		{Limit: 5, Period: "month"},
		{Limit: 2, Period: "day"},
	}})
	a := g.expectStatuses(t, "day one", []int{200, 200, 429, 429, 429, 429})
	if got, want := a.header.Get("RateLimit"), `"quota-0";r=3;t=`+strconv.Itoa(27*86400+43200)+`, "quota-1";r=0;t=43200`; got != want {
		t.Errorf("429 RateLimit: got %q; want %q", got, want)
	}
	g.clock.Advance(24 * time.Hour)
	g.expectStatuses(t, "day two", []int{200, 200, 429})
	g.clock.Advance(24 * time.Hour)
	a = g.expectStatuses(t, "day three", []int{200, 429})
	if got, want := a.header.Get("RateLimit"), `"quota-0";r=0;t=`+strconv.Itoa(25*86400+43200); got != want {
		t.Errorf("month exhausted RateLimit: got %q; want %q", got, want)
	}
}

func TestKeyedBy(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name  string
		by    string
		steps []struct {
			hdr  []string
			want int
		}
	}{
		{name: "consumer", by: "consumer", steps: []struct {
			hdr  []string
			want int
		}{
			{[]string{"X-Test-Consumer", "alice"}, 200},
			{[]string{"X-Test-Consumer", "alice"}, 429},
			{[]string{"X-Test-Consumer", "bob"}, 200},
			{nil, 200}, // anonymous: counted per client address
			{nil, 429}, // the same address again
			{[]string{"X-Test-IP", "192.0.2.9"}, 200}, // another address
		}},
		{name: "ip", by: "ip", steps: []struct {
			hdr  []string
			want int
		}{
			{[]string{"X-Test-IP", "192.0.2.1"}, 200},
			{[]string{"X-Test-IP", "192.0.2.1", "X-Test-Consumer", "alice"}, 429},
			{[]string{"X-Test-IP", "::ffff:192.0.2.1"}, 429}, // the same address spelled as IPv4-mapped
			{[]string{"X-Test-IP", "192.0.2.2"}, 200},
			{[]string{"X-Test-IP", "2001:db8::1"}, 200},
			{[]string{"X-Test-IP", "2001:db8::ffff"}, 429}, // the same /64
			{[]string{"X-Test-IP", "2001:db8:0:1::1"}, 200},
		}},
		{name: "route", by: "route", steps: []struct {
			hdr  []string
			want int
		}{
			{[]string{"X-Test-IP", "192.0.2.1"}, 200},
			{[]string{"X-Test-IP", "192.0.2.2"}, 429},
		}},
		{name: "header", by: "header:x-tenant", steps: []struct {
			hdr  []string
			want int
		}{
			{[]string{"X-Tenant", "acme"}, 200},
			{[]string{"X-Tenant", "acme", "X-Test-IP", "192.0.2.7"}, 429},
			{[]string{"X-Tenant", "globex"}, 200},
			{[]string{"X-Tenant", strings.Repeat("z", 10000)}, 200},
			{nil, 200}, // absent header: per client address
			{nil, 429},
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			g := newGateway(t, gwOpts{quotas: []config.Quota{{Limit: 1, Period: "day", By: tc.by}}})
			for i, s := range tc.steps {
				if a := g.get(t, s.hdr...); a.status != s.want {
					t.Errorf("step %d %v: got %d; want %d", i, s.hdr, a.status, s.want)
				}
			}
		})
	}
}

func TestHeaderKeyIsBounded(t *testing.T) {
	t.Parallel()
	qs, err := compile("r", "", []config.Quota{{Limit: 1, Period: "day", By: "header:X-Key"}})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Unix(0, 0)
	short, _ := qs[0].key(start, subject{header: http.Header{"X-Key": {"a"}}})
	long, _ := qs[0].key(start, subject{header: http.Header{"X-Key": {strings.Repeat("a", 1<<16)}}})
	if len(long) != len(short) {
		t.Errorf("key for a 64KiB header: got %d bytes; want %d, as for a 1-byte one", len(long), len(short))
	}
	other, _ := qs[0].key(start, subject{header: http.Header{"X-Key": {"b"}}})
	if other == short {
		t.Errorf("different header values share the key %q", short)
	}
	if _, ok := qs[0].key(start, subject{}); ok {
		t.Error("key without header or address: got ok; want not ok")
	}
}

func TestKeysOfDifferentRoutesNeverMeet(t *testing.T) {
	t.Parallel()
	// Without length prefixes "a:0:d" quota 0 and "a" ... could share a key.
	a, _ := compile("a", "", []config.Quota{{Limit: 1, Period: "day"}})
	b, _ := compile("a:0:d", "", []config.Quota{{Limit: 1, Period: "day"}})
	if strings.HasPrefix(b[0].prefix, a[0].prefix) || strings.HasPrefix(a[0].prefix, b[0].prefix) {
		t.Errorf("prefixes %q and %q overlap", a[0].prefix, b[0].prefix)
	}
}

func TestAppendsToRateLimitFields(t *testing.T) {
	t.Parallel()
	g := newGateway(t, gwOpts{quotas: []config.Quota{{Limit: 2, Period: "day"}}})
	a := g.get(t, "X-Test-Upstream-Policy", `"by0";q=10;w=1`)
	if got, want := a.header.Get("RateLimit-Policy"), `"by0";q=10;w=1, "quota-0";q=2;w=86400`; got != want {
		t.Errorf("RateLimit-Policy: got %q; want %q", got, want)
	}
	if got, want := a.header.Values("RateLimit"), []string{`"by0";q=10;w=1, "quota-0";r=1;t=43200`}; len(got) != 1 || got[0] != want[0] {
		t.Errorf("RateLimit: got %q; want %q", got, want)
	}
}

// brokenStore fails every Incr, like an unreachable Redis.
type brokenStore struct{ store.Store }

func (brokenStore) Incr(context.Context, string, int64, time.Time) (int64, error) {
	return 0, errors.New("store: redis incr: connection refused")
}

func TestOnStoreError(t *testing.T) {
	t.Parallel()
	q := []config.Quota{{Limit: 2, Period: "day"}}
	t.Run("fail_open counts locally", func(t *testing.T) {
		t.Parallel()
		g := newGateway(t, gwOpts{quotas: q, st: brokenStore{}, onError: "fail_open"})
		g.expectStatuses(t, "store down", []int{200, 200, 429})
	})
	t.Run("default is fail_open", func(t *testing.T) {
		t.Parallel()
		g := newGateway(t, gwOpts{quotas: q, st: brokenStore{}})
		g.expectStatuses(t, "store down", []int{200, 200, 429})
	})
	t.Run("fail_closed refuses with 503", func(t *testing.T) {
		t.Parallel()
		g := newGateway(t, gwOpts{quotas: q, st: brokenStore{}, onError: "fail_closed"})
		a := g.expectStatuses(t, "store down", []int{503, 503})
		if got := a.header.Get("Retry-After"); got != "1" {
			t.Errorf("Retry-After: got %q; want 1", got)
		}
		if !strings.Contains(a.body, "urn:portunus:problem:upstream-unavailable") {
			t.Errorf("body: got %s; want an upstream-unavailable problem, as the rate limiter answers", a.body)
		}
		if g.hits != 0 {
			t.Errorf("upstream hits: got %d; want 0", g.hits)
		}
	})
}

func TestNewRejectsBadQuotas(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		q    config.Quota
		want string
	}{
		{"zero limit", config.Quota{Limit: 0, Period: "day"}, "limit"},
		{"bad period", config.Quota{Limit: 1, Period: "year"}, "period"},
		{"bad zone", config.Quota{Limit: 1, Period: "day", TimeZone: "Mars/Olympus"}, "time_zone"},
		{"bad by", config.Quota{Limit: 1, Period: "day", By: "cookie"}, "by"},
		{"header without name", config.Quota{Limit: 1, Period: "day", By: "header:"}, "by"},
	}
	for _, tc := range cases {
		_, err := New(Options{Route: "r", Quotas: []config.Quota{tc.q}})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v; want an error mentioning %q", tc.name, err, tc.want)
		}
	}
	if mw, err := New(Options{Route: "r"}); err != nil || mw == nil {
		t.Errorf("no quotas: got %v; want a pass-through middleware", err)
	}
}

func TestRemaining(t *testing.T) {
	t.Parallel()
	quotas := []config.Quota{
		{Limit: 5, Period: "day", By: "consumer"},
		{Limit: 100, Period: "month", By: "ip"},
		{Limit: 9, Period: "week", By: "header:X-Tenant"},
		{Limit: 50, Period: "day", By: "route", TimeZone: "Europe/Paris"},
	}
	g := newGateway(t, gwOpts{quotas: quotas, route: "remaining-api"})
	for range 2 {
		g.get(t, "X-Test-Consumer", "alice", "X-Test-IP", "192.0.2.1", "X-Tenant", "acme")
	}
	ctx := context.Background()
	now := g.clock.Now()
	cases := []struct {
		name string
		sub  Subject
		want map[string]int64 // name -> remaining
	}{
		{"consumer", Subject{Consumer: "alice"}, map[string]int64{"quota-0": 3, "quota-3": 48}},
		{"unknown consumer", Subject{Consumer: "bob"}, map[string]int64{"quota-0": 5, "quota-3": 48}},
		{"ip", Subject{IP: netip.MustParseAddr("192.0.2.1")}, map[string]int64{"quota-0": 5, "quota-1": 98, "quota-2": 9, "quota-3": 48}},
		{"header", Subject{Header: "acme"}, map[string]int64{"quota-2": 7, "quota-3": 48}},
	}
	for _, tc := range cases {
		got, err := Remaining(ctx, g.st, "remaining-api", quotas, tc.sub, now)
		if err != nil {
			t.Fatalf("%s: Remaining: %v", tc.name, err)
		}
		gotMap := map[string]int64{}
		for _, s := range got {
			gotMap[s.Name] = s.Remaining
			if s.Used+s.Remaining != s.Limit {
				t.Errorf("%s: %s used %d + remaining %d != limit %d", tc.name, s.Name, s.Used, s.Remaining, s.Limit)
			}
		}
		if len(gotMap) != len(tc.want) {
			t.Errorf("%s: got %v; want %v", tc.name, gotMap, tc.want)
			continue
		}
		for k, v := range tc.want {
			if gotMap[k] != v {
				t.Errorf("%s: %s remaining: got %d; want %d", tc.name, k, gotMap[k], v)
			}
		}
	}
	got, _ := Remaining(ctx, g.st, "remaining-api", quotas, Subject{Consumer: "alice"}, now)
	if len(got) == 0 || got[0].Period != "day" || got[0].TimeZone != "UTC" || !got[0].ResetsAt.Equal(time.Date(2026, 5, 5, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("first status: got %+v; want a UTC day resetting at 2026-05-05T00:00Z", got)
	}
	// Reading must not count.
	again, _ := Remaining(ctx, g.st, "remaining-api", quotas, Subject{Consumer: "alice"}, now)
	if again[0].Remaining != got[0].Remaining {
		t.Errorf("second read: got %d; want %d (reads do not count)", again[0].Remaining, got[0].Remaining)
	}
}

func BenchmarkQuotaDecision(b *testing.B) {
	m := store.NewMemory(store.MemoryOptions{})
	defer m.Close()
	mw, err := New(Options{Route: "bench", Quotas: []config.Quota{{Limit: 1 << 62, Period: "day", By: "consumer"}}, Store: m})
	if err != nil {
		b.Fatal(err)
	}
	h := mw(func(http.ResponseWriter, *http.Request, *pipeline.State) {})
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		w := httptest.NewRecorder()
		s := &pipeline.State{Consumer: "alice", ClientIP: netip.MustParseAddr("192.0.2.1")}
		for pb.Next() {
			clear(w.Header())
			h(w, r, s)
		}
	})
}

// countingStore counts Incr calls and fails them all.
type countingStore struct {
	store.Store
	mu    sync.Mutex
	calls int
}

func (c *countingStore) Incr(context.Context, string, int64, time.Time) (int64, error) {
	c.mu.Lock()
	c.calls++
	c.mu.Unlock()
	return 0, errors.New("store: redis incr: i/o timeout")
}

func TestStoreBackoff(t *testing.T) {
	t.Parallel()
	st := &countingStore{}
	g := newGateway(t, gwOpts{quotas: []config.Quota{{Limit: 100, Period: "day"}}, st: st})
	g.expectStatuses(t, "store down", repeat(http.StatusOK, 5))
	if st.calls != 1 {
		t.Errorf("store calls within the back-off: got %d; want 1", st.calls)
	}
	g.clock.Advance(storeBackoff)
	g.expectStatuses(t, "after the back-off", []int{200})
	if st.calls != 2 {
		t.Errorf("store calls after the back-off: got %d; want 2 (tried again)", st.calls)
	}
}

// routeSeq numbers test routes: the fail_open fallback counters are
// process-wide (they outlive a reload on purpose), so a test run again in
// the same process (-count) must not find the previous run's counts.
var routeSeq atomic.Int64

func uniqueRoute(name string) string {
	return name + "#" + strconv.FormatInt(routeSeq.Add(1), 10)
}
