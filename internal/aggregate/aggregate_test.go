package aggregate

import (
	"context"
	"net/http"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/portunus-gw/portunus/internal/config"
	"github.com/portunus-gw/portunus/internal/upstream"
)

func TestMergeSelectAndSequence(t *testing.T) {
	t.Parallel()
	seenOrgPath := make(chan string, 1)
	seenOrdersQuery := make(chan string, 1)
	users := backend(t, "users", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		switch {
		case strings.HasPrefix(r.URL.Path, "/users/"):
			_, _ = w.Write([]byte(`{"id":"u 1/x","name":"Ann","org_id":"acme/eu 1","secret":"s3"}`))
		case strings.HasPrefix(r.URL.Path, "/orgs/"):
			seenOrgPath <- r.URL.EscapedPath()
			_, _ = w.Write([]byte(`{"name":"Acme","plan":"gold"}`))
		default:
			w.WriteHeader(404)
		}
	})
	orders := backend(t, "orders", func(w http.ResponseWriter, r *http.Request) {
		seenOrdersQuery <- r.URL.RawQuery
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`[{"id":1,"total":5,"internal":"x"},{"id":2,"total":7}]`))
	})
	flags := backend(t, "flags", jsonAnswer(`{"beta":true,"name":"flags-name"}`))
	p := plan(t, config.Aggregate{Backends: []config.AggregateBackend{
		{Upstream: "users", Path: "/users/{id}", As: "user", Fields: []string{"name:full_name", "org_id"}},
		{Upstream: "orders", Path: "/orders?user={id}&sort={query.sort}&who={consumer}", As: "orders", Fields: []string{"id", "total"}},
		{Upstream: "users", Path: "/orgs/{user.org_id}", As: "org", After: "user"},
		{Upstream: "flags", Path: "/flags"}, // merged at the top level
	}}, map[string]*upstream.Pool{"users": users, "orders": orders, "flags": flags}, "id")

	w := serve(p, context.Background(), "GET", "/dash/u%201?sort=a%26b", "id", "u%201")
	if w.Code != 200 {
		t.Fatalf("status %d; want 200 (body %s)", w.Code, w.Body)
	}
	if got := w.Header().Get(PartialHeader); got != "" {
		t.Errorf("%s = %q on a complete answer; want none", PartialHeader, got)
	}
	got := decodeBody(t, w)
	want := map[string]any{
		"user":   map[string]any{"full_name": "Ann", "org_id": "acme/eu 1"},
		"orders": []any{map[string]any{"id": 1.0, "total": 5.0}, map[string]any{"id": 2.0, "total": 7.0}},
		"org":    map[string]any{"name": "Acme", "plan": "gold"},
		"beta":   true,
		"name":   "flags-name",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("merged answer\n got %v\nwant %v", got, want)
	}
	// The earlier answer's value is escaped as one path segment.
	if p := <-seenOrgPath; p != "/orgs/acme%2Feu%201" {
		t.Errorf("org backend saw path %q; want /orgs/acme%%2Feu%%201", p)
	}
	if q := <-seenOrdersQuery; q != "user=u+1&sort=a%26b&who=alice" {
		t.Errorf("orders backend saw query %q; want user=u+1&sort=a%%26b&who=alice", q)
	}
}

func TestTopLevelMergeLaterWins(t *testing.T) {
	t.Parallel()
	a := backend(t, "a", jsonAnswer(`{"k":"from-a","only_a":1}`))
	b := backend(t, "b", jsonAnswer(`{"k":"from-b"}`))
	p := plan(t, config.Aggregate{Backends: []config.AggregateBackend{
		{Upstream: "a", Path: "/"}, {Upstream: "b", Path: "/"},
	}}, map[string]*upstream.Pool{"a": a, "b": b})
	got := decodeBody(t, serve(p, context.Background(), "GET", "/"))
	if got["k"] != "from-b" || got["only_a"] != 1.0 {
		t.Errorf("got %v; want k from the later backend b and only_a kept", got)
	}
}

func TestOptionalFailureIsPartial(t *testing.T) {
	t.Parallel()
	users := backend(t, "users", jsonAnswer(`{"id":1}`))
	orders := backend(t, "orders", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(500) })
	p := plan(t, config.Aggregate{Backends: []config.AggregateBackend{
		{Upstream: "users", Path: "/u", As: "user"},
		{Upstream: "orders", Path: "/o", As: "orders", Optional: true},
		{Upstream: "users", Path: "/after-orders", As: "skipped", After: "orders", Optional: true},
	}}, map[string]*upstream.Pool{"users": users, "orders": orders})
	w := serve(p, context.Background(), "GET", "/")
	if w.Code != 200 || w.Header().Get(PartialHeader) != "true" {
		t.Fatalf("status %d, %s %q; want 200 and true", w.Code, PartialHeader, w.Header().Get(PartialHeader))
	}
	got := decodeBody(t, w)
	if _, ok := got["orders"]; ok {
		t.Errorf("failed optional backend's key present: %v", got)
	}
	if _, ok := got["skipped"]; ok {
		t.Errorf("backend after a failed one present: %v", got)
	}
	if got["user"] == nil {
		t.Errorf("required backend's key missing: %v", got)
	}
}

