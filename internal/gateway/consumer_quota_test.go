package gateway

import (
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/portunus-gw/portunus/internal/store/redistest"
)

// consumerQuotaConfig: /m has a quota of 1 a day per consumer, /f none;
// both need an API key. Config consumer gold has its own quotas (3 a day
// per consumer), basic has none. store is the store: section.
func consumerQuotaConfig(store string) string {
	return fmt.Sprintf(`
listeners: [{ address: "127.0.0.1:0" }]
observability: { access_log: { path: "off" } }
admin: { address: "127.0.0.1:0", token: %q }
%s
consumers:
  - name: gold
    api_keys: ["gold-key-0123456789"]
    quotas: [{ limit: 3, period: day, by: consumer }]
  - name: basic
    api_keys: ["basic-key-0123456789"]
routes:
  - name: metered
    match: { path: /m }
    auth: [api_key]
    respond: { status: 200, body: "ok" }
    quotas: [{ limit: 1, period: day, by: consumer }]
  - name: free
    match: { path: /f }
    auth: [api_key]
    respond: { status: 200, body: "ok" }
`, apiToken, store)
}

// keyStatuses sends n GETs of path with key and returns their statuses
// and the last answer's headers.
func keyStatuses(t *testing.T, g *testGateway, path, key string, n int) ([]int, http.Header) {
	t.Helper()
	var got []int
	var h http.Header
	for range n {
		resp := g.do("GET", path, map[string]string{"X-API-Key": key}, "")
		resp.Body.Close()
		got = append(got, resp.StatusCode)
		h = resp.Header
	}
	return got, h
}

// quotaStatuses is GET /api/v1/quotas decoded.
type quotaStatuses struct {
	Quotas []struct {
		Route     string `json:"route"`
		Name      string `json:"name"`
		Source    string `json:"source"`
		By        string `json:"by"`
		Limit     int64  `json:"limit"`
		Used      int64  `json:"used"`
		Remaining int64  `json:"remaining"`
	} `json:"quotas"`
}

func getQuotas(t *testing.T, c *apiClient, query string) quotaStatuses {
	t.Helper()
	a := c.call("GET", "/api/v1/quotas?"+query, "", apiToken)
	if a.status != 200 {
		t.Fatalf("GET /api/v1/quotas?%s: %d %s", query, a.status, a.body)
	}
	var ans quotaStatuses
	a.decode(t, &ans)
	return ans
}

// TestConfigConsumerQuotas: a config consumer's own quotas replace the
// route's for it on a route with quotas; another consumer gets the
// route's; on a route without quotas the override does nothing; the
// admin API reads each one's own counters.
func TestConfigConsumerQuotas(t *testing.T) {
	t.Parallel()
	g := startGateway(t, consumerQuotaConfig(""))
	c := newAPIClient(t, g.rt.AdminAddr())

	got, h := keyStatuses(t, g, "/m", "gold-key-0123456789", 4)
	if fmt.Sprint(got) != "[200 200 200 429]" {
		t.Errorf("gold on the metered route: %v; want [200 200 200 429] (its own 3 a day)", got)
	}
	if p := h.Get("RateLimit-Policy"); p != `"quota-0";q=3;w=86400` {
		t.Errorf("gold's RateLimit-Policy: %q; want its own quota", p)
	}
	got, h = keyStatuses(t, g, "/m", "basic-key-0123456789", 2)
	if fmt.Sprint(got) != "[200 429]" {
		t.Errorf("basic on the metered route: %v; want [200 429] (the route's 1 a day)", got)
	}
	if p := h.Get("RateLimit-Policy"); p != `"quota-0";q=1;w=86400` {
		t.Errorf("basic's RateLimit-Policy: %q; want the route's quota", p)
	}
	got, h = keyStatuses(t, g, "/f", "gold-key-0123456789", 5)
	if fmt.Sprint(got) != "[200 200 200 200 200]" || h.Get("RateLimit-Policy") != "" {
		t.Errorf("gold on the route without quotas: %v, RateLimit-Policy %q; want no quota at all", got, h.Get("RateLimit-Policy"))
	}

	for _, q := range []string{"route=metered&consumer=gold", "route=metered&key=gold"} {
		ans := getQuotas(t, c, q)
		if len(ans.Quotas) != 1 {
			t.Fatalf("%s: %+v; want one quota", q, ans)
		}
		if s := ans.Quotas[0]; s.Source != "consumer" || s.Limit != 3 || s.Used != 3 || s.Remaining != 0 || s.Route != "metered" {
			t.Errorf("%s: %+v; want gold's own quota: limit 3, used 3, source consumer", q, s)
		}
	}
	ans := getQuotas(t, c, "consumer=basic")
	if len(ans.Quotas) != 1 || ans.Quotas[0].Source != "route" || ans.Quotas[0].Limit != 1 || ans.Quotas[0].Used != 1 {
		t.Errorf("basic: %+v; want the route's quota, used 1", ans)
	}
	if ans := getQuotas(t, c, "route=free&consumer=gold"); len(ans.Quotas) != 0 {
		t.Errorf("gold on the route without quotas: %+v; want none", ans)
	}
}

