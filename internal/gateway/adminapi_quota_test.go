package gateway

import (
	"fmt"
	"io"
	"net/http"
	"testing"

	"github.com/portunus-gw/portunus/internal/store/redistest"
)

// quotaConfig has one metered route (2 a day per client address) and one
// without quotas; store is the store: section ("" = memory).
func quotaConfig(store string) string {
	return fmt.Sprintf(`
listeners: [{ address: "127.0.0.1:0" }]
observability: { access_log: { path: "off" } }
admin: { address: "127.0.0.1:0", token: %q }
%s
routes:
  - name: metered
    match: { path: /m }
    respond: { status: 200, body: "ok" }
    quotas: [{ limit: 2, period: day, by: ip }, { limit: 100, period: month, by: route, time_zone: Europe/Paris }]
  - name: free
    match: { path: /f }
    respond: { status: 200, body: "ok" }
`, apiToken, store)
}

func getStatus(t *testing.T, g *testGateway, path string) (int, http.Header) {
	t.Helper()
	resp := g.do("GET", path, nil, "")
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, resp.Header
}

func TestQuotaRouteAndAdminAPI(t *testing.T) {
	t.Parallel()
	g := startGateway(t, quotaConfig(""))
	c := newAPIClient(t, g.rt.AdminAddr())

	status, h := getStatus(t, g, "/m")
	if status != 200 {
		t.Fatalf("first request: got %d; want 200", status)
	}
	if got := h.Get("RateLimit-Policy"); got == "" {
		t.Error("RateLimit-Policy: got none; want the quota policies")
	}

	var ans struct {
		Quotas []struct {
			Route     string `json:"route"`
			Name      string `json:"name"`
			By        string `json:"by"`
			Limit     int64  `json:"limit"`
			Used      int64  `json:"used"`
			Remaining int64  `json:"remaining"`
		} `json:"quotas"`
	}
	a := c.call("GET", "/api/v1/quotas?route=metered&ip=127.0.0.1", "", apiToken)
	if a.status != 200 {
		t.Fatalf("GET quotas: got %d; want 200: %s", a.status, a.body)
	}
	a.decode(t, &ans)
	if len(ans.Quotas) != 2 {
		t.Fatalf("quotas: got %d; want 2: %s", len(ans.Quotas), a.body)
	}
	if q := ans.Quotas[0]; q.Name != "quota-0" || q.By != "ip" || q.Used != 1 || q.Remaining != 1 {
		t.Errorf("quota-0: got %+v; want by ip, used 1, remaining 1", q)
	}
	if q := ans.Quotas[1]; q.Name != "quota-1" || q.By != "route" || q.Used != 1 || q.Remaining != 99 {
		t.Errorf("quota-1: got %+v; want by route, used 1, remaining 99", q)
	}

	if status, _ := getStatus(t, g, "/m"); status != 200 {
		t.Fatalf("second request: got %d; want 200", status)
	}
	status, h = getStatus(t, g, "/m")
	if status != http.StatusTooManyRequests || h.Get("Retry-After") == "" || h.Get("Retry-After") == "0" {
		t.Fatalf("third request: got %d, Retry-After %q; want 429 with Retry-After >= 1", status, h.Get("Retry-After"))
	}
	a = c.call("GET", "/api/v1/quotas?key=127.0.0.1", "", apiToken)
	ans.Quotas = nil
	a.decode(t, &ans)
	if len(ans.Quotas) != 2 || ans.Quotas[0].Remaining != 0 || ans.Quotas[1].Used != 2 {
		t.Errorf("after exhausting by key: got %s; want quota-0 remaining 0, quota-1 used 2 (the refused request not counted)", a.body)
	}

	for _, tc := range []struct {
		name, path string
		want       int
	}{
		{"route without quotas", "/api/v1/quotas?route=free&consumer=alice", 200},
		{"unknown route", "/api/v1/quotas?route=nope&consumer=alice", 404},
		{"no subject", "/api/v1/quotas?route=metered", 400},
		{"bad ip", "/api/v1/quotas?ip=not-an-ip", 400},
		{"no token", "/api/v1/quotas?consumer=alice", 401},
	} {
		tok := apiToken
		if tc.want == 401 {
			tok = ""
		}
		if a := c.call("GET", tc.path, "", tok); a.status != tc.want {
			t.Errorf("%s: got %d; want %d: %s", tc.name, a.status, tc.want, a.body)
		}
	}
}

// TestQuotaSharedThroughRedis runs two gateway runtimes on one Redis: the
// quota holds across both, and each one's admin API sees the shared count.
func TestQuotaSharedThroughRedis(t *testing.T) {
	t.Parallel()
	addr := redistest.Start(t)
	st := fmt.Sprintf("store: { backend: redis, redis: { addresses: [%q], key_prefix: %q } }", addr, redistest.KeyPrefix(t))
	g1 := startGateway(t, quotaConfig(st))
	g2 := startGateway(t, quotaConfig(st))
	var got []int
	for _, g := range []*testGateway{g1, g2, g1, g2} {
		s, _ := getStatus(t, g, "/m")
		got = append(got, s)
	}
	if fmt.Sprint(got) != "[200 200 429 429]" {
		t.Errorf("statuses across two instances: got %v; want [200 200 429 429]", got)
	}
	var ans struct {
		Quotas []struct {
			Used int64 `json:"used"`
		} `json:"quotas"`
	}
	a := newAPIClient(t, g2.rt.AdminAddr()).call("GET", "/api/v1/quotas?route=metered&ip=127.0.0.1", "", apiToken)
	a.decode(t, &ans)
	if len(ans.Quotas) != 2 || ans.Quotas[0].Used != 2 || ans.Quotas[1].Used != 2 {
		t.Errorf("shared counts: got %s; want used 2 on both quotas", a.body)
	}
}
