package config

import (
	"fmt"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestDefaults(t *testing.T) {
	t.Parallel()
	c := mustParse(t, `
admin: {address: "127.0.0.1:9901"}
listeners:
  - address: "127.0.0.1:8080"
  - address: "127.0.0.1:8081"
    limits: {read_header_timeout: 3s}
upstreams:
  - name: app
    targets: [{url: "http://127.0.0.1:9001"}]
routes:
  - match: {path: /a}
    upstream: app
  - name: fixed
    match: {path: /b}
    respond: {body: hi}
`, noEnv)
	want := Limits{
		ReadHeaderTimeout: Duration(10 * time.Second), BodyReadTimeout: Duration(30 * time.Second),
		IdleTimeout: Duration(120 * time.Second), MaxHeaderBytes: 65536, MaxHeaders: 100,
		MaxURIBytes: 8192, MaxConcurrentStreams: 250,
	}
	if got := *c.Listeners[0].Limits; got != want {
		t.Errorf("listener without limits: got %+v; want %+v", got, want)
	}
	partial := want
	partial.ReadHeaderTimeout = Duration(3 * time.Second)
	if got := *c.Listeners[1].Limits; got != partial {
		t.Errorf("listener with partial limits: got %+v; want %+v", got, partial)
	}
	if p := c.Admin.PublicHealth; p == nil || !*p {
		t.Errorf("admin.public_health = %v; want true", p)
	}
	for _, tc := range []struct {
		name      string
		got, want any
	}{
		{"store.backend", c.Store.Backend, "memory"},
		{"store.on_error", c.Store.OnError, "fail_open"},
		{"store.memory.cache_max_bytes", c.Store.Memory.CacheMaxBytes, Size(256 << 20)},
		{"store.redis.key_prefix", c.Store.Redis.KeyPrefix, "portunus:"},
		{"access_log.format", c.Observability.AccessLog.Format, "json"},
		{"access_log.path", c.Observability.AccessLog.Path, "stdout"},
		{"access_log.sample_success", *c.Observability.AccessLog.SampleSuccess, 1.0},
		{"tracing.protocol", c.Observability.Tracing.Protocol, "http"},
		{"tracing.sample_ratio", *c.Observability.Tracing.SampleRatio, 0.01},
		{"api_key.header", c.APIKey.Header, "X-API-Key"},
		{"upstream balancer", c.Upstreams[0].Balancer, "round_robin"},
		{"target weight", c.Upstreams[0].Targets[0].Weight, 1},
		{"failure_statuses", c.Upstreams[0].FailureStatuses, []int{502, 503, 504}},
		{"timeouts", c.Upstreams[0].Timeouts, UpstreamTimeouts{Duration(2 * time.Second), Duration(30 * time.Second), Duration(90 * time.Second)}},
		{"route name", c.Routes[0].Name, "route-0"},
		{"route timeout", *c.Routes[0].Timeout, Duration(60 * time.Second)},
		{"route max_body_bytes", *c.Routes[0].MaxBodyBytes, Size(10 << 20)},
		{"route hide_credentials", *c.Routes[0].HideCredentials, true},
		{"respond status", c.Routes[1].Respond.Status, 200},
	} {
		if !reflect.DeepEqual(tc.got, tc.want) {
			t.Errorf("%s = %v; want %v", tc.name, tc.got, tc.want)
		}
	}
}

func TestPartialSectionDefaults(t *testing.T) {
	t.Parallel()
	// Health checks are not supported yet, so Parse refuses them; their
	// defaults are still part of the contract, so test applyDefaults itself.
	u := Upstream{HealthCheck: &HealthCheck{Path: "/live"}, Retries: &Retries{}}
	upstreamDefaults(&u)
	if got, want := *u.HealthCheck, (HealthCheck{"/live", Duration(2 * time.Second), Duration(time.Second), 2, 2, "200-399"}); got != want {
		t.Errorf("health_check = %+v; want %+v", got, want)
	}
	if got := u.Retries; got.Attempts != 2 || got.BudgetPercent != 20 || got.MinPerSecond != 3 || len(got.On) != 3 {
		t.Errorf("retries = %+v; want attempts 2, budget 20, min 3, on [connect_failure reset timeout]", got)
	}
	rls := []RateLimit{{Limit: 7, Window: Duration(time.Second)}, {Limit: 5, Burst: 9, By: "consumer"}}
	rateLimitDefaults(rls)
	if rls[0].Burst != 7 || rls[0].By != "ip" || rls[1].Burst != 9 || rls[1].By != "consumer" {
		t.Errorf("rate limits = %+v; want burst = limit and by = ip where unset", rls)
	}
}

func TestLayeringOrder(t *testing.T) {
	t.Parallel()
	c := mustParse(t, base+`
defaults:
  timeout: 1s
  max_body_bytes: 1KiB
  request_headers: {set: {X-Layer: defaults}}
policy_sets:
  first:
    timeout: 2s
    max_body_bytes: 2KiB
    response_headers: {remove: [Server]}
  second:
    timeout: 3s
routes:
  - name: sets-in-order
    use: [first, second]
    match: {path: /a}
    upstream: app
  - name: own-keys-win
    use: [second, first]
    match: {path: /b}
    upstream: app
    timeout: 9s
    request_headers: {set: {X-Layer: route}}
  - name: defaults-only
    match: {path: /c}
    upstream: app
`, noEnv)
	for _, tc := range []struct {
		route       int
		timeout     time.Duration
		maxBody     Size
		layer       string
		removesSrvr bool
	}{
		{0, 3 * time.Second, 2 << 10, "defaults", true},
		{1, 9 * time.Second, 2 << 10, "route", true},
		{2, time.Second, 1 << 10, "defaults", false},
	} {
		r := c.Routes[tc.route]
		if got := r.Timeout.D(); got != tc.timeout {
			t.Errorf("%s: timeout = %v; want %v", r.Name, got, tc.timeout)
		}
		if got := *r.MaxBodyBytes; got != tc.maxBody {
			t.Errorf("%s: max_body_bytes = %v; want %v", r.Name, got, tc.maxBody)
		}
		if got := r.RequestHeaders.Set["X-Layer"]; got != tc.layer {
			t.Errorf("%s: X-Layer = %q; want %q", r.Name, got, tc.layer)
		}
		if got := r.ResponseHeaders != nil && slices.Contains(r.ResponseHeaders.Remove, "Server"); got != tc.removesSrvr {
			t.Errorf("%s: removes Server = %v; want %v", r.Name, got, tc.removesSrvr)
		}
	}
	if got := c.Routes[0].Use; !slices.Equal(got, []string{"first", "second"}) {
		t.Errorf("use = %v; want it kept as written", got)
	}
	lines := parseErrors(t, base+`
policy_sets: {standard: {timeout: 1s}}
routes: [{match: {path: /}, upstream: app, use: [standrad]}]`, noEnv)
	want := `test.yaml:6:50: routes[0].use[0]: unknown policy set "standrad" (did you mean "standard"?)`
	if len(lines) != 1 || lines[0] != want {
		t.Errorf("got %q; want [%q]", lines, want)
	}
}

func TestRoutePoliciesFieldsAreNilable(t *testing.T) {
	t.Parallel()
	rt := reflect.TypeFor[RoutePolicies]()
	for i := range rt.NumField() {
		switch f := rt.Field(i); f.Type.Kind() {
		case reflect.Pointer, reflect.Slice, reflect.Map:
		default:
			t.Errorf("RoutePolicies.%s is a %s; want a pointer, slice or map, so layering can tell unset from zero", f.Name, f.Type.Kind())
		}
	}
}

func TestDecodeErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ name, doc, want string }{
		{"unknown key with suggestion", `routes: [{match: {pth: /}}]`, `test.yaml:1:19: routes[0].match.pth: unknown key "pth" (did you mean "path"?)`},
		{"unknown key far from any", `zebra: 1`, `test.yaml:1:1: zebra: unknown key "zebra"`},
		{"duplicate key", "store:\n  backend: memory\n  backend: redis", `test.yaml:3:3: store.backend: duplicate key "backend" (first at line 2)`},
		{"expected a list", `trusted_proxies: 10.0.0.0/8`, `test.yaml:1:18: trusted_proxies: expected a list, got "10.0.0.0/8" (write [10.0.0.0/8] for a list of one)`},
		{"expected an integer", `store: {redis: {db: x}}`, `test.yaml:1:21: store.redis.db: expected an integer, got "x"`},
		{"expected a mapping", `store: memory`, `test.yaml:1:8: store: expected a mapping (key: value), got "memory"`},
		{"bare integer duration", `defaults: {timeout: 30}`, `test.yaml:1:21: defaults.timeout: duration "30" has no unit: use a unit such as 5s, 250ms or 1m`},
		{"bad size", `defaults: {max_body_bytes: 1 TB}`, `test.yaml:1:28: defaults.max_body_bytes: invalid size "1 TB" (use bytes, or a number with KiB, MiB or GiB)`},
		{"expected a boolean", `observability: {pprof: yes}`, `test.yaml:1:24: observability.pprof: expected true or false, got "yes"`},
		{"top level not a mapping", `[1, 2]`, `test.yaml:1:1: expected a mapping of config keys at the top level, got a list`},
		{"two documents", "listeners: []\n---\nroutes: []", `test.yaml:2:1: only one YAML document is allowed per config file`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			lines := parseErrors(t, tc.doc, noEnv)
			if !slices.Contains(lines, tc.want) {
				t.Errorf("got:\n%s\nwant a line:\n%s", strings.Join(lines, "\n"), tc.want)
			}
		})
	}
}

