package proxy_test

import (
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"testing"

	"github.com/portunus-gw/portunus/internal/config"
	"github.com/portunus-gw/portunus/internal/headers"
	"github.com/portunus-gw/portunus/internal/pipeline"
	"github.com/portunus-gw/portunus/internal/proxy"
)

func TestForwardedHeaders(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name      string
		trusted   bool
		send      http.Header
		wantXFF   string
		wantProto string
		wantHost  string // "" = the front's own host
	}{
		{
			name:      "untrusted peer: client values dropped",
			send:      http.Header{"X-Forwarded-For": {"1.2.3.4"}, "X-Forwarded-Proto": {"https"}, "X-Forwarded-Host": {"evil.example"}, "Forwarded": {"for=1.2.3.4"}},
			wantXFF:   "127.0.0.1",
			wantProto: "http",
		},
		{
			name:      "untrusted peer: nothing sent",
			wantXFF:   "127.0.0.1",
			wantProto: "http",
		},
		{
			name:      "trusted peer: list appended, values kept",
			trusted:   true,
			send:      http.Header{"X-Forwarded-For": {"1.2.3.4, 10.0.0.1", "10.0.0.2"}, "X-Forwarded-Proto": {"https"}, "X-Forwarded-Host": {"api.example.com"}},
			wantXFF:   "1.2.3.4, 10.0.0.1, 10.0.0.2, 127.0.0.1",
			wantProto: "https",
			wantHost:  "api.example.com",
		},
		{
			name:      "trusted peer: nothing sent",
			trusted:   true,
			wantXFF:   "127.0.0.1",
			wantProto: "http",
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			up, got := recordingUpstream(t)
			front := startFront(t, proxy.New(proxy.Config{Pool: newPool(t, config.Upstream{}, up.URL)}), frontOpts{trusted: c.trusted})
			req := mustRequest(t, http.MethodGet, front.URL+"/x", nil)
			for k, v := range c.send {
				req.Header[k] = v
			}
			res, body := do(t, front, req)
			if res.StatusCode != 200 || body != "ok" {
				t.Fatalf("response: got %d %q; want 200 ok", res.StatusCode, body)
			}
			s := receive(t, got)
			wantHost := c.wantHost
			if wantHost == "" {
				wantHost = strings.TrimPrefix(front.URL, "http://")
			}
			checks := []struct{ name, got, want string }{
				{"X-Forwarded-For", strings.Join(s.Header["X-Forwarded-For"], "|"), c.wantXFF},
				{"X-Forwarded-Proto", strings.Join(s.Header["X-Forwarded-Proto"], "|"), c.wantProto},
				{"X-Forwarded-Host", strings.Join(s.Header["X-Forwarded-Host"], "|"), wantHost},
				{"X-Request-Id", s.Header.Get("X-Request-Id"), "req-42"},
				{"Forwarded", s.Header.Get("Forwarded"), ""},
				{"response X-Request-Id", strings.Join(res.Header["X-Request-Id"], "|"), "req-42"},
			}
			for _, ck := range checks {
				if ck.got != ck.want {
					t.Errorf("%s: got %q; want %q", ck.name, ck.got, ck.want)
				}
			}
		})
	}
}

func TestIdentityAndSpoofedHeadersStripped(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name      string
		consumer  string
		roles     []string
		wantName  string
		wantRoles string
	}{
		{"anonymous", "", nil, "", ""},
		{"authenticated", "alice", []string{"admin", "reader"}, "alice", "admin,reader"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			up, got := recordingUpstream(t)
			front := startFront(t, proxy.New(proxy.Config{Pool: newPool(t, config.Upstream{}, up.URL)}), frontOpts{
				trusted: true, // identity headers go even from trusted peers
				setup: func(s *pipeline.State, r *http.Request) {
					s.Consumer = c.consumer
					s.Roles = c.roles
				},
			})
			req := mustRequest(t, http.MethodGet, front.URL+"/x", nil)
			for _, k := range []string{
				"X-Consumer-Name", "X_Consumer_Name", "x_consumer_roles", "X-Consumer-Roles", "X-Consumer-Id",
				"X-Authenticated-User", "X_Authenticated_Scope", "X-Real-IP", "X_Real_Ip",
				"X-HTTP-Method-Override", "X-Http-Method", "X-Method-Override",
				"X_Forwarded_For", "X_Request_Id",
			} {
				req.Header[k] = []string{"evil"}
			}
			req.Header.Set("X-Normal", "kept")
			do(t, front, req)
			s := receive(t, got)
			for k, v := range s.Header {
				if strings.Contains(strings.Join(v, ","), "evil") {
					t.Errorf("upstream got spoofed %s: %q", k, v)
				}
			}
			if got := s.Header.Get("X-Consumer-Name"); got != c.wantName {
				t.Errorf("X-Consumer-Name: got %q; want %q", got, c.wantName)
			}
			if got := s.Header.Get("X-Consumer-Roles"); got != c.wantRoles {
				t.Errorf("X-Consumer-Roles: got %q; want %q", got, c.wantRoles)
			}
			if got := s.Header.Get("X-Normal"); got != "kept" {
				t.Errorf("X-Normal: got %q; want kept", got)
			}
		})
	}
}

