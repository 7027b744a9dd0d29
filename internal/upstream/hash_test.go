package upstream

import (
	"fmt"
	"net/http"
	"net/netip"
	"testing"

	"github.com/portunus-gw/portunus/internal/config"
	"github.com/portunus-gw/portunus/internal/pipeline"
)

func endpoints(n int) []Endpoint {
	var eps []Endpoint
	for i := range n {
		eps = append(eps, Endpoint{URL: fmt.Sprintf("http://t%d:80", i), Weight: 1})
	}
	return eps
}

func reqWith(header, cookie string) *http.Request {
	r, _ := http.NewRequest(http.MethodGet, "http://gw/", nil)
	if header != "" {
		r.Header.Set("X-User-Id", header)
	}
	if cookie != "" {
		r.Header.Set("Cookie", "theme=dark; session="+cookie+"; other=1")
	}
	return r
}

// TestConsistentHashSticky: the same key always reaches the same target,
// whoever sends it; a missing header or cookie falls back to the client IP.
func TestConsistentHashSticky(t *testing.T) {
	t.Parallel()
	cases := []struct {
		hashOn string
		req    func(key string) *http.Request
		state  func(key string, ip int) *pipeline.State
	}{
		{"header:x-user-id", func(k string) *http.Request { return reqWith(k, "") }, func(_ string, ip int) *pipeline.State { return stateFor(ip) }},
		{"cookie:session", func(k string) *http.Request { return reqWith("", k) }, func(_ string, ip int) *pipeline.State { return stateFor(ip) }},
		{"consumer", func(string) *http.Request { return reqWith("", "") }, func(k string, ip int) *pipeline.State {
			s := stateFor(ip)
			s.Consumer = k
			return s
		}},
	}
	for _, c := range cases {
		t.Run(c.hashOn, func(t *testing.T) {
			t.Parallel()
			p := newTestPool(t, config.Upstream{Balancer: "consistent_hash", HashOn: c.hashOn, Targets: targetsOf(1, 1, 1, 1, 1)})
			used := map[*Target]bool{}
			for k := range 200 {
				key := fmt.Sprintf("key-%d", k)
				first := p.PickFor(c.req(key), c.state(key, 0), nil)
				used[first] = true
				for ip := 1; ip < 20; ip++ {
					if got := p.PickFor(c.req(key), c.state(key, ip), nil); got != first {
						t.Fatalf("key %s from client %d: got %v; want %v as from client 0", key, ip, got, first)
					}
				}
			}
			if len(used) != 5 {
				t.Errorf("200 keys used %d of 5 targets; want all", len(used))
			}
			// No key: the client IP decides, stably.
			for ip := range 50 {
				a := p.PickFor(reqWith("", ""), stateFor(ip), nil)
				if b := p.PickFor(reqWith("", ""), stateFor(ip), nil); a != b {
					t.Fatalf("fallback to IP not sticky: %v then %v", a, b)
				}
			}
		})
	}
}

func TestConsistentHashIPv6AndMapped(t *testing.T) {
	t.Parallel()
	p := newTestPool(t, config.Upstream{Balancer: "consistent_hash", Targets: targetsOf(1, 1, 1)})
	v4 := &pipeline.State{ClientIP: netip.MustParseAddr("192.0.2.7")}
	mapped := &pipeline.State{ClientIP: netip.MustParseAddr("::ffff:192.0.2.7")}
	if a, b := p.Pick(v4), p.Pick(mapped); a != b {
		t.Errorf("IPv4 %v and its mapped form %v went to different targets", a, b)
	}
	if p.Pick(&pipeline.State{}) == nil {
		t.Error("no client IP: got nil; want some target")
	}
}

// TestConsistentHashRemapping: when a target joins, about 1/n of the keys
// move, all of them to the new target; when one leaves, only its keys move.
func TestConsistentHashRemapping(t *testing.T) {
	t.Parallel()
	p := newTestPool(t, config.Upstream{Name: "h", Balancer: "consistent_hash", HashOn: "header:X-User-Id"})
	if err := p.SetTargets(endpoints(4)); err != nil {
		t.Fatal(err)
	}
	const keys = 20000
	before := make([]string, keys)
	for k := range keys {
		before[k] = p.PickFor(reqWith(fmt.Sprint(k), ""), nil, nil).String()
	}
	if err := p.SetTargets(endpoints(5)); err != nil {
		t.Fatal(err)
	}
	moved := 0
	after := make([]string, keys)
	for k := range keys {
		after[k] = p.PickFor(reqWith(fmt.Sprint(k), ""), nil, nil).String()
		if after[k] != before[k] {
			moved++
			if after[k] != "http://t4:80" {
				t.Fatalf("key %d moved from %s to %s; want moves only to the new target", k, before[k], after[k])
			}
		}
	}
	if share := float64(moved) / keys; share < 0.15 || share > 0.25 {
		t.Errorf("a 5th target took %.3f of the keys; want about 0.20", share)
	}
	// t1 leaves: only its keys move.
	if err := p.SetTargets([]Endpoint{{URL: "http://t0:80"}, {URL: "http://t2:80"}, {URL: "http://t3:80"}, {URL: "http://t4:80"}}); err != nil {
		t.Fatal(err)
	}
	for k := range keys {
		got := p.PickFor(reqWith(fmt.Sprint(k), ""), nil, nil).String()
		if after[k] != "http://t1:80" && got != after[k] {
			t.Fatalf("key %d on %s moved to %s though its target stayed", k, after[k], got)
		}
	}
	// A down target's keys go elsewhere and come back with it.
	ts := p.Targets()
	markDown(ts[0])
	for k := range 2000 {
		if got := p.PickFor(reqWith(fmt.Sprint(k), ""), nil, nil); got == ts[0] {
			t.Fatalf("key %d picked the down target", k)
		}
	}
	ts[0].down.And(^downActive)
	for k := range 2000 {
		if got := p.PickFor(reqWith(fmt.Sprint(k), ""), nil, nil).String(); after[k] != "http://t1:80" && got != after[k] {
			t.Fatalf("key %d: %s after recovery; want %s again", k, got, after[k])
		}
	}
}

func TestCookieValue(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		lines []string
		want  string
		ok    bool
	}{
		{[]string{"a=1; session=abc; b=2"}, "abc", true},
		{[]string{"a=1", "session=\"q\""}, "q", true},
		{[]string{"xsession=1; sessionx=2"}, "", false},
		{[]string{"session="}, "", false},
		{nil, "", false},
	} {
		got, ok := cookieValue(c.lines, "session")
		if got != c.want || ok != c.ok {
			t.Errorf("cookieValue(%q) = %q, %v; want %q, %v", c.lines, got, ok, c.want, c.ok)
		}
	}
}

func TestParseHashOn(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]hashKey{
		"":                 {kind: hashIP},
		"ip":               {kind: hashIP},
		"consumer":         {kind: hashConsumer},
		"header:x-user-id": {kind: hashHeader, name: "X-User-Id"},
		"cookie:sid":       {kind: hashCookie, name: "sid"},
	} {
		got, err := parseHashOn(in)
		if err != nil || got != want {
			t.Errorf("parseHashOn(%q) = %+v, %v; want %+v", in, got, err, want)
		}
	}
	for _, bad := range []string{"header:", "path", "cookie"} {
		if _, err := parseHashOn(bad); err == nil {
			t.Errorf("parseHashOn(%q): no error", bad)
		}
	}
}