func TestJSONInput(t *testing.T) {
	t.Parallel()
	c := mustParse(t, `{"listeners": [{"address": "127.0.0.1:8080"}],
 "upstreams": [{"name": "app", "targets": [{"url": "http://127.0.0.1:9001", "weight": 3}]}],
 "routes": [{"match": {"path_prefix": "/"}, "upstream": "app", "max_body_bytes": 2048}]}`, noEnv)
	if got := c.Upstreams[0].Targets[0].Weight; got != 3 {
		t.Errorf("weight = %d; want 3", got)
	}
	if got := *c.Routes[0].MaxBodyBytes; got != 2048 {
		t.Errorf("max_body_bytes = %d; want 2048 (a JSON number is bytes)", got)
	}
	lines := parseErrors(t, `{"listeners": [], "listeners": []}`, noEnv)
	if want := `test.yaml:1:19: listeners: duplicate key "listeners" (first at line 1)`; !slices.Contains(lines, want) {
		t.Errorf("got %q; want a line %q", lines, want)
	}
}

func TestUpstreamRefForms(t *testing.T) {
	t.Parallel()
	c := mustParse(t, base+`routes: [{match: {path: /}, upstream: app}]`, noEnv)
	if got := c.Routes[0].Upstream; got.Name != "app" || got.Split != nil {
		t.Errorf("upstream = %+v; want Name app", got)
	}
	// The split form decodes; each name is checked where written.
	lines := parseErrors(t, base+`routes: [{match: {path: /}, upstream: [{name: app, weight: 1}, {name: nope, weight: 1}]}]`, noEnv)
	want := []string{
		`test.yaml:4:71: routes[0].upstream[1].name: unknown upstream "nope"`,
	}
	if !slices.Equal(lines, want) {
		t.Errorf("got:\n%s\nwant:\n%s", strings.Join(lines, "\n"), strings.Join(want, "\n"))
	}
}