// Every way a backend answer can be unusable fails a required backend with
// 502 problem+json naming it.
func TestBadAnswersAreBackendErrors(t *testing.T) {
	t.Parallel()
	huge := `{"x":"` + strings.Repeat("a", 2048) + `"}`
	cases := []struct {
		desc   string
		h      http.HandlerFunc
		detail string
	}{
		{"invalid JSON", jsonAnswer(`{"a":`), "invalid JSON"},
		{"trailing data", jsonAnswer(`{"a":1} {"b":2}`), "data after the value"},
		{"not JSON type", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html")
			_, _ = w.Write([]byte("<html>"))
		}, "not JSON"},
		{"scalar", jsonAnswer(`42`), "not an object or array"},
		{"array at top level", jsonAnswer(`[1,2]`), "only be merged under `as`"},
		{"status 500", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(500) }, "answered 500"},
		{"status 404", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(404) }, "answered 404"},
		{"oversized", jsonAnswer(huge), "larger than 1024 bytes"},
		{"connection dropped", func(w http.ResponseWriter, r *http.Request) {
			hj, _ := w.(http.Hijacker)
			c, _, _ := hj.Hijack()
			_ = c.Close()
		}, "EOF"},
	}
	for _, tc := range cases {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			bad := backend(t, "bad", tc.h)
			p := plan(t, config.Aggregate{MaxBackendBytes: 1024, Backends: []config.AggregateBackend{
				{Upstream: "bad", Path: "/x"},
			}}, map[string]*upstream.Pool{"bad": bad})
			w := serve(p, context.Background(), "GET", "/")
			if w.Code != 502 {
				t.Fatalf("status %d; want 502 (body %s)", w.Code, w.Body)
			}
			if ct := w.Header().Get("Content-Type"); ct != "application/problem+json" {
				t.Errorf("Content-Type %q; want application/problem+json", ct)
			}
			body := w.Body.String()
			if !strings.Contains(body, "backends[0] (upstream bad)") || !strings.Contains(body, tc.detail) {
				t.Errorf("body %s; want it to name backends[0] (upstream bad) and say %q", body, tc.detail)
			}
		})
	}
}

func TestRequiredFailureCancelsSiblings(t *testing.T) {
	t.Parallel()
	seen := make(chan string, 2)
	// The failure comes once the slow sibling has its request: the fan-out
	// starts both at once, and a failure that came first would cancel the
	// sibling before it was sent, leaving nothing to observe.
	arrived := make(chan struct{})
	var once sync.Once
	slow := backend(t, "slow", func(w http.ResponseWriter, r *http.Request) {
		once.Do(func() { close(arrived) })
		waitCancelled(seen, "slow")(w, r)
	})
	failing := backend(t, "failing", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-arrived:
		case <-time.After(10 * time.Second):
		}
		w.WriteHeader(503)
	})
	p := plan(t, config.Aggregate{Backends: []config.AggregateBackend{
		{Upstream: "slow", Path: "/s", As: "slow", Optional: true},
		{Upstream: "failing", Path: "/f", As: "critical"},
	}}, map[string]*upstream.Pool{"slow": slow, "failing": failing})
	w := serve(p, context.Background(), "GET", "/")
	if w.Code != 502 || !strings.Contains(w.Body.String(), "critical (upstream failing)") {
		t.Fatalf("status %d body %s; want 502 naming critical", w.Code, w.Body)
	}
	select {
	case name := <-seen:
		if name != "slow" {
			t.Errorf("cancelled %q; want slow", name)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the slow sibling never saw its request cancelled")
	}
}

func TestDeadlineIs504AndCancels(t *testing.T) {
	t.Parallel()
	seen := make(chan string, 1)
	slow := backend(t, "slow", waitCancelled(seen, "slow"))
	p := plan(t, config.Aggregate{Timeout: config.Duration(500 * time.Millisecond), Backends: []config.AggregateBackend{
		{Upstream: "slow", Path: "/s", As: "slow"},
	}}, map[string]*upstream.Pool{"slow": slow})
	w := serve(p, context.Background(), "GET", "/")
	if w.Code != 504 || !strings.Contains(w.Body.String(), "urn:portunus:problem:upstream-timeout") || !strings.Contains(w.Body.String(), "slow (upstream slow)") {
		t.Fatalf("status %d body %s; want 504 upstream-timeout naming slow", w.Code, w.Body)
	}
	select {
	case <-seen:
	case <-time.After(10 * time.Second):
		t.Fatal("the slow backend never saw its request cancelled at the deadline")
	}
}