func TestHopByHopRemovedBothWays(t *testing.T) {
	t.Parallel()
	got := make(chan http.Header, 1)
	up := newUpstreamFunc(t, func(w http.ResponseWriter, r *http.Request) {
		got <- r.Header.Clone()
		h := w.Header()
		h.Set("Connection", "X-Secret, keep-alive")
		h.Set("X-Secret", "s")
		h.Set("Keep-Alive", "timeout=5")
		h.Set("Proxy-Authenticate", "Basic")
		h.Set("Upgrade", "h2c")
		h.Set("X-Public", "p")
		w.Write([]byte("ok"))
	})
	front := startFront(t, proxy.New(proxy.Config{Pool: newPool(t, config.Upstream{}, up.URL)}), frontOpts{})
	req := mustRequest(t, http.MethodGet, front.URL+"/x", nil)
	req.Header.Set("Connection", "X-Foo, keep-alive")
	req.Header.Set("X-Foo", "bar")
	req.Header.Set("Keep-Alive", "300")
	req.Header.Set("Proxy-Authorization", "Basic eA==")
	req.Header.Set("Proxy-Connection", "keep-alive")
	req.Header.Set("Upgrade", "h2c")
	req.Header.Set("TE", "trailers, deflate")
	req.Header.Set("X-Bar", "kept")
	res, _ := do(t, front, req)
	var h http.Header
	select {
	case h = <-got:
	case <-timeAfter():
		t.Fatal("upstream received nothing")
	}
	for _, k := range []string{"Connection", "X-Foo", "Keep-Alive", "Proxy-Authorization", "Proxy-Connection", "Upgrade"} {
		if v, ok := h[k]; ok {
			t.Errorf("upstream got hop-by-hop %s: %q", k, v)
		}
	}
	if got := h.Get("Te"); got != "trailers" {
		t.Errorf("upstream TE: got %q; want trailers", got)
	}
	if got := h.Get("X-Bar"); got != "kept" {
		t.Errorf("upstream X-Bar: got %q; want kept", got)
	}
	for _, k := range []string{"X-Secret", "Keep-Alive", "Proxy-Authenticate", "Upgrade"} {
		if v, ok := res.Header[k]; ok {
			t.Errorf("client got hop-by-hop %s: %q", k, v)
		}
	}
	if got := res.Header.Get("X-Public"); got != "p" {
		t.Errorf("client X-Public: got %q; want p", got)
	}
}

