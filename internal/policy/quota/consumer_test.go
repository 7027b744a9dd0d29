package quota

import (
	"context"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/portunus-gw/portunus/internal/config"
)

// TestConsumerOverrideReplacesRouteQuotas: a consumer with its own quotas
// gets them instead of the route's; other consumers and anonymous clients
// get the route's.
func TestConsumerOverrideReplacesRouteQuotas(t *testing.T) {
	t.Parallel()
	g := newGateway(t, gwOpts{
		quotas:    []config.Quota{{Limit: 2, Period: "day", By: "consumer"}},
		consumers: map[string][]config.Quota{"gold": {{Limit: 4, Period: "day", By: "consumer"}}},
	})
	a := g.expectStatuses(t, "gold", []int{200, 200, 200, 200, 429}, "X-Test-Consumer", "gold")
	if got := a.header.Get("RateLimit-Policy"); got != `"quota-0";q=4;w=86400` {
		t.Errorf("gold's RateLimit-Policy: got %q; want its own limit, q=4", got)
	}
	a = g.expectStatuses(t, "basic", []int{200, 200, 429}, "X-Test-Consumer", "basic")
	if got := a.header.Get("RateLimit-Policy"); got != `"quota-0";q=2;w=86400` {
		t.Errorf("basic's RateLimit-Policy: got %q; want the route's, q=2", got)
	}
	g.expectStatuses(t, "anonymous", []int{200, 200, 429})
}

// TestConsumerOverrideCountsApart: an override's counters are the
// consumer's own, apart from the route's, whatever its `by`: by ip, the
// consumer and an anonymous client on one address do not share a count.
func TestConsumerOverrideCountsApart(t *testing.T) {
	t.Parallel()
	route := uniqueRoute(t.Name())
	g := newGateway(t, gwOpts{
		route:     route,
		quotas:    []config.Quota{{Limit: 3, Period: "day", By: "ip"}},
		consumers: map[string][]config.Quota{"gold": {{Limit: 2, Period: "day", By: "ip"}}},
	})
	g.expectStatuses(t, "gold by ip", []int{200, 200, 429}, "X-Test-Consumer", "gold")
	g.expectStatuses(t, "anonymous, same address", []int{200, 200, 200, 429})

	ctx := context.Background()
	sub := Subject{IP: netip.MustParseAddr("127.0.0.1")}
	routeSt, err := Remaining(ctx, g.st, route, []config.Quota{{Limit: 3, Period: "day", By: "ip"}}, sub, g.clock.Now())
	if err != nil || len(routeSt) != 1 || routeSt[0].Used != 3 || routeSt[0].Source != "route" {
		t.Errorf("route's count: got %+v, %v; want used 3 (the anonymous requests only), source route", routeSt, err)
	}
	own, err := ConsumerRemaining(ctx, g.st, route, "gold", []config.Quota{{Limit: 2, Period: "day", By: "ip"}}, sub, g.clock.Now())
	if err != nil || len(own) != 1 || own[0].Used != 2 || own[0].Remaining != 0 || own[0].Source != "consumer" {
		t.Errorf("gold's count: got %+v, %v; want used 2, remaining 0, source consumer", own, err)
	}
}

// TestConsumerOverrideNeedsRouteQuotas: on a route without quotas an
// override has nothing to replace, as with rate limits: nobody is metered.
func TestConsumerOverrideNeedsRouteQuotas(t *testing.T) {
	t.Parallel()
	g := newGateway(t, gwOpts{
		consumers: map[string][]config.Quota{"gold": {{Limit: 1, Period: "day", By: "consumer"}}},
		lookup:    func(string) []config.Quota { return []config.Quota{{Limit: 1, Period: "day"}} },
	})
	a := g.expectStatuses(t, "gold", []int{200, 200, 200}, "X-Test-Consumer", "gold")
	if got := a.header.Get("RateLimit-Policy"); got != "" {
		t.Errorf("RateLimit-Policy on a route without quotas: got %q; want none", got)
	}
	g.expectStatuses(t, "runtime consumer", []int{200, 200, 200}, "X-Test-Consumer", "rt")
}

// TestRuntimeConsumerQuotas: Lookup's quotas apply to consumers the config
// map does not name; a change (a new slice) applies on the next request and
// keeps the period's count, as raising a route quota in a reload does.
func TestRuntimeConsumerQuotas(t *testing.T) {
	t.Parallel()
	var cur atomic.Pointer[[]config.Quota]
	two := []config.Quota{{Limit: 2, Period: "day", By: "consumer", TimeZone: "UTC"}}
	cur.Store(&two)
	var calls atomic.Int64
	g := newGateway(t, gwOpts{
		quotas:    []config.Quota{{Limit: 5, Period: "day", By: "consumer"}},
		consumers: map[string][]config.Quota{"cfg": {{Limit: 1, Period: "day", By: "consumer"}}},
		lookup: func(name string) []config.Quota {
			calls.Add(1)
			if name == "rt" {
				return *cur.Load()
			}
			return nil
		},
	})
	g.expectStatuses(t, "rt, limit 2", []int{200, 200, 429}, "X-Test-Consumer", "rt")
	three := []config.Quota{{Limit: 3, Period: "day", By: "consumer", TimeZone: "UTC"}}
	cur.Store(&three)
	a := g.expectStatuses(t, "rt, limit raised to 3", []int{200, 429}, "X-Test-Consumer", "rt")
	if got := a.header.Get("RateLimit-Policy"); got != `"quota-0";q=3;w=86400` {
		t.Errorf("after the change: RateLimit-Policy %q; want q=3", got)
	}
	g.expectStatuses(t, "other consumer: the route's", repeat(200, 5), "X-Test-Consumer", "other")
	before := calls.Load()
	g.expectStatuses(t, "config override wins, no lookup", []int{200, 429}, "X-Test-Consumer", "cfg")
	if calls.Load() != before {
		t.Error("a consumer with a config override was looked up")
	}
}

func TestConsumerOverrideInvalid(t *testing.T) {
	t.Parallel()
	_, err := New(Options{
		Route: "r", Quotas: []config.Quota{{Limit: 1, Period: "day"}}, Store: nil,
		Consumers: map[string][]config.Quota{"gold": {{Limit: 1, Period: "year"}}},
	})
	if err == nil || !strings.Contains(err.Error(), `consumer "gold"`) {
		t.Errorf("New with a bad override: got %v; want an error naming the consumer", err)
	}
}

// TestOverrideKeysNeverMeetRouteKeys: an override's keys are apart from
// every route's own and every other override's.
func TestOverrideKeysNeverMeetRouteKeys(t *testing.T) {
	t.Parallel()
	q := []config.Quota{{Limit: 1, Period: "day"}}
	var prefixes []string
	for _, c := range []struct{ route, consumer string }{
		{"a", ""}, {"a", "b"}, {"a", "b:0"}, {"a:c1:b", ""}, {"a:c1:b:0:d", ""}, {"a", "0"}, {"a:0:d", ""},
	} {
		qs, err := compile(c.route, c.consumer, q)
		if err != nil {
			t.Fatal(err)
		}
		prefixes = append(prefixes, qs[0].prefix)
	}
	for i, a := range prefixes {
		for j, b := range prefixes {
			if i != j && strings.HasPrefix(a, b) {
				t.Errorf("prefix %q starts with %q", a, b)
			}
		}
	}
	// The route's keys are what they were before overrides existed.
	qs, _ := compile("r", "", q)
	if got, want := qs[0].prefix, "quota:1:r:0:d"; got != want {
		t.Errorf("route key prefix: got %q; want %q", got, want)
	}
}
