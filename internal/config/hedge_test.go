package config

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestParseHedgeDelay(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   string
		want HedgeDelay
	}{
		{"50ms", HedgeDelay{Duration: Duration(50 * time.Millisecond)}},
		{" 1s ", HedgeDelay{Duration: Duration(time.Second)}},
		{"p50", HedgeDelay{Percentile: 50}},
		{"p95", HedgeDelay{Percentile: 95}},
		{"p99.9", HedgeDelay{Percentile: 99.9}},
		{"p97.5", HedgeDelay{Percentile: 97.5}},
	} {
		got, err := ParseHedgeDelay(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("ParseHedgeDelay(%q) = %+v, %v; want %+v", tc.in, got, err, tc.want)
		}
	}
	for _, in := range []string{"p0", "p49.9", "p100", "p99.95", "p", "p-95", "p9e1", "pinf", "95", "fast", "-5ms", "P95"} {
		if got, err := ParseHedgeDelay(in); err == nil {
			t.Errorf("ParseHedgeDelay(%q) = %+v; want an error", in, got)
		}
	}
}

func TestHedgeDecodes(t *testing.T) {
	t.Parallel()
	c := mustParse(t, base+`
routes:
  - { match: { path: /a }, upstream: app, hedge: { after: p95 } }
  - { match: { path: /b }, upstream: app, hedge: { after: p99.9, min: 5ms, max: 2 } }
  - { match: { path: /c }, upstream: app, hedge: { after: 50ms } }
  - { match: { path: /d }, upstream: app, hedge: { after: "${HEDGE_AFTER}" } }
`, mapEnv(map[string]string{"HEDGE_AFTER": "p90"}))
	want := []Hedge{
		{After: HedgeDelay{Percentile: 95}, Min: DefaultHedgeMin, Max: 1},
		{After: HedgeDelay{Percentile: 99.9}, Min: Duration(5 * time.Millisecond), Max: 2},
		{After: HedgeDelay{Duration: Duration(50 * time.Millisecond)}, Max: 1},
		{After: HedgeDelay{Percentile: 90}, Min: DefaultHedgeMin, Max: 1},
	}
	for i, w := range want {
		if got := c.Routes[i].Hedge; got == nil || *got != w {
			t.Errorf("routes[%d].hedge = %+v; want %+v", i, got, w)
		}
	}
	// The admin API, explain and config hashes show it as written.
	b, err := json.Marshal(c.Routes[0].Hedge)
	if err != nil || string(b) != `{"after":"p95","min":"1ms","max":1}` {
		t.Errorf("JSON = %s, %v", b, err)
	}
	b, _ = json.Marshal(c.Routes[2].Hedge)
	if string(b) != `{"after":"50ms","max":1}` {
		t.Errorf("JSON = %s", b)
	}
}

func TestHedgeErrors(t *testing.T) {
	t.Parallel()
	route := func(hedge string) string {
		return base + "routes:\n  - match: { path: /a }\n    upstream: app\n    hedge: " + hedge + "\n"
	}
	// Line 7 is the hedge line; "    hedge: { after: " is 20 columns.
	for _, tc := range []struct{ hedge, want string }{
		{`{ after: p0 }`, `test.yaml:7:21: routes[0].hedge.after: percentile "p0" is out of range: use p50 to p99.9`},
		{`{ after: p100 }`, `test.yaml:7:21: routes[0].hedge.after: percentile "p100" is out of range: use p50 to p99.9`},
		{`{ after: p }`, `test.yaml:7:21: routes[0].hedge.after: invalid percentile "p": want p followed by 50 to 99.9, e.g. p95`},
		{`{ after: 95 }`, `test.yaml:7:21: routes[0].hedge.after: "95" has no unit: use a duration such as 50ms, or a percentile such as p95`},
		{`{ after: fast }`, `test.yaml:7:21: routes[0].hedge.after: invalid value "fast": use a duration such as 50ms, or a percentile of the upstream's latency such as p95`},
		{`{ after: 0s }`, `test.yaml:7:21: routes[0].hedge.after: after is required and must be greater than 0`},
		{`{ after: 50ms, min: 5ms }`, `test.yaml:7:32: routes[0].hedge.min: min only applies when after is a percentile (e.g. after: p95)`},
		{`{ after: p95, min: 0s }`, `test.yaml:7:31: routes[0].hedge.min: min must be greater than 0 (default 1ms)`},
	} {
		lines := parseErrors(t, route(tc.hedge), noEnv)
		if !slices.Contains(lines, tc.want) {
			t.Errorf("hedge: %s\ngot:\n%s\nwant a line:\n%s", tc.hedge, strings.Join(lines, "\n"), tc.want)
		}
		if len(lines) != 1 {
			t.Errorf("hedge: %s: %d errors, want 1:\n%s", tc.hedge, len(lines), strings.Join(lines, "\n"))
		}
	}
}

func TestSchemaHedgeAfter(t *testing.T) {
	t.Parallel()
	s := compiledSchema(t)
	doc := func(after string) string { return `routes: [{upstream: app, hedge: {after: ` + after + `}}]` }
	for _, ok := range []string{"50ms", "p50", "p95", "p97.5", "p99", "p99.9", `"${HEDGE_AFTER}"`} {
		if err := s.Validate(yamlToJSONValue(t, []byte(doc(ok)))); err != nil {
			t.Errorf("schema refused after: %s: %v", ok, err)
		}
	}
	for _, bad := range []string{"p0", "p49", "p100", "p99.95", "p", "95", "fast"} {
		if err := s.Validate(yamlToJSONValue(t, []byte(doc(bad)))); err == nil {
			t.Errorf("schema accepted after: %s; want an error", bad)
		}
	}
}