func TestPathsAndHost(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name         string
		targetPath   string
		preserveHost bool
		strip        string
		rewrite      string
		params       [][2]string
		reqPath      string
		query        string
		wantEscaped  string
		wantHostFE   bool // the front's host (else the target's)
	}{
		{name: "plain", reqPath: "/v1/users/7", wantEscaped: "/v1/users/7"},
		{name: "root", reqPath: "/", wantEscaped: "/"},
		{name: "target prefix", targetPath: "/base/", reqPath: "/v1/x", wantEscaped: "/base/v1/x"},
		{name: "preserve host", preserveHost: true, reqPath: "/a", wantEscaped: "/a", wantHostFE: true},
		{name: "strip prefix", strip: "/v1", reqPath: "/v1/users/7", wantEscaped: "/users/7"},
		{name: "strip whole path", strip: "/v1/", reqPath: "/v1", wantEscaped: "/"},
		{name: "strip only whole segments", strip: "/v1", reqPath: "/v1x/users", wantEscaped: "/v1x/users"},
		{name: "strip then target prefix", targetPath: "/svc", strip: "/v1", reqPath: "/v1/users", wantEscaped: "/svc/users"},
		{name: "escaped slash kept", reqPath: "/files/a%2Fb/c", wantEscaped: "/files/a%2Fb/c"},
		{name: "escaped slash kept with prefix", targetPath: "/p", reqPath: "/files/a%2Fb", wantEscaped: "/p/files/a%2Fb"},
		{name: "rewrite with params", rewrite: "/users/{id}/profile", params: [][2]string{{"id", "7"}}, reqPath: "/u/7", wantEscaped: "/users/7/profile"},
		{name: "rewrite keeps escaped param", rewrite: "/files/{name}", params: [][2]string{{"name", "a%2Fb"}}, reqPath: "/f/a%2Fb", wantEscaped: "/files/a%2Fb"},
		{name: "query untouched", reqPath: "/q", query: "b=2&a=1&a=%20x&c=%2F;d&e", wantEscaped: "/q"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			up, got := recordingUpstream(t)
			cfg := proxy.Config{
				Pool:        newPool(t, config.Upstream{PreserveHost: c.preserveHost}, up.URL+c.targetPath),
				StripPrefix: c.strip,
			}
			var names []string
			for _, p := range c.params {
				names = append(names, p[0])
			}
			if c.rewrite != "" {
				tm, err := headers.CompilePath(c.rewrite, names)
				if err != nil {
					t.Fatal(err)
				}
				cfg.RewritePath = tm
			}
			front := startFront(t, proxy.New(cfg), frontOpts{setup: func(s *pipeline.State, r *http.Request) {
				for _, p := range c.params {
					s.Params.Add(p[0], p[1])
				}
			}})
			u := front.URL + c.reqPath
			if c.query != "" {
				u += "?" + c.query
			}
			req := mustRequest(t, http.MethodGet, u, nil)
			req.Host = "api.example.com"
			res, _ := do(t, front, req)
			if res.StatusCode != 200 {
				t.Fatalf("status: got %d; want 200", res.StatusCode)
			}
			s := receive(t, got)
			if s.EscapedPath != c.wantEscaped {
				t.Errorf("upstream path: got %q (request URI %q); want %q", s.EscapedPath, s.RequestURI, c.wantEscaped)
			}
			if s.Query != c.query {
				t.Errorf("upstream query: got %q; want %q", s.Query, c.query)
			}
			wantHost := strings.TrimPrefix(up.URL, "http://")
			if c.wantHostFE {
				wantHost = "api.example.com"
			}
			if s.Host != wantHost {
				t.Errorf("upstream Host: got %q; want %q", s.Host, wantHost)
			}
			if got := s.Header.Get("X-Forwarded-Host"); got != "api.example.com" {
				t.Errorf("X-Forwarded-Host: got %q; want api.example.com", got)
			}
			wantPrefix := ""
			if c.strip != "" && c.wantEscaped != c.reqPath {
				wantPrefix = strings.TrimRight(c.strip, "/")
			}
			if got := s.Header.Get("X-Forwarded-Prefix"); got != wantPrefix {
				t.Errorf("X-Forwarded-Prefix: got %q; want %q", got, wantPrefix)
			}
		})
	}
}

