package aggregate

import (
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/portunus-gw/portunus/internal/config"
	"github.com/portunus-gw/portunus/internal/gateway"
)

func explainExample(t *testing.T, name, method, url string, hdr http.Header) *gateway.Explanation {
	t.Helper()
	cfg, err := config.Load(filepath.Join("..", "..", "examples", name))
	if err != nil {
		t.Fatal(err)
	}
	snap, err := gateway.CompileForExplain(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return snap.Explain(gateway.ExplainRequest{Method: method, URL: url, Header: hdr})
}

func TestExplainShowsPlanAndTransforms(t *testing.T) {
	t.Parallel()
	ex := explainExample(t, "aggregation.yaml", "GET", "http://localhost/dashboard/a%20b?limit=5", nil)
	a := ex.Action
	if a == nil || a.Kind != "aggregate" || a.Aggregate == nil || len(a.Aggregate.Steps) != 3 {
		t.Fatalf("action %+v; want an aggregate with three steps", a)
	}
	steps := a.Aggregate.Steps
	if a.Aggregate.Timeout != "2s" || a.Aggregate.MaxBackendBytes != 256<<10 {
		t.Errorf("timeout %s max %d; want 2s and 262144", a.Aggregate.Timeout, a.Aggregate.MaxBackendBytes)
	}
	if steps[0].Stage != 0 || steps[0].URL != "http://127.0.0.1:9201/users/a%20b" {
		t.Errorf("step 0 %+v; want stage 0 calling http://127.0.0.1:9201/users/a%%20b", steps[0])
	}
	if !steps[1].Optional || steps[1].URL != "http://127.0.0.1:9202/orders?user=a+b&limit=5" {
		t.Errorf("step 1 %+v; want optional, calling /orders?user=a+b&limit=5", steps[1])
	}
	if steps[2].Stage != 1 || steps[2].After != "user" || steps[2].URL != "" || steps[2].Path != "/orgs/{user.org}" {
		t.Errorf("step 2 %+v; want stage 1 after user, template only", steps[2])
	}

	ex = explainExample(t, "transformations.yaml", "GET", "http://localhost/api/v1/accounts/7?q=x", nil)
	want := []string{
		`request transform: path regex "^/api/v1/(.*)$" -> "/internal/$1"`,
		"request transform: query rename q -> search",
		"response transform: status map 404->204",
	}
	for _, w := range want {
		if !slices.Contains(ex.Policies, w) {
			t.Errorf("policies %q lack %q", ex.Policies, w)
		}
	}

	ex = explainExample(t, "versioning.yaml", "GET", "http://localhost/users/7", http.Header{"Accept": {"application/vnd.shop.v2+json"}})
	if ex.Route != "users-v2-media" {
		t.Errorf("media type v2 explained as route %q; want users-v2-media", ex.Route)
	}
	ex = explainExample(t, "versioning.yaml", "GET", "http://localhost/users/7", nil)
	if ex.Route != "users-v1" || !strings.Contains(strings.Join(ex.Policies, "|"), "deprecated (Deprecation @1767225600)") {
		t.Errorf("route %q policies %q; want users-v1 with the deprecation step", ex.Route, ex.Policies)
	}
}

// The upstream request explain shows is the one the backend receives:
// after the path regex, the query edits and the method override.
func TestExplainUpstreamRequestAfterTransforms(t *testing.T) {
	t.Parallel()
	ex := explainExample(t, "transformations.yaml", "GET", "http://localhost/api/v1/accounts/7?q=x&debug=1", http.Header{"X-Trace": {"t-1"}})
	u := ex.Action.UpstreamRequest
	if ex.Action.Kind != "proxy" || u == nil {
		t.Fatalf("action %+v; want a proxy with an upstream request", ex.Action)
	}
	if u.Method != "GET" || u.URL != "http://127.0.0.1:9301/internal/accounts/7?search=x&source=gateway&trace=t-1" {
		t.Errorf("upstream request %s %s; want GET http://127.0.0.1:9301/internal/accounts/7?search=x&source=gateway&trace=t-1", u.Method, u.URL)
	}
	ex = explainExample(t, "transformations.yaml", "GET", "http://localhost/search?q=a", nil)
	u = ex.Action.UpstreamRequest
	if u == nil || u.Method != "POST" || u.URL != "http://127.0.0.1:9301/internal/search?q=a" {
		t.Errorf("legacy search upstream request %+v; want POST http://127.0.0.1:9301/internal/search?q=a", u)
	}
}
