package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"

	"github.com/portunus-gw/portunus/internal/admin"
	"github.com/portunus-gw/portunus/internal/config"
	"github.com/portunus-gw/portunus/internal/stats"
)

const apiToken = "0123456789abcdef-api-token"

// apiConfig has a route per outcome the stats test needs, and a secret
// header value the config test must not see.
func apiConfig(upURL, holdURL, deadURL string) string {
	return fmt.Sprintf(`
listeners: [{ address: "127.0.0.1:0" }]
observability: { access_log: { path: "off" } }
admin: { address: "127.0.0.1:0", token: %q }
upstreams:
  - { name: up, targets: [{ url: %q, weight: 2 }] }
  - { name: hold, targets: [{ url: %q }] }
  - { name: dead, targets: [{ url: %q }] }
routes:
  - name: ok
    match: { path: /ok }
    respond: { status: 200, body: "ok" }
  - name: fail
    match: { path: /fail }
    respond: { status: 500, body: "boom" }
  - name: proxied
    match: { path_prefix: /p }
    upstream: up
    request_headers: { set: { Authorization: "Bearer upstream-credential-xyz" } }
  - name: held
    match: { path_prefix: /hold }
    upstream: hold
  - name: broken
    match: { path_prefix: /down }
    upstream: dead
`, apiToken, upURL, holdURL, deadURL)
}

// apiClient calls the admin API and checks every answer against the
// served OpenAPI document.
type apiClient struct {
	t      *testing.T
	base   string
	router routers.Router
}

func newAPIClient(t *testing.T, addr string) *apiClient {
	t.Helper()
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(admin.OpenAPI)
	if err != nil {
		t.Fatalf("load openapi.json: %v", err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatalf("openapi.json is not a valid OpenAPI document: %v", err)
	}
	// The document's server is relative ("/"); route against this one.
	base := "http://" + addr
	doc.Servers = openapi3.Servers{{URL: base}}
	r, err := legacy.NewRouter(doc)
	if err != nil {
		t.Fatalf("openapi router: %v", err)
	}
	return &apiClient{t: t, base: base, router: r}
}

type apiAnswer struct {
	status int
	header http.Header
	body   []byte
}

func (a apiAnswer) decode(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(a.body, v); err != nil {
		t.Fatalf("decode %s: %v", a.body, err)
	}
}

// call sends method path with body (JSON, "" for none) and token ("" for
// none), validates request and answer against the document and returns
// the answer.
func (c *apiClient) call(method, path, body, token string) apiAnswer {
	c.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, c.base+path, rd)
	if err != nil {
		c.t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	ans := apiAnswer{status: resp.StatusCode, header: resp.Header, body: b}
	if err := c.conform(req, body, ans); err != nil {
		c.t.Errorf("%s %s: %v\n%s", method, path, err, b)
	}
	return ans
}

// conform validates ans (status, content type, body) against the
// document's operation for req.
func (c *apiClient) conform(req *http.Request, body string, ans apiAnswer) error {
	route, params, err := c.router.FindRoute(req)
	if err != nil {
		return fmt.Errorf("not in openapi.json: %w", err)
	}
	if body != "" {
		req.Body = io.NopCloser(strings.NewReader(body))
	}
	in := &openapi3filter.RequestValidationInput{
		Request: req, PathParams: params, Route: route,
		Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc, IncludeResponseStatus: true},
	}
	out := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: in, Status: ans.status, Header: ans.header,
		Body: io.NopCloser(bytes.NewReader(ans.body)), Options: in.Options,
	}
	if err := openapi3filter.ValidateResponse(context.Background(), out); err != nil {
		return fmt.Errorf("answer %d does not conform to openapi.json: %w", ans.status, err)
	}
	return nil
}

