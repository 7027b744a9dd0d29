package gateway

import (
	"fmt"
	"net/url"
	"path/filepath"
	"testing"

	"github.com/portunus-gw/portunus/internal/policy/ratelimit"
	"github.com/portunus-gw/portunus/internal/store/redistest"
)

// rateLimitConfig: /l has three limits (5 a minute per consumer, 100 an
// hour for the route, 1000 a minute per address) and needs an API key;
// /f has no limits. Config consumer gold has its own limit (8 a minute
// per consumer), silver none. store is the store: section.
func rateLimitConfig(store string) string {
	return fmt.Sprintf(`
listeners: [{ address: "127.0.0.1:0" }]
observability: { access_log: { path: "off" } }
admin: { address: "127.0.0.1:0", token: %q }
%s
consumers:
  - name: gold
    api_keys: ["gold-key-0123456789"]
    rate_limits: [{ name: gold-minute, limit: 8, window: 1m, by: consumer }]
  - name: silver
    api_keys: ["silver-key-0123456789"]
routes:
  - name: limited
    match: { path: /l }
    auth: [api_key]
    respond: { status: 200, body: "ok" }
    rate_limits:
      - { name: per-consumer, limit: 5, window: 1m, by: consumer }
      - { name: whole-route, limit: 100, window: 1h, by: route }
      - { limit: 1000, window: 1m, by: ip }
  - name: free
    match: { path: /f }
    auth: [api_key]
    respond: { status: 200, body: "ok" }
`, apiToken, store)
}

// rateLimitsAnswer is GET /api/v1/rate-limits decoded.
type rateLimitsAnswer struct {
	Consumer   string            `json:"consumer"`
	RateLimits []ratelimit.Usage `json:"rate_limits"`
}

func getRateLimits(t *testing.T, c *apiClient, query string) rateLimitsAnswer {
	t.Helper()
	a := c.call("GET", "/api/v1/rate-limits?"+query, "", apiToken)
	if a.status != 200 {
		t.Fatalf("GET /api/v1/rate-limits?%s: %d %s", query, a.status, a.body)
	}
	var ans rateLimitsAnswer
	a.decode(t, &ans)
	return ans
}

// usageOf finds the limit called name in ans.
func usageOf(t *testing.T, ans rateLimitsAnswer, name string) ratelimit.Usage {
	t.Helper()
	for _, u := range ans.RateLimits {
		if u.Name == name {
			return u
		}
	}
	t.Fatalf("no limit %q in %+v", name, ans.RateLimits)
	return ratelimit.Usage{}
}

// used is u's used count; -1 when it shows no usage.
func used(u ratelimit.Usage) int {
	if u.Usage == nil {
		return -1
	}
	return u.Usage.Used
}