func TestPathsAndFiles(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	file := filepath.Join(dir, "conf", "portunus.yaml")
	c := mustParse(t, base+`
observability: {access_log: {path: logs/access.log}}
routes: [{match: {path: /}, upstream: app}]`, noEnv)
	if got := c.Observability.AccessLog.Path; !filepath.IsAbs(got) || filepath.Base(got) != "access.log" {
		t.Errorf("access_log.path = %q; want an absolute path", got)
	}
	c2, err := Parse(file, []byte(base+`
listeners: []`), noEnv)
	_ = c2
	if err == nil {
		t.Fatal("duplicate listeners key accepted")
	}
	c3, err := Parse(file, []byte(base+`
store: {redis: {tls: {ca_file: certs/ca.pem}}}
routes: [{match: {path: /}, upstream: app}]`), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := c3.Store.Redis.TLS.CAFile, filepath.Join(dir, "conf", "certs", "ca.pem"); got != want {
		t.Errorf("ca_file = %q; want %q", got, want)
	}
	if got, want := c3.Files(), []string{file, filepath.Join(dir, "conf", "certs", "ca.pem")}; !slices.Equal(got, want) {
		t.Errorf("Files() = %q; want %q", got, want)
	}
	if got := c3.SourceFile(); got != file {
		t.Errorf("SourceFile() = %q; want %q", got, file)
	}
	if got := c3.Dir(); got != filepath.Join(dir, "conf") {
		t.Errorf("Dir() = %q; want %q", got, filepath.Join(dir, "conf"))
	}
	if got := c.Files(); len(got) != 1 {
		t.Errorf("Files() = %q; want only the config file (the access log is not an input)", got)
	}
}

func TestErrorAt(t *testing.T) {
	t.Parallel()
	c := mustParse(t, base+`routes:
  - match: {path: /a}
    upstream: app
    request_headers:
      set: {X-A: "{bad"}`, noEnv)
	for _, tc := range []struct{ path, want string }{
		{"routes[0].request_headers.set.X-A", "test.yaml:8:18: routes[0].request_headers.set.X-A: boom"},
		{"routes[0].request_headers.set.X-B", "test.yaml:8:7: routes[0].request_headers.set.X-B: boom"},
		{"routes[0].rewrite.path", "test.yaml:5:5: routes[0].rewrite.path: boom"},
		{"nothing.here", "test.yaml:2:1: nothing.here: boom"},
	} {
		if got := c.ErrorAt(tc.path, "boom").Error(); got != tc.want {
			t.Errorf("ErrorAt(%q) = %q; want %q", tc.path, got, tc.want)
		}
	}
}

func TestParentPath(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ in, want string }{
		{"a.b[2]", "a.b"},
		{"a.b", "a"},
		{"a", ""},
		{`a["x.y[1]"]`, "a"},
		{`a["x.y"].z`, `a["x.y"]`},
		{"", ""},
	} {
		if got := parentPath(tc.in); got != tc.want {
			t.Errorf("parentPath(%q) = %q; want %q", tc.in, got, tc.want)
		}
	}
}