// TestAdminAPIConformanceCheck proves the conformance check rejects
// answers the document does not allow, so passing it means something.
func TestAdminAPIConformanceCheck(t *testing.T) {
	t.Parallel()
	c := newAPIClient(t, "127.0.0.1:9")
	jsonH := http.Header{"Content-Type": {"application/json"}}
	problemH := http.Header{"Content-Type": {"application/problem+json"}}
	for _, tc := range []struct {
		name, method, path string
		ans                apiAnswer
		ok                 bool
	}{
		{"valid routes", "GET", "/api/v1/routes", apiAnswer{200, jsonH, []byte(`{"hash":"h","routes":[]}`)}, true},
		{"routes of wrong type", "GET", "/api/v1/routes", apiAnswer{200, jsonH, []byte(`{"hash":"h","routes":5}`)}, false},
		{"missing required field", "GET", "/api/v1/upstreams", apiAnswer{200, jsonH, []byte(`{}`)}, false},
		{"bad enum", "GET", "/api/v1/upstreams", apiAnswer{200, jsonH, []byte(`{"upstreams":[{"name":"a","balancer":"rr","preserve_host":false,"targets":[{"url":"u","weight":1,"in_flight":0,"health":"fine","breaker":"none"}]}]}`)}, false},
		{"problem without title", "POST", "/api/v1/cache/purge", apiAnswer{404, problemH, []byte(`{"type":"x","status":404}`)}, false},
		{"undocumented status", "GET", "/api/v1/routes", apiAnswer{418, problemH, []byte(`{"type":"x","title":"t","status":418}`)}, false},
		{"wrong content type", "GET", "/api/v1/routes", apiAnswer{200, http.Header{"Content-Type": {"text/plain"}}, []byte(`x`)}, false},
	} {
		req, _ := http.NewRequest(tc.method, c.base+tc.path, nil)
		err := c.conform(req, "", tc.ans)
		if (err == nil) != tc.ok {
			t.Errorf("%s: conform error %v; want ok=%v", tc.name, err, tc.ok)
		}
	}
}