// TestRuntimeConsumerQuotas: a runtime consumer created through the admin
// API with quotas is limited by them on a route with quotas; an update
// changes the limit (the period's count is kept); an update without quotas
// gives it the route's again; bad quotas are refused with problem+json.
func TestRuntimeConsumerQuotas(t *testing.T) {
	t.Parallel()
	db := filepath.Join(t.TempDir(), "consumers.db")
	g := startGateway(t, consumerQuotaConfig(fmt.Sprintf("store: { consumers_file: %q }", db)))
	c := newAPIClient(t, g.rt.AdminAddr())
	call := func(method, path, body string, want int) apiAnswer {
		t.Helper()
		a := c.call(method, path, body, apiToken)
		if a.status != want {
			t.Fatalf("%s %s %s: %d %s; want %d", method, path, body, a.status, a.body, want)
		}
		return a
	}

	var rv RuntimeConsumerView
	call("POST", "/api/v1/consumers", `{"name":"acme","quotas":[{"limit":2,"period":"day","by":"consumer"}]}`, 201).decode(t, &rv)
	if len(rv.Quotas) != 1 || rv.Quotas[0].TimeZone != "UTC" || rv.Quotas[0].Limit != 2 {
		t.Errorf("create answer quotas: %+v; want limit 2 with time_zone UTC filled in", rv.Quotas)
	}
	var k IssuedKeyAnswer
	call("POST", "/api/v1/consumers/acme/keys", "", 201).decode(t, &k)

	got, h := keyStatuses(t, g, "/m", k.Key, 3)
	if fmt.Sprint(got) != "[200 200 429]" || h.Get("RateLimit-Policy") != `"quota-0";q=2;w=86400` {
		t.Errorf("acme with its own 2 a day: %v, %q; want [200 200 429], q=2", got, h.Get("RateLimit-Policy"))
	}
	if got, _ := keyStatuses(t, g, "/f", k.Key, 3); fmt.Sprint(got) != "[200 200 200]" {
		t.Errorf("acme on the route without quotas: %v; want all 200", got)
	}
	ans := getQuotas(t, c, "route=metered&consumer=acme")
	if len(ans.Quotas) != 1 || ans.Quotas[0].Source != "consumer" || ans.Quotas[0].Used != 2 || ans.Quotas[0].Limit != 2 {
		t.Errorf("acme's quota: %+v; want its own, used 2 of 2", ans)
	}

	// Raising the limit keeps the period's count: one more request.
	call("PUT", "/api/v1/consumers/acme", `{"quotas":[{"limit":3,"period":"day","by":"consumer"}]}`, 200).decode(t, &rv)
	if len(rv.Quotas) != 1 || rv.Quotas[0].Limit != 3 {
		t.Errorf("update answer quotas: %+v", rv.Quotas)
	}
	call("GET", "/api/v1/consumers/acme", "", 200).decode(t, &rv)
	if len(rv.Quotas) != 1 || rv.Quotas[0].Limit != 3 || rv.Quotas[0].By != "consumer" {
		t.Errorf("GET after update: %+v", rv.Quotas)
	}
	if got, h := keyStatuses(t, g, "/m", k.Key, 2); fmt.Sprint(got) != "[200 429]" || h.Get("RateLimit-Policy") != `"quota-0";q=3;w=86400` {
		t.Errorf("after raising to 3: %v, %q; want [200 429], q=3", got, h.Get("RateLimit-Policy"))
	}
	// Without quotas it gets the route's, counted on the route's counter.
	call("PUT", "/api/v1/consumers/acme", `{"roles":["buyer"]}`, 200)
	if got, h := keyStatuses(t, g, "/m", k.Key, 2); fmt.Sprint(got) != "[200 429]" || h.Get("RateLimit-Policy") != `"quota-0";q=1;w=86400` {
		t.Errorf("after removing its quotas: %v, %q; want the route's: [200 429], q=1", got, h.Get("RateLimit-Policy"))
	}
	if ans := getQuotas(t, c, "route=metered&consumer=acme"); len(ans.Quotas) != 1 || ans.Quotas[0].Source != "route" || ans.Quotas[0].Used != 1 {
		t.Errorf("acme without own quotas: %+v; want the route's, used 1", ans)
	}

	tooMany := strings.TrimSuffix(strings.Repeat(`{"limit":1,"period":"day"},`, 17), ",")
	for _, tc := range []struct{ body, detail string }{
		{`{"name":"bad1","quotas":[{"limit":0,"period":"day"}]}`, "quotas[0].limit"},
		{`{"name":"bad2","quotas":[{"limit":1,"period":"year"}]}`, "quotas[0].period"},
		{`{"name":"bad3","quotas":[{"limit":1}]}`, "quotas[0].period"},
		{`{"name":"bad4","quotas":[{"limit":1,"period":"day","by":"moon"}]}`, "quotas[0].by"},
		{`{"name":"bad5","quotas":[{"limit":1,"period":"day","time_zone":"Mars/Base"}]}`, "quotas[0].time_zone"},
		{`{"name":"bad6","quotas":[{"limit":1,"period":"day","name":"x"}]}`, "unknown field"},
		{`{"name":"bad7","quotas":[` + tooMany + `]}`, "quotas: at most 16"},
	} {
		a := call("POST", "/api/v1/consumers", tc.body, 400)
		var p problemBody
		a.decode(t, &p)
		if ct := a.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/problem+json") || !strings.Contains(p.Detail, tc.detail) {
			t.Errorf("%s: %s %s; want problem+json mentioning %q", tc.body, ct, a.body, tc.detail)
		}
	}
	a := call("PUT", "/api/v1/consumers/acme", `{"quotas":[{"limit":-1,"period":"week"}]}`, 400)
	if !strings.Contains(string(a.body), "quotas[0].limit") {
		t.Errorf("PUT with a bad quota: %s", a.body)
	}
	call("GET", "/api/v1/consumers/bad1", "", 404)
}

