package tracing

import (
	"context"
	"net/http"
	"testing"

	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

func TestParseTraceparent(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		in    string
		ok    bool
		flags byte
	}{
		{"sampled", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", true, 1},
		{"not sampled", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00", true, 0},
		{"random flag kept", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-03", true, 3},
		{"reserved flag bits v0", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-09", false, 0},
		{"future version extra field", "cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-what", true, 1},
		{"v0 extra field", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x", false, 0},
		{"version ff", "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", false, 0},
		{"upper case", "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01", false, 0},
		{"zero trace id", "00-00000000000000000000000000000000-00f067aa0ba902b7-01", false, 0},
		{"zero span id", "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01", false, 0},
		{"short", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7", false, 0},
		{"empty", "", false, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, _, flags, ok := parseTraceparent(tc.in)
			if ok != tc.ok || flags != tc.flags {
				t.Errorf("parseTraceparent(%q) = flags %d, ok %v; want %d, %v", tc.in, flags, ok, tc.flags, tc.ok)
			}
		})
	}
}

func TestFormatTraceparentRoundTrip(t *testing.T) {
	t.Parallel()
	for range 100 {
		tid, sid := newTraceID(), newSpanID()
		s := formatTraceparent(tid, sid, 1)
		gt, gs, fl, ok := parseTraceparent(s)
		if !ok || gt != tid || gs != sid || fl != 1 {
			t.Fatalf("round trip of %q: got %v %v %d %v; want %v %v 1 true", s, gt, gs, fl, ok, tid, sid)
		}
	}
}

// FuzzTraceparent pins that our allocation-free parser accepts exactly
// what the OpenTelemetry propagator extracts, with the same ids and flags:
// the sampling pre-check must never disagree with the SDK.
func FuzzTraceparent(f *testing.F) {
	for _, s := range []string{
		"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
		"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00",
		"01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-ff-x",
		"ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
		"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-",
		"00--00f067aa0ba902b7-01",
		"",
	} {
		f.Add(s)
	}
	prop := propagation.TraceContext{}
	f.Fuzz(func(t *testing.T, s string) {
		tid, sid, flags, ok := parseTraceparent(s)
		sc := trace.SpanContextFromContext(prop.Extract(context.Background(), propagation.HeaderCarrier(http.Header{"Traceparent": {s}})))
		if ok != sc.IsValid() {
			t.Fatalf("%q: ours ok=%v, propagator valid=%v", s, ok, sc.IsValid())
		}
		if ok && (sc.TraceID() != tid || sc.SpanID() != sid || byte(sc.TraceFlags()) != flags) {
			t.Fatalf("%q: ours %v %v %d; propagator %v %v %d", s, tid, sid, flags, sc.TraceID(), sc.SpanID(), sc.TraceFlags())
		}
	})
}

func BenchmarkParseTraceparent(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, _, _, ok := parseTraceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"); !ok {
			b.Fatal("not ok")
		}
	}
}
