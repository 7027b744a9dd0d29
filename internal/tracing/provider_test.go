package tracing

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/portunus-gw/portunus/internal/config"
	"github.com/portunus-gw/portunus/internal/pipeline"
	"github.com/portunus-gw/portunus/internal/tracing/tracingtest"
)

func TestNewRejects(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		cfg  config.Tracing
	}{
		{"no endpoint", config.Tracing{}},
		{"not a URL scheme we know", config.Tracing{OTLPEndpoint: "ftp://collector:4318"}},
		{"no host", config.Tracing{OTLPEndpoint: "http://"}},
		{"unknown protocol", config.Tracing{OTLPEndpoint: "http://collector:4318", Protocol: "udp"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if p, err := New(tc.cfg); err == nil {
				_ = p.Close()
				t.Errorf("New(%+v): got no error; want one", tc.cfg)
			}
		})
	}
}

// TestProviderExport drives the span API directly against both receivers
// (the gateway's tests cover the wiring).
func TestProviderExport(t *testing.T) {
	t.Parallel()
	for _, protocol := range []string{"http", "grpc"} {
		t.Run(protocol, func(t *testing.T) {
			t.Parallel()
			rcv := tracingtest.NewHTTP(t)
			if protocol == "grpc" {
				rcv = tracingtest.NewGRPC(t)
			}
			one := 1.0
			p, err := New(config.Tracing{OTLPEndpoint: rcv.Endpoint, Protocol: protocol, SampleRatio: &one})
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			r := httptest.NewRequest("POST", "http://api.example.com:8080/v1/x?q=1", nil)
			r, srv := p.StartServer(r, time.Now())
			if !srv.Sampled() {
				t.Fatal("got an unsampled request at ratio 1; want sampled")
			}
			out := http.Header{}
			_, cl := p.StartClient(r.Context(), out, r.Method, "up", "10.0.0.1:9000")
			cl.Result(503, nil)
			cl.End()
			st := &pipeline.State{RouteName: "x", Path: "/v1/x", RequestID: "rid"}
			srv.End(r, st, 502)
			if err := p.ForceFlush(context.Background()); err != nil {
				t.Fatal(err)
			}
			spans := rcv.Spans()
			if len(spans) != 2 {
				t.Fatalf("got %d spans; want 2", len(spans))
			}
			byKind := map[string]tracingtest.Span{}
			for _, s := range spans {
				byKind[s.Kind] = s
			}
			sv, c := byKind["server"], byKind["client"]
			if c.ParentSpanID != sv.SpanID || c.TraceID != sv.TraceID {
				t.Errorf("client span %s/%s parent %s; want child of server %s/%s", c.TraceID, c.SpanID, c.ParentSpanID, sv.TraceID, sv.SpanID)
			}
			if want := "00-" + sv.TraceID + "-" + c.SpanID + "-01"; out.Get("Traceparent") != want {
				t.Errorf("injected traceparent %q; want %q", out.Get("Traceparent"), want)
			}
			if sv.Name != "POST x" || !sv.Error || sv.Attrs["server.port"] != int64(8080) || sv.Attrs["url.path"] != "/v1/x" {
				t.Errorf("server span %q error %v attrs %v; want \"POST x\", error, port 8080, path /v1/x", sv.Name, sv.Error, sv.Attrs)
			}
			if !c.Error || c.Attrs["http.response.status_code"] != int64(503) || c.Attrs["server.port"] != int64(9000) {
				t.Errorf("client span error %v attrs %v; want error, status 503, port 9000", c.Error, c.Attrs)
			}
			if tid, sid := srv.IDs(); tid != sv.TraceID || sid != sv.SpanID {
				t.Errorf("IDs() = %s %s; want %s %s", tid, sid, sv.TraceID, sv.SpanID)
			}
		})
	}
}

func benchProvider(b *testing.B, ratio float64) *Provider {
	rcv := tracingtest.NewHTTP(b)
	p, err := New(config.Tracing{OTLPEndpoint: rcv.Endpoint, SampleRatio: &ratio})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = p.Close() })
	return p
}

// BenchmarkStartServerUnsampled is the tracing cost of a sampled-out
// request: with an unsampled traceparent, and without one at ratio 0.
func BenchmarkStartServerUnsampled(b *testing.B) {
	for _, tc := range []struct {
		name   string
		parent []string
	}{
		{"unsampled-parent", []string{"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00"}},
		{"root-ratio0", nil},
	} {
		b.Run(tc.name, func(b *testing.B) {
			p := benchProvider(b, 0)
			r := httptest.NewRequest("GET", "/", nil)
			b.ReportAllocs()
			for b.Loop() {
				if tc.parent != nil {
					r.Header["Traceparent"] = tc.parent
				} else {
					delete(r.Header, "Traceparent")
				}
				_, s := p.StartServer(r, time.Time{})
				if s.Sampled() {
					b.Fatal("sampled")
				}
			}
		})
	}
}