func TestAdminAPI(t *testing.T) {
	t.Parallel()
	up := newUpstream(t, "up")
	started, release := make(chan struct{}, 1), make(chan struct{})
	hold := newHoldUpstream(t, started, release)
	g := startGateway(t, apiConfig(up.URL, hold.URL, "http://"+freeAddr(t)))
	c := newAPIClient(t, g.rt.AdminAddr())

	t.Run("authorization", func(t *testing.T) {
		for _, path := range []string{"/api/v1/routes", "/api/v1/stats", "/api/v1/config", "/api/v1/openapi.json"} {
			a := c.call("GET", path, "", "")
			if a.status != 401 || !strings.HasPrefix(a.header.Get("WWW-Authenticate"), "Bearer") {
				t.Errorf("GET %s without token: %d, WWW-Authenticate %q; want 401 with a Bearer challenge", path, a.status, a.header.Get("WWW-Authenticate"))
			}
			if a := c.call("GET", path, "", "wrong-token"); a.status != 401 {
				t.Errorf("GET %s with a wrong token: %d; want 401", path, a.status)
			}
			if a := c.call("GET", path, "", apiToken); a.status != 200 {
				t.Errorf("GET %s with the token: %d; want 200", path, a.status)
			}
		}
	})

	t.Run("openapi", func(t *testing.T) {
		a := c.call("GET", "/api/v1/openapi.json", "", apiToken)
		if ct := a.header.Get("Content-Type"); ct != "application/json" || !bytes.Equal(a.body, admin.OpenAPI) {
			t.Errorf("openapi.json: Content-Type %q, %d bytes; want application/json and the embedded document", ct, len(a.body))
		}
	})

	t.Run("routes", func(t *testing.T) {
		var got RoutesAnswer
		c.call("GET", "/api/v1/routes", "", apiToken).decode(t, &got)
		var names []string
		for _, r := range got.Routes {
			names = append(names, r.Name+":"+r.Action)
		}
		want := "ok:respond fail:respond proxied:proxy held:proxy broken:proxy"
		if strings.Join(names, " ") != want || got.Hash != g.rt.Gateway().Snapshot().Hash {
			t.Errorf("routes = %v, hash %q; want %s and the snapshot hash", names, got.Hash, want)
		}
	})

	t.Run("consumers", func(t *testing.T) {
		var got ConsumersAnswer
		a := c.call("GET", "/api/v1/consumers", "", apiToken)
		a.decode(t, &got)
		if got.Consumers == nil || len(got.Consumers) != 0 {
			t.Errorf("consumers = %s; want an empty list", a.body)
		}
	})

	t.Run("config", func(t *testing.T) {
		a := c.call("GET", "/api/v1/config", "", apiToken)
		for _, secret := range []string{apiToken, "upstream-credential-xyz"} {
			if bytes.Contains(a.body, []byte(secret)) {
				t.Errorf("config answer contains the secret %q", secret)
			}
		}
		var got struct {
			Hash   string `json:"hash"`
			Config struct {
				Admin struct {
					Token   string `json:"token"`
					Address string `json:"address"`
				} `json:"admin"`
			} `json:"config"`
			LastReload *ReloadStatus `json:"last_reload"`
		}
		a.decode(t, &got)
		if got.Config.Admin.Token != Redacted || got.Config.Admin.Address != "127.0.0.1:0" {
			t.Errorf("admin = %+v; want the token redacted and the address kept", got.Config.Admin)
		}
		if got.Hash == "" || got.LastReload == nil || !got.LastReload.OK || got.LastReload.Hash != got.Hash {
			t.Errorf("hash %q, last reload %+v; want the running hash and an ok reload of it", got.Hash, got.LastReload)
		}
	})

	t.Run("explain", func(t *testing.T) {
		body := `{"method":"GET","url":"http://api.test/p/users?x=1","headers":{"X-Request-Id":"abc","Accept":["a/b","c/d"]},"client_ip":"10.1.2.3"}`
		a := c.call("POST", "/api/v1/explain", body, apiToken)
		if a.status != 200 {
			t.Fatalf("explain: %d %s", a.status, a.body)
		}
		// The CLI's answer for the same request: compile the same file.
		cfg, err := config.Load(g.path)
		if err != nil {
			t.Fatal(err)
		}
		snap, err := CompileForExplain(cfg)
		if err != nil {
			t.Fatal(err)
		}
		h := http.Header{}
		h.Add("X-Request-Id", "abc")
		h.Add("Accept", "a/b")
		h.Add("Accept", "c/d")
		cli, _ := json.Marshal(snap.Explain(ExplainRequest{Method: "GET", URL: "http://api.test/p/users?x=1", Header: h, ClientIP: "10.1.2.3"}))
		var gotV, wantV any
		_ = json.Unmarshal(a.body, &gotV)
		_ = json.Unmarshal(cli, &wantV)
		if fmt.Sprint(gotV) != fmt.Sprint(wantV) {
			t.Errorf("explain over the API:\n%s\nwant the CLI's:\n%s", a.body, cli)
		}
		var ex Explanation
		a.decode(t, &ex)
		if ex.Outcome != "matched" || ex.Route != "proxied" || ex.Action == nil || ex.Action.UpstreamRequest == nil {
			t.Errorf("explanation = %s; want matched on proxied with an upstream request", a.body)
		}
		for _, tc := range []struct{ name, body string }{
			{"not json", `{"url":`},
			{"no url", `{"method":"GET"}`},
			{"unknown field", `{"url":"/","extra":1}`},
			{"bad header value", `{"url":"/","headers":{"A":1}}`},
			{"trailing data", `{"url":"/"} {}`},
		} {
			if a := c.call("POST", "/api/v1/explain", tc.body, apiToken); a.status != 400 || a.header.Get("Content-Type") != "application/problem+json" {
				t.Errorf("explain %s: %d %q; want 400 problem+json", tc.name, a.status, a.header.Get("Content-Type"))
			}
		}
	})

	t.Run("cache purge", func(t *testing.T) {
		for _, tc := range []struct {
			name, body string
			want       int
		}{
			{"all", `{"all":true}`, 404},
			{"route", `{"route":"ok"}`, 404},
			{"prefix", `{"path_prefix":"/p"}`, 404},
			{"key", `{"key":"GET api.test/p"}`, 404},
			{"two selectors", `{"all":true,"route":"ok"}`, 400},
			{"none", `{}`, 400},
			{"all false", `{"all":false}`, 400},
			{"relative prefix", `{"path_prefix":"p"}`, 400},
			{"malformed", `[1,2]`, 400},
		} {
			a := c.call("POST", "/api/v1/cache/purge", tc.body, apiToken)
			if a.status != tc.want {
				t.Errorf("purge %s: %d %s; want %d", tc.name, a.status, a.body, tc.want)
			}
			if tc.want == 404 && !bytes.Contains(a.body, []byte("no route has a cache")) {
				t.Errorf("purge %s: %s; want detail \"no route has a cache\"", tc.name, a.body)
			}
		}
	})

	t.Run("upstreams in flight", func(t *testing.T) {
		done := make(chan struct{})
		go func() {
			defer close(done)
			resp, err := http.Get(g.url + "/hold")
			if err == nil {
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		}()
		select {
		case <-started:
		case <-time.After(10 * time.Second):
			t.Fatal("the held request never reached the upstream")
		}
		if got := targetInFlight(t, c, "hold"); got != 1 {
			t.Errorf("in_flight while a request is held = %d; want 1", got)
		}
		close(release)
		<-done
		deadline := time.Now().Add(10 * time.Second)
		for targetInFlight(t, c, "hold") != 0 {
			if time.Now().After(deadline) {
				t.Fatal("in_flight never went back to 0")
			}
			time.Sleep(5 * time.Millisecond)
		}
		var got UpstreamsAnswer
		c.call("GET", "/api/v1/upstreams", "", apiToken).decode(t, &got)
		for _, u := range got.Upstreams {
			if u.Name == "up" {
				tg := u.Targets[0]
				if tg.URL != up.URL || tg.Weight != 2 || tg.Health != "unknown" || tg.Breaker != "closed" || tg.LastCheck != nil {
					t.Errorf("target of up = %+v; want %s weight 2 unknown closed, no last check", tg, up.URL)
				}
			}
		}
	})

	t.Run("stats", func(t *testing.T) {
		send := func(path string, n, want int) {
			for i := 0; i < n; i++ {
				resp := g.do("GET", path, nil, "")
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != want {
					t.Fatalf("GET %s: %d; want %d", path, resp.StatusCode, want)
				}
			}
		}
		send("/ok", 10, 200)
		send("/fail", 5, 500)
		send("/p/x", 4, 200)
		send("/down", 2, 502)
		var got stats.Result
		a := c.call("GET", "/api/v1/stats?window=2m&step=1s", "", apiToken)
		a.decode(t, &got)
		routes, ups := seriesByName(got.Routes), seriesByName(got.Upstreams)
		for _, tc := range []struct {
			name     string
			series   map[string]stats.Series
			requests uint64
			errors   uint64
		}{
			{"ok", routes, 10, 0},
			{"fail", routes, 5, 5},
			{"proxied", routes, 4, 0},
			{"broken", routes, 2, 2},
			{"up", ups, 4, 0},
			{"dead", ups, 2, 2},
		} {
			s, ok := tc.series[tc.name]
			if !ok {
				t.Errorf("series %s missing from %s", tc.name, a.body)
				continue
			}
			if s.Totals.Requests != tc.requests || s.Totals.Errors != tc.errors {
				t.Errorf("%s totals = %d requests, %d errors; want %d, %d", tc.name, s.Totals.Requests, s.Totals.Errors, tc.requests, tc.errors)
			}
			if len(s.Points) != 120 {
				t.Errorf("%s has %d points; want 120", tc.name, len(s.Points))
			}
			wantRate := 0.0
			if tc.requests > 0 {
				wantRate = float64(tc.errors) / float64(tc.requests)
			}
			if s.Totals.ErrorRate != wantRate {
				t.Errorf("%s error rate = %v; want %v", tc.name, s.Totals.ErrorRate, wantRate)
			}
			if tc.requests > 0 && (s.Totals.P50 <= 0 || s.Totals.P99 < s.Totals.P50) {
				t.Errorf("%s percentiles p50 %v p99 %v; want 0 < p50 ≤ p99", tc.name, s.Totals.P50, s.Totals.P99)
			}
		}
		a = c.call("GET", "/api/v1/stats", "", apiToken)
		a.decode(t, &got)
		if got.Window != "15m0s" || got.Step != "1s" || len(got.Routes) == 0 || len(got.Routes[0].Points) != 900 {
			t.Errorf("default query: window %s step %s; want 15m0s, 1s and 900 points", got.Window, got.Step)
		}
		for _, q := range []string{"window=16m", "window=0s", "window=abc", "step=2s", "window=30s&step=1m", "window=90s&step=1m", "window=1500ms"} {
			if a := c.call("GET", "/api/v1/stats?"+q, "", apiToken); a.status != 400 {
				t.Errorf("stats?%s: %d; want 400", q, a.status)
			}
		}
	})

	t.Run("reload", func(t *testing.T) {
		a := c.call("POST", "/api/v1/reload", "", apiToken)
		var st ReloadStatus
		a.decode(t, &st)
		if a.status != 200 || !st.OK || st.Source != "admin api" {
			t.Errorf("reload: %d %s; want 200 ok from the admin api", a.status, a.body)
		}
		if a := c.call("GET", "/api/v1/reload", "", apiToken); a.status != 200 || !bytes.Contains(a.body, []byte(`"admin api"`)) {
			t.Errorf("reload status: %d %s; want the admin api reload", a.status, a.body)
		}
	})

	t.Run("unknown endpoint", func(t *testing.T) {
		resp, err := http.Get(c.base + "/api/v1/nope")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 401 {
			t.Errorf("unknown endpoint without token: %d; want 401", resp.StatusCode)
		}
	})
}

func TestAdminAPIInvalidReload(t *testing.T) {
	t.Parallel()
	up := newUpstream(t, "up")
	g := startGateway(t, apiConfig(up.URL, up.URL, up.URL))
	c := newAPIClient(t, g.rt.AdminAddr())
	g.rewrite("listeners: [{ address: \"127.0.0.1:0\" }]\nroutes: [{}]\n")
	a := c.call("POST", "/api/v1/reload", "", apiToken)
	if a.status != 422 || a.header.Get("Content-Type") != "application/problem+json" || !bytes.Contains(a.body, []byte("portunus.yaml:2:")) {
		t.Errorf("invalid reload: %d %q %s; want 422 problem+json listing FILE:LINE errors", a.status, a.header.Get("Content-Type"), a.body)
	}
	var got ConfigAnswer
	a = c.call("GET", "/api/v1/config", "", apiToken)
	a.decode(t, &got)
	if got.LastReload == nil || got.LastReload.OK || got.Hash != g.rt.Gateway().Snapshot().Hash {
		t.Errorf("after a failed reload: %s; want the running hash and a failed last reload", a.body)
	}
}

// TestAdminAPILoopbackOnly: without a token, only loopback clients are
// served, whatever the endpoint.
func TestAdminAPILoopbackOnly(t *testing.T) {
	t.Parallel()
	up := newUpstream(t, "up")
	g := startGateway(t, versionConfig(1, up.URL))
	h := g.rt.adminHandler(&config.Admin{Address: "127.0.0.1:0"}, false)
	for _, tc := range []struct {
		name, remote string
		want         int
	}{
		{"ipv4 loopback", "127.0.0.1:4000", 200},
		{"ipv6 loopback", "[::1]:4000", 200},
		{"mapped loopback", "[::ffff:127.0.0.1]:4000", 200},
		{"private", "10.0.0.7:4000", 403},
		{"public v6", "[2001:db8::1]:4000", 403},
		{"garbage", "nonsense", 403},
	} {
		for _, path := range []string{"/api/v1/routes", "/api/v1/stats", "/healthz"} {
			r := httptest.NewRequest("GET", path, nil)
			r.RemoteAddr = tc.remote
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != tc.want {
				t.Errorf("%s GET %s: %d; want %d", tc.name, path, w.Code, tc.want)
			}
			if tc.want == 403 && w.Header().Get("Content-Type") != "application/problem+json" {
				t.Errorf("%s GET %s: Content-Type %q; want problem+json", tc.name, path, w.Header().Get("Content-Type"))
			}
		}
	}
}

func TestConsumerViews(t *testing.T) {
	t.Parallel()
	cfg := &config.Config{Consumers: []config.Consumer{
		{Name: "alice", Roles: []string{"admin"}, APIKeys: []string{"k1-secret", "k2-secret"}, BasicAuth: &config.BasicAuth{Username: "alice", PasswordHash: "$2a$hash-secret"}},
		{Name: "svc", Certificates: []config.CertificateMatch{{Subject: "CN=svc"}}, RateLimits: []config.RateLimit{{Limit: 5}}},
	}}
	got := consumerViews(cfg)
	want := []ConsumerView{
		{Name: "alice", Roles: []string{"admin"}, APIKeys: 2, BasicAuth: true, Source: "config"},
		{Name: "svc", Roles: []string{}, Certificates: 1, RateLimits: 1, Source: "config"},
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("consumerViews = %+v; want %+v", got, want)
	}
	b, _ := json.Marshal(got)
	if bytes.Contains(b, []byte("secret")) {
		t.Errorf("consumer views leak a credential: %s", b)
	}
}

func targetInFlight(t *testing.T, c *apiClient, upstream string) int64 {
	t.Helper()
	var got UpstreamsAnswer
	c.call("GET", "/api/v1/upstreams", "", apiToken).decode(t, &got)
	for _, u := range got.Upstreams {
		if u.Name == upstream && len(u.Targets) == 1 {
			return u.Targets[0].InFlight
		}
	}
	t.Fatalf("upstream %s not listed", upstream)
	return -1
}

func seriesByName(ss []stats.Series) map[string]stats.Series {
	m := make(map[string]stats.Series, len(ss))
	for _, s := range ss {
		m[s.Name] = s
	}
	return m
}