func TestRateLimitsAdminAPI(t *testing.T) {
	t.Parallel()
	g := startGateway(t, rateLimitConfig(""))
	c := newAPIClient(t, g.rt.AdminAddr())

	ans := getRateLimits(t, c, "consumer=silver")
	if ans.Consumer != "silver" || len(ans.RateLimits) != 3 {
		t.Fatalf("silver before traffic: got %+v; want 3 limits on route limited", ans)
	}
	pc, wr, ip := usageOf(t, ans, "per-consumer"), usageOf(t, ans, "whole-route"), usageOf(t, ans, "ip2")
	if pc.Route != "limited" || pc.Source != "route" || pc.By != "consumer" || pc.Scope != ratelimit.ScopeConsumer ||
		pc.Limit != 5 || pc.Burst != 5 || pc.Window != "1m0s" || pc.WindowSeconds != 60 || used(pc) != 0 || pc.Usage.Remaining != 5 || !pc.Usage.Allowed {
		t.Errorf("per-consumer before traffic: got %+v (usage %+v)", pc, pc.Usage)
	}
	if wr.Scope != ratelimit.ScopeRoute || used(wr) != 0 || wr.Usage.Remaining != 100 {
		t.Errorf("whole-route before traffic: got %+v (usage %+v)", wr, wr.Usage)
	}
	if ip.Scope != ratelimit.ScopeNotPerConsumer || ip.Usage != nil || ip.By != "ip" {
		t.Errorf("ip limit: got %+v; want scope %q without usage", ip, ratelimit.ScopeNotPerConsumer)
	}

	// Reading took nothing: silver still gets exactly 5.
	for range 3 {
		getRateLimits(t, c, "consumer=silver&route=limited")
	}
	got, _ := keyStatuses(t, g, "/l", "silver-key-0123456789", 3)
	if fmt.Sprint(got) != "[200 200 200]" {
		t.Fatalf("silver's first 3: %v", got)
	}
	ans = getRateLimits(t, c, "consumer=silver&route=limited")
	pc, wr = usageOf(t, ans, "per-consumer"), usageOf(t, ans, "whole-route")
	if used(pc) != 3 || pc.Usage.Remaining != 2 || used(wr) != 3 || wr.Usage.Remaining != 97 {
		t.Errorf("after 3 requests: per-consumer %+v, whole-route %+v; want 3 used (2 and 97 left)", pc.Usage, wr.Usage)
	}
	got, _ = keyStatuses(t, g, "/l", "silver-key-0123456789", 3)
	if fmt.Sprint(got) != "[200 200 429]" {
		t.Fatalf("silver's next 3: %v; want [200 200 429]", got)
	}
	pc = usageOf(t, getRateLimits(t, c, "consumer=silver"), "per-consumer")
	if pc.Usage.Allowed || pc.Usage.Remaining != 0 || pc.Usage.Used != 5 || pc.Usage.RetryAfterSeconds <= 0 || pc.Usage.RetryAfterSeconds > 12 ||
		pc.Usage.ResetAfterSeconds <= 48 || pc.Usage.ResetAfterSeconds > 60 {
		t.Errorf("exhausted: got %+v; want refused, 0 left, retry in (0, 12] s, reset in (48, 60] s", pc.Usage)
	}

	// Gold has its own limit: shown instead of the route's, its own bucket.
	got, _ = keyStatuses(t, g, "/l", "gold-key-0123456789", 6)
	if fmt.Sprint(got) != "[200 200 200 200 200 200]" {
		t.Fatalf("gold's 6: %v; want all allowed under its own 8 a minute", got)
	}
	gold := getRateLimits(t, c, "consumer=gold")
	if len(gold.RateLimits) != 1 {
		t.Fatalf("gold: got %+v; want its own limit only", gold.RateLimits)
	}
	if u := gold.RateLimits[0]; u.Name != "gold-minute" || u.Source != "consumer" || u.Scope != ratelimit.ScopeConsumer || used(u) != 6 || u.Usage.Remaining != 2 {
		t.Errorf("gold-minute: got %+v (usage %+v); want source consumer, 6 used, 2 left", u, u.Usage)
	}
	// The route bucket counted silver's 5 allowed requests, not gold's.
	if wr := usageOf(t, getRateLimits(t, c, "consumer=silver"), "whole-route"); used(wr) != 5 {
		t.Errorf("whole-route after gold's traffic: used %d; want 5 (gold's own limits replace the route's)", used(wr))
	}

	for _, tc := range []struct {
		name, path string
		want       int
	}{
		{"route without limits", "/api/v1/rate-limits?route=free&consumer=silver", 200},
		{"unknown route", "/api/v1/rate-limits?route=nope&consumer=silver", 404},
		{"no consumer", "/api/v1/rate-limits?route=limited", 400},
		{"no token", "/api/v1/rate-limits?consumer=silver", 401},
	} {
		tok := apiToken
		if tc.want == 401 {
			tok = ""
		}
		a := c.call("GET", tc.path, "", tok)
		if a.status != tc.want {
			t.Errorf("%s: got %d; want %d: %s", tc.name, a.status, tc.want, a.body)
		}
		if tc.want == 200 {
			var ans rateLimitsAnswer
			a.decode(t, &ans)
			if ans.RateLimits == nil || len(ans.RateLimits) != 0 {
				t.Errorf("%s: got %s; want an empty list", tc.name, a.body)
			}
		}
	}
}

