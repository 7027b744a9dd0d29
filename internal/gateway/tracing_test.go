package gateway

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/portunus-gw/portunus/internal/tracing/tracingtest"
)

// tracedGateway starts a gateway exporting to rcv with the given protocol
// and ratio, an upstream that records what it receives, a route "users"
// to it and a route "broken" to a closed port. It returns the gateway,
// the upstream and the access log path.
func tracedGateway(t *testing.T, rcv *tracingtest.Receiver, protocol string, ratio float64) (*testGateway, *recordingUpstream, string) {
	t.Helper()
	up := newUpstream(t, "up")
	logPath := filepath.Join(t.TempDir(), "access.log")
	g := startGateway(t, fmt.Sprintf(`
listeners: [{ address: "127.0.0.1:0" }]
observability:
  access_log: { path: %q }
  tracing: { otlp_endpoint: %q, protocol: %s, sample_ratio: %g }
upstreams:
  - { name: up, targets: [{ url: %q }] }
  - { name: down, targets: [{ url: "http://%s" }] }
routes:
  - { name: users, match: { path_prefix: /users }, upstream: up }
  - { name: broken, match: { path_prefix: /broken }, upstream: down }
`, logPath, rcv.Endpoint, protocol, ratio, up.URL, freeAddr(t)))
	return g, up, logPath
}

// flushSpans exports what the gateway ended and returns what rcv has.
func flushSpans(t *testing.T, g *testGateway, rcv *tracingtest.Receiver) []tracingtest.Span {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := g.rt.FlushTraces(ctx); err != nil {
		t.Fatalf("FlushTraces: %v", err)
	}
	return rcv.Spans()
}

// spansOf returns the spans of the trace with trace id tid, by kind.
func spansOf(spans []tracingtest.Span, tid string) (server, client []tracingtest.Span) {
	for _, s := range spans {
		if s.TraceID != tid {
			continue
		}
		switch s.Kind {
		case "server":
			server = append(server, s)
		case "client":
			client = append(client, s)
		}
	}
	return server, client
}

// accessLogLines flushes the access log and decodes its lines.
func accessLogLines(t *testing.T, g *testGateway, path string) []map[string]any {
	t.Helper()
	if err := g.rt.Gateway().Snapshot().accessLog.Flush(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		if line == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("access log line is not JSON: %v: %s", err, line)
		}
		out = append(out, m)
	}
	return out
}

