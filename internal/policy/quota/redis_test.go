package quota

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/portunus-gw/portunus/internal/config"
	"github.com/portunus-gw/portunus/internal/store"
	"github.com/portunus-gw/portunus/internal/store/redistest"
)

func newRedisStore(t *testing.T, addr, prefix string) *store.Redis {
	t.Helper()
	r, err := store.NewRedis(config.RedisStore{Addresses: []string{addr}, KeyPrefix: prefix})
	if err != nil {
		t.Fatalf("NewRedis: %v", err)
	}
	t.Cleanup(func() { _ = r.Close() })
	return r
}

// TestRedisSharedByTwoInstances runs two gateways, each with its own Redis
// client, on one Redis: together they admit exactly the limit.
func TestRedisSharedByTwoInstances(t *testing.T) {
	t.Parallel()
	addr := redistest.Start(t)
	prefix := redistest.KeyPrefix(t)
	q := []config.Quota{{Limit: 5, Period: "month", By: "consumer"}}
	// Real time: counters expire on Redis's clock, so the period must be now.
	clock := &fakeClock{now: time.Now()}
	a := newGateway(t, gwOpts{quotas: q, st: newRedisStore(t, addr, prefix), clock: clock, route: "shared"})
	b := newGateway(t, gwOpts{quotas: q, st: newRedisStore(t, addr, prefix), clock: clock, route: "shared"})
	ok := 0
	for i := range 10 {
		g := a
		if i%2 == 1 {
			g = b
		}
		switch s := g.get(t, "X-Test-Consumer", "alice").status; s {
		case http.StatusOK:
			ok++
		case http.StatusTooManyRequests:
		default:
			t.Fatalf("request %d: got status %d; want 200 or 429", i, s)
		}
	}
	if ok != 5 {
		t.Errorf("admitted across both instances: got %d; want 5", ok)
	}
	if a.hits+b.hits != 5 || a.hits == 0 || b.hits == 0 {
		t.Errorf("upstream hits: got %d + %d; want 5 shared between both", a.hits, b.hits)
	}
	st, err := Remaining(context.Background(), a.st, "shared", q, Subject{Consumer: "alice"}, clock.Now())
	if err != nil || len(st) != 1 || st[0].Used != 5 || st[0].Remaining != 0 {
		t.Errorf("Remaining: got %+v, %v; want used 5, remaining 0", st, err)
	}
}

// TestRedisOutage stops Redis: fail_open keeps counting locally,
// fail_closed answers 503; both go back to Redis once it returns.
func TestRedisOutage(t *testing.T) {
	t.Parallel()
	srv := redistest.StartServer(t)
	prefix := redistest.KeyPrefix(t)
	q := []config.Quota{{Limit: 3, Period: "month"}}
	clock := &fakeClock{now: time.Now()}
	open := newGateway(t, gwOpts{quotas: q, st: newRedisStore(t, srv.Addr(), prefix), clock: clock, onError: "fail_open", route: uniqueRoute("outage-open")})
	closed := newGateway(t, gwOpts{quotas: q, st: newRedisStore(t, srv.Addr(), prefix), clock: clock, onError: "fail_closed", route: uniqueRoute("outage-closed")})
	open.expectStatuses(t, "fail_open before", []int{200})
	closed.expectStatuses(t, "fail_closed before", []int{200})

	srv.Stop()
	// Local counters start from zero: per-instance limits while Redis is away.
	open.expectStatuses(t, "fail_open during", []int{200, 200, 200, 429})
	a := closed.expectStatuses(t, "fail_closed during", []int{503, 503})
	if got := a.header.Get("Retry-After"); got != "1" {
		t.Errorf("fail_closed Retry-After: got %q; want 1", got)
	}

	srv.Restart()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for open.st.Ping(ctx) != nil || closed.st.Ping(ctx) != nil {
		if ctx.Err() != nil {
			t.Fatal("Redis not reachable 20s after restart")
		}
		time.Sleep(50 * time.Millisecond)
	}
	// Both limiters left the store alone for a second after it failed.
	clock.Advance(2 * storeBackoff)
	// Redis lost its data (no persistence): a fresh count, from Redis again.
	open.expectStatuses(t, "fail_open after", []int{200, 200, 200, 429})
	closed.expectStatuses(t, "fail_closed after", []int{200, 200, 200, 429})
}