// TestRateLimitsSharedThroughRedis runs two gateway runtimes on one Redis:
// the admin API of each reads the buckets both take from.
func TestRateLimitsSharedThroughRedis(t *testing.T) {
	t.Parallel()
	addr := redistest.Start(t)
	st := fmt.Sprintf("store: { backend: redis, redis: { addresses: [%q], key_prefix: %q } }", addr, redistest.KeyPrefix(t))
	g1 := startGateway(t, rateLimitConfig(st))
	g2 := startGateway(t, rateLimitConfig(st))
	c2 := newAPIClient(t, g2.rt.AdminAddr())
	var got []int
	for _, g := range []*testGateway{g1, g2, g1, g2} {
		s, _ := keyStatuses(t, g, "/l", "silver-key-0123456789", 1)
		got = append(got, s...)
	}
	if fmt.Sprint(got) != "[200 200 200 200]" {
		t.Fatalf("statuses: %v", got)
	}
	for range 3 { // reading takes nothing
		getRateLimits(t, c2, "consumer=silver")
	}
	ans := getRateLimits(t, c2, "consumer=silver")
	pc, wr := usageOf(t, ans, "per-consumer"), usageOf(t, ans, "whole-route")
	if used(pc) != 4 || pc.Usage.Remaining != 1 || used(wr) != 4 {
		t.Errorf("shared buckets: per-consumer %+v, whole-route %+v; want 4 used, 1 left", pc.Usage, wr.Usage)
	}
	if s, _ := keyStatuses(t, g1, "/l", "silver-key-0123456789", 2); fmt.Sprint(s) != "[200 429]" {
		t.Errorf("after the reads: %v; want exactly one more allowed", s)
	}
	pc = usageOf(t, getRateLimits(t, newAPIClient(t, g1.rt.AdminAddr()), "consumer=silver"), "per-consumer")
	if pc.Usage.Allowed || pc.Usage.Remaining != 0 || pc.Usage.RetryAfterSeconds <= 0 {
		t.Errorf("exhausted through Redis: got %+v; want refused with a retry time", pc.Usage)
	}
}

// TestRateLimitsRuntimeConsumer reads a runtime consumer's own limits.
func TestRateLimitsRuntimeConsumer(t *testing.T) {
	t.Parallel()
	db := filepath.Join(t.TempDir(), "consumers.db")
	g := startGateway(t, rateLimitConfig(fmt.Sprintf("store: { consumers_file: %q }", db)))
	c := newAPIClient(t, g.rt.AdminAddr())
	if a := c.call("POST", "/api/v1/consumers", `{"name":"acme","rate_limits":[{"name":"acme-burst","limit":3,"window":"1m","by":"consumer"},{"limit":50,"window":"1m","by":"header:X-Tenant"}]}`, apiToken); a.status != 201 {
		t.Fatalf("create acme: %d %s", a.status, a.body)
	}
	var key IssuedKeyAnswer
	c.call("POST", "/api/v1/consumers/acme/keys", "", apiToken).decode(t, &key)
	if got, _ := keyStatuses(t, g, "/l", key.Key, 2); fmt.Sprint(got) != "[200 200]" {
		t.Fatalf("acme: %v", got)
	}
	ans := getRateLimits(t, c, "consumer="+url.QueryEscape("acme"))
	if len(ans.RateLimits) != 2 {
		t.Fatalf("acme: got %+v; want its two own limits", ans.RateLimits)
	}
	if u := usageOf(t, ans, "acme-burst"); u.Source != "consumer" || used(u) != 2 || u.Usage.Remaining != 1 {
		t.Errorf("acme-burst: got %+v (usage %+v); want source consumer, 2 used, 1 left", u, u.Usage)
	}
	if u := usageOf(t, ans, "header:X-Tenant1"); u.Scope != ratelimit.ScopeNotPerConsumer || u.Usage != nil {
		t.Errorf("header limit: got %+v; want not per consumer", u)
	}
}