func TestTracingSpans(t *testing.T) {
	t.Parallel()
	for _, protocol := range []string{"http", "grpc"} {
		t.Run(protocol, func(t *testing.T) {
			t.Parallel()
			var rcv *tracingtest.Receiver
			if protocol == "grpc" {
				rcv = tracingtest.NewGRPC(t)
			} else {
				rcv = tracingtest.NewHTTP(t)
			}
			g, up, logPath := tracedGateway(t, rcv, protocol, 1)

			const incomingTrace, incomingSpan = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
			tests := []struct {
				name      string
				hdr       map[string]string
				wantTrace string // "" = a new trace
				wantState string // tracestate the upstream must receive
			}{
				{name: "no traceparent: new trace"},
				{
					name: "sampled traceparent: trace continued",
					hdr: map[string]string{
						"Traceparent": "00-" + incomingTrace + "-" + incomingSpan + "-01",
						"Tracestate":  "vendor=abc",
					},
					wantTrace: incomingTrace, wantState: "vendor=abc",
				},
				{
					name:      "invalid traceparent: new trace, tracestate dropped",
					hdr:       map[string]string{"Traceparent": "00-zz-00f067aa0ba902b7-01", "Tracestate": "vendor=abc"},
					wantState: "",
				},
			}
			for _, tc := range tests {
				resp := g.do("GET", "/users/7?secret=1", tc.hdr, "")
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					t.Fatalf("%s: got status %d; want 200", tc.name, resp.StatusCode)
				}
				reqID := resp.Header.Get("X-Request-Id")
				got := up.last(t)
				tp := ""
				if v := got.Header["Traceparent"]; len(v) == 1 {
					tp = v[0]
				}
				parts := strings.Split(tp, "-")
				if len(parts) != 4 || parts[0] != "00" || parts[3] != "01" {
					t.Fatalf("%s: upstream got traceparent %q; want a sampled version-00 one", tc.name, tp)
				}
				tid, clientSpanID := parts[1], parts[2]
				if tc.wantTrace != "" && tid != tc.wantTrace {
					t.Errorf("%s: upstream trace id %s; want the incoming %s", tc.name, tid, tc.wantTrace)
				}
				if tc.wantTrace == "" && tid == incomingTrace {
					t.Errorf("%s: upstream trace id is the invalid header's; want a new one", tc.name)
				}
				if st := strings.Join(got.Header["Tracestate"], ","); st != tc.wantState {
					t.Errorf("%s: upstream got tracestate %q; want %q", tc.name, st, tc.wantState)
				}

				server, client := spansOf(flushSpans(t, g, rcv), tid)
				if len(server) != 1 || len(client) != 1 {
					t.Fatalf("%s: got %d server and %d client spans in trace %s; want 1 and 1", tc.name, len(server), len(client), tid)
				}
				sv, cl := server[0], client[0]
				if cl.SpanID != clientSpanID {
					t.Errorf("%s: upstream's parent id %s; want the client span %s", tc.name, clientSpanID, cl.SpanID)
				}
				if cl.ParentSpanID != sv.SpanID {
					t.Errorf("%s: client span parent %s; want the server span %s", tc.name, cl.ParentSpanID, sv.SpanID)
				}
				wantParent := ""
				if tc.wantTrace != "" {
					wantParent = incomingSpan
				}
				if sv.ParentSpanID != wantParent {
					t.Errorf("%s: server span parent %q; want %q", tc.name, sv.ParentSpanID, wantParent)
				}
				if sv.Name != "GET users" || sv.Service != "portunus" {
					t.Errorf("%s: server span %q of service %q; want \"GET users\" of portunus", tc.name, sv.Name, sv.Service)
				}
				for k, want := range map[string]any{
					"http.request.method": "GET", "url.path": "/users/7", "http.route": "users",
					"http.response.status_code": int64(200), "server.address": "127.0.0.1",
					"client.address": "127.0.0.1", "portunus.request_id": reqID, "url.scheme": "http",
				} {
					if sv.Attrs[k] != want {
						t.Errorf("%s: server span %s = %v; want %v", tc.name, k, sv.Attrs[k], want)
					}
				}
				for k, want := range map[string]any{
					"http.request.method": "GET", "portunus.upstream": "up", "server.address": "127.0.0.1",
					"http.response.status_code": int64(200),
				} {
					if cl.Attrs[k] != want {
						t.Errorf("%s: client span %s = %v; want %v", tc.name, k, cl.Attrs[k], want)
					}
				}
				if _, ok := cl.Attrs["server.port"].(int64); !ok {
					t.Errorf("%s: client span server.port = %v; want the target's port", tc.name, cl.Attrs["server.port"])
				}
				if sv.Error || cl.Error {
					t.Errorf("%s: got error status on a 200 (server %v, client %v); want none", tc.name, sv.Error, cl.Error)
				}
				var line map[string]any
				for _, l := range accessLogLines(t, g, logPath) {
					if l["request_id"] == reqID {
						line = l
					}
				}
				if line["trace_id"] != sv.TraceID || line["span_id"] != sv.SpanID {
					t.Errorf("%s: access log trace_id %v span_id %v; want %s %s", tc.name, line["trace_id"], line["span_id"], sv.TraceID, sv.SpanID)
				}
			}

			// A failed upstream attempt: both spans carry the error.
			resp := g.do("GET", "/broken", nil, "")
			resp.Body.Close()
			if resp.StatusCode != http.StatusBadGateway {
				t.Fatalf("broken: got status %d; want 502", resp.StatusCode)
			}
			var sv, cl *tracingtest.Span
			spans := flushSpans(t, g, rcv)
			for i := range spans {
				if spans[i].Attrs["http.route"] == "broken" {
					sv = &spans[i]
				}
			}
			if sv == nil {
				t.Fatal("broken: no server span exported")
			}
			for i := range spans {
				if spans[i].Kind == "client" && spans[i].ParentSpanID == sv.SpanID {
					cl = &spans[i]
				}
			}
			if cl == nil {
				t.Fatal("broken: no client span under the server span")
			}
			if !sv.Error || sv.Attrs["http.response.status_code"] != int64(502) || sv.Attrs["error.type"] != "upstream-unavailable" {
				t.Errorf("broken: server span error %v status %v error.type %v; want error, 502, upstream-unavailable", sv.Error, sv.Attrs["http.response.status_code"], sv.Attrs["error.type"])
			}
			if !cl.Error || cl.Attrs["error.type"] == nil {
				t.Errorf("broken: client span error %v error.type %v; want an error", cl.Error, cl.Attrs["error.type"])
			}
		})
	}
}