// TestRuntimeConsumerQuotasThroughRedis: quotas set through one instance
// apply on another sharing the Redis, counted once for both.
func TestRuntimeConsumerQuotasThroughRedis(t *testing.T) {
	t.Parallel()
	addr := redistest.Start(t)
	st := fmt.Sprintf("store: { backend: redis, redis: { addresses: [%q], key_prefix: %q } }", addr, redistest.KeyPrefix(t))
	g1 := startGateway(t, consumerQuotaConfig(st))
	g2 := startGateway(t, consumerQuotaConfig(st))
	c1, c2 := newAPIClient(t, g1.rt.AdminAddr()), newAPIClient(t, g2.rt.AdminAddr())
	if a := c1.call("POST", "/api/v1/consumers", `{"name":"acme","quotas":[{"limit":3,"period":"month","by":"consumer"}]}`, apiToken); a.status != 201 {
		t.Fatalf("create: %d %s", a.status, a.body)
	}
	var k IssuedKeyAnswer
	a := c1.call("POST", "/api/v1/consumers/acme/keys", "", apiToken)
	if a.status != 201 {
		t.Fatalf("issue key: %d %s", a.status, a.body)
	}
	a.decode(t, &k)
	// Wait until the second instance knows the key (pub/sub, or its poll).
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp := g2.do("GET", "/f", map[string]string{"X-API-Key": k.Key}, "")
		resp.Body.Close()
		if resp.StatusCode == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the key did not reach the second instance: last %d", resp.StatusCode)
		}
		time.Sleep(20 * time.Millisecond)
	}
	var got []int
	for _, g := range []*testGateway{g1, g2, g1, g2} {
		s, _ := keyStatuses(t, g, "/m", k.Key, 1)
		got = append(got, s...)
	}
	if fmt.Sprint(got) != "[200 200 200 429]" {
		t.Errorf("acme across two instances: %v; want [200 200 200 429] (its own 3 a month, shared)", got)
	}
	var ans quotaStatuses
	c2.call("GET", "/api/v1/quotas?route=metered&consumer=acme", "", apiToken).decode(t, &ans)
	if len(ans.Quotas) != 1 || ans.Quotas[0].Source != "consumer" || ans.Quotas[0].Used != 3 || ans.Quotas[0].Limit != 3 {
		t.Errorf("second instance's view: %+v; want acme's own quota, used 3 of 3", ans)
	}
}
