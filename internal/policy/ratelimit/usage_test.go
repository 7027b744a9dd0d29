package ratelimit

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/portunus-gw/portunus/internal/config"
	"github.com/portunus-gw/portunus/internal/store"
)

// TestConsumerUsage reads, through ConsumerUsage, the buckets the limiter
// takes from: per consumer, per route, the consumer's own override apart,
// by ip and header listed as not per consumer; reading takes nothing.
func TestConsumerUsage(t *testing.T) {
	t.Parallel()
	clk := newClock()
	mem := store.NewMemory(store.MemoryOptions{Now: clk.Now})
	t.Cleanup(func() { mem.Close() })
	limits := []config.RateLimit{
		{Name: "per-consumer", Limit: 5, Window: win(time.Minute), By: "consumer"},
		{Limit: 100, Window: win(time.Hour), By: "route"},
		{Limit: 50, Window: win(time.Minute)},
		{Limit: 9, Window: win(time.Minute), By: "header:X-Key"},
	}
	own := []config.RateLimit{{Name: "gold", Limit: 10, Window: win(time.Minute), By: "consumer", Burst: 20}}
	hs := newHarnessAt(t, clk, Options{Route: "api", Limits: limits, Consumers: map[string][]config.RateLimit{"gold": own}, Store: mem})
	ctx := context.Background()

	if got := hs.allowedN(3, req{consumer: "bronze"}); got != 3 {
		t.Fatalf("bronze: allowed %d of 3", got)
	}
	if got := hs.allowedN(4, req{consumer: "gold"}); got != 4 {
		t.Fatalf("gold: allowed %d of 4", got)
	}

	var us []Usage
	for range 5 { // reading again and again takes nothing
		var err error
		us, err = ConsumerUsage(ctx, mem, "api", "bronze", limits, false, clk.Now())
		if err != nil {
			t.Fatalf("ConsumerUsage: %v", err)
		}
	}
	if len(us) != 4 {
		t.Fatalf("got %d usages; want 4: %+v", len(us), us)
	}
	want := []struct {
		name, by, scope string
		used, remaining int
		shown           bool
	}{
		{"per-consumer", "consumer", ScopeConsumer, 3, 2, true},
		{"route1", "route", ScopeRoute, 3, 97, true},
		{"ip2", "ip", ScopeNotPerConsumer, 0, 0, false},
		{"header:X-Key3", "header:X-Key", ScopeNotPerConsumer, 0, 0, false},
	}
	for i, w := range want {
		u := us[i]
		if u.Route != "api" || u.Name != w.name || u.By != w.by || u.Scope != w.scope || u.Source != "route" {
			t.Errorf("usage %d: got %+v; want name %s by %s scope %s source route", i, u, w.name, w.by, w.scope)
		}
		if (u.Usage != nil) != w.shown {
			t.Errorf("usage %d (%s): usage shown %v; want %v", i, w.name, u.Usage != nil, w.shown)
			continue
		}
		if u.Usage != nil && (u.Usage.Used != w.used || u.Usage.Remaining != w.remaining || !u.Usage.Allowed) {
			t.Errorf("usage %d (%s): got %+v; want used %d, remaining %d, allowed", i, w.name, *u.Usage, w.used, w.remaining)
		}
	}
	if u := us[0]; u.Limit != 5 || u.Burst != 5 || u.Window != "1m0s" || u.WindowSeconds != 60 {
		t.Errorf("per-consumer policy: got limit %d burst %d window %s (%gs); want 5, 5, 1m0s, 60", u.Limit, u.Burst, u.Window, u.WindowSeconds)
	}
	// 3 of 5 taken over a minute: 36s until full again.
	if r := us[0].Usage; r.ResetAfterSeconds != 36 || !r.ResetsAt.Equal(clk.Now().Add(36*time.Second)) {
		t.Errorf("per-consumer reset: got %gs at %s; want 36s", r.ResetAfterSeconds, r.ResetsAt)
	}

	// Gold's own limit, apart from the route's buckets.
	gold, err := ConsumerUsage(ctx, mem, "api", "gold", own, true, clk.Now())
	if err != nil || len(gold) != 1 {
		t.Fatalf("gold's own: got %+v, %v", gold, err)
	}
	if g := gold[0]; g.Source != "consumer" || g.Name != "gold" || g.Burst != 20 || g.Usage == nil || g.Usage.Used != 4 || g.Usage.Remaining != 16 {
		t.Errorf("gold's own: got %+v (usage %+v); want source consumer, burst 20, used 4, remaining 16", g, g.Usage)
	}
	asRoute, err := ConsumerUsage(ctx, mem, "api", "gold", limits, false, clk.Now())
	if err != nil || asRoute[0].Usage.Used != 0 {
		t.Errorf("gold under the route's limits (not what it uses): got %+v, %v; want untouched", asRoute[0].Usage, err)
	}

	// The reads took nothing: bronze has exactly 2 left.
	if got := hs.allowedN(5, req{consumer: "bronze"}); got != 2 {
		t.Errorf("bronze after the reads: allowed %d of 5; want 2", got)
	}
	us, err = ConsumerUsage(ctx, mem, "api", "bronze", limits, false, clk.Now())
	if err != nil {
		t.Fatal(err)
	}
	if r := us[0].Usage; r.Allowed || r.Remaining != 0 || r.Used != 5 || r.RetryAfterSeconds != 12 {
		t.Errorf("exhausted: got %+v; want refused, remaining 0, used 5, retry after 12s", *r)
	}
	clk.Advance(24 * time.Second) // two tokens back
	us, _ = ConsumerUsage(ctx, mem, "api", "bronze", limits, false, clk.Now())
	if r := us[0].Usage; !r.Allowed || r.Remaining != 2 {
		t.Errorf("after 24s: got %+v; want 2 remaining", *r)
	}

	// Without a consumer, by: consumer counts by address: not shown.
	anon, err := ConsumerUsage(ctx, mem, "api", "", limits, false, clk.Now())
	if err != nil || anon[0].Scope != ScopeNotPerConsumer || anon[0].Usage != nil {
		t.Errorf("no consumer: got %+v, %v; want not per consumer", anon[0], err)
	}
	if none, err := ConsumerUsage(ctx, mem, "api", "bronze", nil, false, clk.Now()); err != nil || none == nil || len(none) != 0 {
		t.Errorf("no limits: got %v, %v; want an empty list", none, err)
	}
	if _, err := ConsumerUsage(ctx, mem, "api", "bronze", []config.RateLimit{{Limit: 0, Window: win(time.Minute)}}, false, clk.Now()); !errors.Is(err, ErrInvalidLimits) {
		t.Errorf("invalid limit: got %v; want ErrInvalidLimits", err)
	}
}

// TestConsumerUsageStoreError passes the store's error on.
func TestConsumerUsageStoreError(t *testing.T) {
	t.Parallel()
	mem := store.NewMemory(store.MemoryOptions{})
	mem.Close()
	_, err := ConsumerUsage(context.Background(), mem, "api", "bronze",
		[]config.RateLimit{{Limit: 1, Window: win(time.Second), By: "consumer"}}, false, time.Now())
	if !errors.Is(err, store.ErrClosed) {
		t.Errorf("closed store: got %v; want store.ErrClosed passed on", err)
	}
}