// TestTracingUnsampled: nothing is exported for unsampled requests, and
// the upstream still receives a traceparent: the incoming one untouched,
// or, without one, a new trace marked not sampled.
func TestTracingUnsampled(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		ratio float64
		hdr   map[string]string
		want  string // exact traceparent upstream; "" = a new unsampled one
	}{
		{
			name: "unsampled traceparent at ratio 1", ratio: 1,
			hdr:  map[string]string{"Traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00", "Tracestate": "v=1"},
			want: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00",
		},
		{name: "no traceparent at ratio 0", ratio: 0},
		{
			name: "unsampled traceparent at ratio 0", ratio: 0,
			hdr:  map[string]string{"Traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00"},
			want: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			rcv := tracingtest.NewHTTP(t)
			g, up, logPath := tracedGateway(t, rcv, "http", tc.ratio)
			resp := g.do("GET", "/users/7", tc.hdr, "")
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			got := up.last(t)
			tp := strings.Join(got.Header["Traceparent"], ",")
			if tc.want != "" {
				if tp != tc.want {
					t.Errorf("upstream got traceparent %q; want %q untouched", tp, tc.want)
				}
				if st := strings.Join(got.Header["Tracestate"], ","); st != tc.hdr["Tracestate"] {
					t.Errorf("upstream got tracestate %q; want %q untouched", st, tc.hdr["Tracestate"])
				}
			} else if p := strings.Split(tp, "-"); len(p) != 4 || p[0] != "00" || len(p[1]) != 32 || len(p[2]) != 16 || p[3] != "00" {
				t.Errorf("upstream got traceparent %q; want a new version-00 one with sampled=0", tp)
			}
			if spans := flushSpans(t, g, rcv); len(spans) != 0 {
				t.Errorf("got %d spans exported; want none", len(spans))
			}
			lines := accessLogLines(t, g, logPath)
			if len(lines) != 1 || lines[0]["trace_id"] != "" || lines[0]["span_id"] != "" {
				t.Errorf("access log %v; want one line with empty trace_id and span_id", lines)
			}
		})
	}
}

// TestTracingOffForwardsHeaders: without tracing the trace headers are
// plain headers, forwarded as they came.
func TestTracingOffForwardsHeaders(t *testing.T) {
	t.Parallel()
	up := newUpstream(t, "up")
	g := startGateway(t, fmt.Sprintf(`
listeners: [{ address: "127.0.0.1:0" }]
observability: { access_log: { path: "off" } }
upstreams: [{ name: up, targets: [{ url: %q }] }]
routes: [{ name: users, match: { path_prefix: / }, upstream: up }]
`, up.URL))
	hdr := map[string]string{
		"Traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
		"Tracestate":  "vendor=abc",
		"Baggage":     "k=v",
	}
	resp := g.do("GET", "/x", hdr, "")
	resp.Body.Close()
	got := up.last(t)
	for k, want := range hdr {
		if v := strings.Join(got.Header[k], ","); v != want {
			t.Errorf("upstream got %s %q; want %q", k, v, want)
		}
	}
	if g.rt.Gateway().Snapshot().tracer != nil {
		t.Error("got a tracing provider with no otlp_endpoint; want none")
	}
}

// TestTracingReload: a reload keeps the provider while the tracing block
// is unchanged, replaces it when it changes, and drops it when tracing is
// turned off; requests keep being traced (or not) accordingly.
func TestTracingReload(t *testing.T) {
	t.Parallel()
	rcv := tracingtest.NewHTTP(t)
	up := newUpstream(t, "up")
	cfg := func(route string, ratio float64, endpoint string) string {
		return fmt.Sprintf(`
listeners: [{ address: "127.0.0.1:0" }]
observability:
  access_log: { path: "off" }
  tracing: { otlp_endpoint: %q, sample_ratio: %g }
upstreams: [{ name: up, targets: [{ url: %q }] }]
routes: [{ name: %s, match: { path_prefix: / }, upstream: up }]
`, endpoint, ratio, up.URL, route)
	}
	g := startGateway(t, cfg("a", 1, rcv.Endpoint))
	first := g.rt.Gateway().Snapshot().tracer
	if first == nil {
		t.Fatal("got no tracing provider with an otlp_endpoint; want one")
	}
	steps := []struct {
		name      string
		cfg       string
		wantSame  bool // the provider is the previous one
		wantNil   bool
		wantSpans int // server spans exported for one request
	}{
		{name: "route changed, tracing same", cfg: cfg("b", 1, rcv.Endpoint), wantSame: true, wantSpans: 1},
		{name: "ratio changed", cfg: cfg("b", 0, rcv.Endpoint), wantSpans: 0},
		{name: "tracing off", cfg: cfg("b", 0, ""), wantNil: true, wantSpans: 0},
	}
	prev := first
	for _, st := range steps {
		g.rewrite(st.cfg)
		if err := g.rt.Reload("test"); err != nil {
			t.Fatalf("%s: reload: %v", st.name, err)
		}
		cur := g.rt.Gateway().Snapshot().tracer
		switch {
		case st.wantNil && cur != nil:
			t.Errorf("%s: got a provider; want none", st.name)
		case !st.wantNil && st.wantSame && cur != prev:
			t.Errorf("%s: got a new provider; want the carried one", st.name)
		case !st.wantNil && !st.wantSame && (cur == nil || cur == prev):
			t.Errorf("%s: got provider %p (previous %p); want a new one", st.name, cur, prev)
		}
		before := 0
		for _, s := range rcv.Spans() {
			if s.Kind == "server" {
				before++
			}
		}
		resp := g.do("GET", "/x", nil, "")
		resp.Body.Close()
		after := 0
		for _, s := range flushSpans(t, g, rcv) {
			if s.Kind == "server" {
				after++
			}
		}
		if after-before != st.wantSpans {
			t.Errorf("%s: got %d server spans for one request; want %d", st.name, after-before, st.wantSpans)
		}
		prev = cur
	}
}