func TestHeaderRules(t *testing.T) {
	t.Parallel()
	up := newUpstreamFunc(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Server", "secret/1.0")
		w.Header().Set("X-Echo-User", r.Header.Get("X-User"))
		w.Header().Set("X-Echo-Cookie", r.Header.Get("Cookie"))
		w.Header().Set("X-Echo-Route", strings.Join(r.Header["X-Route"], "|"))
		w.Header().Set("X-Echo-Tenant", r.Header.Get("X-Tenant-Q"))
		w.Write([]byte("ok"))
	})
	reqRules, err := headers.CompileRules(&config.HeaderRules{
		Set:    map[string]string{"X-User": "{consumer}", "X-Tenant-Q": "{query.tenant}/{id}"},
		Add:    map[string]string{"X-Route": "{route}"},
		Remove: []string{"Cookie"},
	}, []string{"id"})
	if err != nil {
		t.Fatal(err)
	}
	respRules, err := headers.CompileRules(&config.HeaderRules{
		Set:    map[string]string{"X-Served-By": "portunus {route}"},
		Remove: []string{"Server"},
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	front := startFront(t, proxy.New(proxy.Config{
		Pool:            newPool(t, config.Upstream{}, up.URL),
		RequestHeaders:  reqRules,
		ResponseHeaders: respRules,
	}), frontOpts{setup: func(s *pipeline.State, r *http.Request) {
		s.Consumer = "alice"
		s.Params.Add("id", "7")
	}})
	req := mustRequest(t, http.MethodGet, front.URL+"/x?tenant=acme", nil)
	req.Header.Set("Cookie", "session=1")
	req.Header.Set("X-Route", "client")
	res, _ := do(t, front, req)
	want := map[string]string{
		"X-Echo-User":   "alice",
		"X-Echo-Cookie": "",
		"X-Echo-Route":  "client|test-route",
		"X-Echo-Tenant": "acme/7",
		"X-Served-By":   "portunus test-route",
		"Server":        "",
	}
	for k, v := range want {
		if got := res.Header.Get(k); got != v {
			t.Errorf("%s: got %q; want %q", k, got, v)
		}
	}
}

func TestUserAgentNotInvented(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		send []string // nil: none at all
		want []string
	}{
		{"none", nil, nil},
		{"client's kept", []string{"curl/8.0"}, []string{"curl/8.0"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			up, got := recordingUpstream(t)
			front := startFront(t, proxy.New(proxy.Config{Pool: newPool(t, config.Upstream{}, up.URL)}), frontOpts{})
			req := mustRequest(t, http.MethodGet, front.URL+"/", nil)
			if c.send == nil {
				req.Header["User-Agent"] = []string{""} // Go's client then sends none
			} else {
				req.Header["User-Agent"] = c.send
			}
			do(t, front, req)
			s := receive(t, got)
			if g := s.Header["User-Agent"]; !reflect.DeepEqual(g, c.want) {
				t.Errorf("upstream User-Agent: got %q; want %q", g, c.want)
			}
		})
	}
}

func TestMethodAndBodyForwarded(t *testing.T) {
	t.Parallel()
	up, got := recordingUpstream(t)
	front := startFront(t, proxy.New(proxy.Config{Pool: newPool(t, config.Upstream{}, up.URL)}), frontOpts{})
	form := url.Values{"a": {"1"}}.Encode()
	req := mustRequest(t, http.MethodPut, front.URL+"/items/1", strings.NewReader(form))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept-Encoding", "gzip")
	do(t, front, req)
	s := receive(t, got)
	if s.Method != http.MethodPut || string(s.Body) != form {
		t.Errorf("upstream got %s %q; want PUT %q", s.Method, s.Body, form)
	}
	if got := s.Header.Get("Accept-Encoding"); got != "gzip" {
		t.Errorf("Accept-Encoding: got %q; want gzip (passed through untouched)", got)
	}
	if got := s.Header.Get("Content-Length"); got != "" && got != "3" {
		t.Errorf("Content-Length: got %q; want 3", got)
	}
}

func TestBalancingThroughProxy(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		weights []int
		want    []int
	}{
		{"round robin", []int{1, 1}, []int{4, 4}},
		{"weighted 3:1", []int{3, 1}, []int{6, 2}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			var ups []config.Target
			chans := make([]<-chan seen, len(c.weights))
			for i, w := range c.weights {
				up, ch := recordingUpstream(t)
				chans[i] = ch
				ups = append(ups, config.Target{URL: up.URL, Weight: w})
			}
			front := startFront(t, proxy.New(proxy.Config{Pool: newPool(t, config.Upstream{Targets: ups})}), frontOpts{})
			total := 0
			for _, n := range c.want {
				total += n
			}
			for i := 0; i < total; i++ {
				do(t, front, mustRequest(t, http.MethodGet, front.URL+"/", nil))
			}
			for i, ch := range chans {
				if got := len(ch); got != c.want[i] {
					t.Errorf("target %d received %d requests; want %d", i, got, c.want[i])
				}
			}
		})
	}
}

func TestHostSetByRule(t *testing.T) {
	t.Parallel()
	up, got := recordingUpstream(t)
	rules, err := headers.CompileRules(&config.HeaderRules{Set: map[string]string{"Host": "internal.svc"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	front := startFront(t, proxy.New(proxy.Config{Pool: newPool(t, config.Upstream{}, up.URL), RequestHeaders: rules}), frontOpts{})
	do(t, front, mustRequest(t, http.MethodGet, front.URL+"/", nil))
	if s := receive(t, got); s.Host != "internal.svc" {
		t.Errorf("upstream Host: got %q; want internal.svc", s.Host)
	}
}