func TestClientLeavingCancels(t *testing.T) {
	t.Parallel()
	arrived := make(chan struct{})
	seen := make(chan string, 1)
	slow := backend(t, "slow", func(w http.ResponseWriter, r *http.Request) {
		close(arrived)
		waitCancelled(seen, "slow")(w, r)
	})
	p := plan(t, config.Aggregate{Backends: []config.AggregateBackend{{Upstream: "slow", Path: "/s"}}},
		map[string]*upstream.Pool{"slow": slow})
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		<-arrived
		cancel()
	}()
	w := serve(p, ctx, "GET", "/")
	if w.Code != StatusClientClosedRequest {
		t.Errorf("status %d; want %d recorded for a client that left", w.Code, StatusClientClosedRequest)
	}
	select {
	case <-seen:
	case <-time.After(10 * time.Second):
		t.Fatal("the backend never saw its request cancelled after the client left")
	}
}

func TestOnlyGetAndHead(t *testing.T) {
	t.Parallel()
	a := backend(t, "a", jsonAnswer(`{"a":1}`))
	p := plan(t, config.Aggregate{Backends: []config.AggregateBackend{{Upstream: "a", Path: "/"}}}, map[string]*upstream.Pool{"a": a})
	if w := serve(p, context.Background(), "POST", "/"); w.Code != 405 || w.Header().Get("Allow") != "GET, HEAD" {
		t.Errorf("POST: status %d Allow %q; want 405 and GET, HEAD", w.Code, w.Header().Get("Allow"))
	}
	w := serve(p, context.Background(), "HEAD", "/")
	if w.Code != 200 || w.Body.Len() != 0 || w.Header().Get("Content-Length") != "8" {
		t.Errorf("HEAD: status %d body %q Content-Length %q; want 200, no body, 8", w.Code, w.Body, w.Header().Get("Content-Length"))
	}
}

func TestCompileErrors(t *testing.T) {
	t.Parallel()
	a := backend(t, "a", jsonAnswer(`{}`))
	pools := map[string]*upstream.Pool{"a": a}
	cases := []struct {
		desc string
		c    config.Aggregate
		want string
	}{
		{"unknown upstream", config.Aggregate{Backends: []config.AggregateBackend{{Upstream: "zz", Path: "/"}}}, "backends[0].upstream"},
		{"unknown placeholder", config.Aggregate{Backends: []config.AggregateBackend{{Upstream: "a", Path: "/{nope}"}}}, "backends[0].path: unknown placeholder {nope}"},
		{"field of a backend not after", config.Aggregate{Backends: []config.AggregateBackend{{Upstream: "a", Path: "/", As: "x"}, {Upstream: "a", Path: "/{x.id}"}}}, "backends[1].path"},
		{"loop", config.Aggregate{Backends: []config.AggregateBackend{{Upstream: "a", Path: "/", As: "x", After: "y"}, {Upstream: "a", Path: "/", As: "y", After: "x"}}}, "loops"},
		{"bad rename", config.Aggregate{Backends: []config.AggregateBackend{{Upstream: "a", Path: "/", Fields: []string{"a:"}}}}, "backends[0].fields"},
	}
	for _, tc := range cases {
		_, err := Compile(&tc.c, Options{Pools: pools})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v; want an error containing %q", tc.desc, err, tc.want)
		}
	}
}

func TestRouteTimeoutCapsDeadline(t *testing.T) {
	t.Parallel()
	a := backend(t, "a", jsonAnswer(`{}`))
	pools := map[string]*upstream.Pool{"a": a}
	c := config.Aggregate{Backends: []config.AggregateBackend{{Upstream: "a", Path: "/"}}}
	p, _ := Compile(&c, Options{Pools: pools})
	if p.Timeout() != DefaultTimeout || p.MaxBackendBytes() != DefaultMaxBackendBytes {
		t.Errorf("defaults: timeout %v max %d; want %v and %d", p.Timeout(), p.MaxBackendBytes(), DefaultTimeout, DefaultMaxBackendBytes)
	}
	p, _ = Compile(&c, Options{Pools: pools, RouteTimeout: time.Second})
	if p.Timeout() != time.Second {
		t.Errorf("with route timeout 1s: %v; want 1s", p.Timeout())
	}
}