func TestHash(t *testing.T) {
	t.Parallel()
	a := mustParse(t, base+`routes: [{match: {path: /}, upstream: app}]`, noEnv)
	b := mustParse(t, base+`routes: [{match: {path: /}, upstream: app, timeout: 60s}]   # the default, written`, noEnv)
	c := mustParse(t, base+`routes: [{match: {path: /}, upstream: app, timeout: 61s}]`, noEnv)
	if a.Hash() != b.Hash() {
		t.Errorf("hashes differ for configs that mean the same")
	}
	if a.Hash() == c.Hash() {
		t.Errorf("hashes equal for different configs")
	}
	if len(a.Hash()) != 64 {
		t.Errorf("Hash() = %q; want 64 hex digits", a.Hash())
	}
}

func TestAliasesAndMerge(t *testing.T) {
	t.Parallel()
	c := mustParse(t, `
listeners: [{address: "127.0.0.1:8080"}]
upstreams:
  - &u {name: app, targets: [{url: "http://127.0.0.1:9001"}]}
  - <<: *u
    name: app2
routes: [{match: {path: /}, upstream: app2}]`, noEnv)
	if got := c.Upstreams[1]; got.Name != "app2" || got.Targets[0].URL != "http://127.0.0.1:9001" {
		t.Errorf("merged upstream = %+v; want name app2 with app's targets", got)
	}
	// Aliases that multiply (10^6 values) under unknown keys are refused
	// without being expanded; aliases that multiply under known keys (2001
	// routes of 2001 hosts) stop at the decoder's budget.
	bomb := "h1: &h1 [a, a, a, a, a, a, a, a, a, a]\n"
	for i := 2; i <= 6; i++ {
		bomb += fmt.Sprintf("h%d: &h%d [*h%d, *h%d, *h%d, *h%d, *h%d, *h%d, *h%d, *h%d, *h%d, *h%d]\n", i, i, i-1, i-1, i-1, i-1, i-1, i-1, i-1, i-1, i-1, i-1)
	}
	_, err := Parse("bomb.yaml", []byte(bomb), noEnv)
	if err == nil || !strings.Contains(err.Error(), "unknown key") {
		t.Fatalf("got %v; want unknown-key errors", err)
	}
	flat := "r: &r {match: {hosts: &h [" + strings.Repeat("a.example.com, ", 2000) + "a.example.com]}}\nroutes: [" + strings.Repeat("*r, ", 2000) + "*r]\n"
	_, err = Parse("flat.yaml", []byte(flat), noEnv)
	if err == nil || !strings.Contains(err.Error(), "document too large or too deeply aliased") {
		t.Errorf("got %.300v; want the decode budget to stop it", err)
	}
}
