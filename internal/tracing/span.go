package tracing

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strconv"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/portunus-gw/portunus/internal/pipeline"
)

// Server is the SERVER span of one request. The zero value is an unsampled
// request: every method is then a no-op.
type Server struct{ span trace.Span }

// Sampled reports whether the request is recorded.
func (s Server) Sampled() bool { return s.span != nil }

// IDs returns the hex trace and span ids of the server span, or "" "" when
// the request is not sampled (for the access log).
func (s Server) IDs() (traceID, spanID string) {
	if s.span == nil {
		return "", ""
	}
	sc := s.span.SpanContext()
	return sc.TraceID().String(), sc.SpanID().String()
}

// Header names as net/http canonicalizes them.
const (
	hdrTraceparent = "Traceparent"
	hdrTracestate  = "Tracestate"
)

// StartServer decides whether r is sampled (see the package doc) and, if
// it is, starts its SERVER span at start and returns r with the span in
// its context. Unsampled, it returns r itself and allocates nothing beyond
// the traceparent it may add to r.Header for a request that had none.
// Call it before anything reads r's context for the span.
func (p *Provider) StartServer(r *http.Request, start time.Time) (*http.Request, Server) {
	ctx := r.Context()
	if tp := r.Header[hdrTraceparent]; len(tp) > 0 {
		if _, _, flags, ok := parseTraceparent(tp[0]); ok {
			if flags&1 == 0 {
				// Not sampled upstream of us: ParentBased says no;
				// both headers go on untouched.
				return r, Server{}
			}
			ctx = p.prop.Extract(ctx, propagation.HeaderCarrier(r.Header))
			return p.startServer(ctx, r, start)
		}
	}
	// No valid parent: a new trace. Whatever tracestate came with an
	// invalid traceparent describes another trace (W3C: discard it).
	delete(r.Header, hdrTracestate)
	tid := newTraceID()
	res := p.sampler.ShouldSample(sdktrace.SamplingParameters{
		ParentContext: context.Background(), TraceID: tid, Kind: trace.SpanKindServer,
	})
	if res.Decision != sdktrace.RecordAndSample {
		r.Header[hdrTraceparent] = []string{formatTraceparent(tid, newSpanID(), 0)}
		return r, Server{}
	}
	// The client span will inject its own traceparent; until then none
	// from the client may linger.
	delete(r.Header, hdrTraceparent)
	// Baggage is independent of the trace: keep the client's.
	ctx = p.prop.Extract(ctx, propagation.HeaderCarrier{"Baggage": r.Header["Baggage"]})
	ctx = context.WithValue(ctx, traceIDKey{}, tid)
	return p.startServer(ctx, r, start)
}

func (p *Provider) startServer(ctx context.Context, r *http.Request, start time.Time) (*http.Request, Server) {
	ctx, span := p.tracer.Start(ctx, spanMethod(r.Method),
		trace.WithSpanKind(trace.SpanKindServer), trace.WithTimestamp(start))
	if !span.IsRecording() {
		// Cannot happen with the pre-check in agreement with the
		// sampler; stay correct if it ever does.
		return r, Server{}
	}
	return r.WithContext(ctx), Server{span: span}
}

// End names the span after the route, records the request's attributes
// (OpenTelemetry HTTP semantic conventions) and ends it. status is the
// status sent to the client.
func (s Server) End(r *http.Request, st *pipeline.State, status int) {
	if s.span == nil {
		return
	}
	method := spanMethod(r.Method)
	if st.RouteName != "" {
		s.span.SetName(method + " " + st.RouteName)
	}
	path := st.Path
	if path == "" {
		path = r.URL.EscapedPath() // never the query
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	attrs := make([]attribute.KeyValue, 0, 16)
	attrs = append(attrs,
		attribute.String("http.request.method", method),
		attribute.String("url.path", path),
		attribute.String("url.scheme", scheme),
		attribute.Int("http.response.status_code", status),
		attribute.String("network.protocol.version", protoVersion(r)),
		attribute.String("portunus.request_id", st.RequestID),
	)
	if method != r.Method {
		attrs = append(attrs, attribute.String("http.request.method_original", r.Method))
	}
	if st.RouteName != "" {
		attrs = append(attrs, attribute.String("http.route", st.RouteName))
	}
	if host, port := splitHostPort(r.Host); host != "" {
		attrs = append(attrs, attribute.String("server.address", host))
		if port > 0 {
			attrs = append(attrs, attribute.Int("server.port", port))
		}
	}
	if st.ClientIP.IsValid() {
		attrs = append(attrs, attribute.String("client.address", st.ClientIP.String()))
	}
	if ua := r.UserAgent(); ua != "" {
		attrs = append(attrs, attribute.String("user_agent.original", ua))
	}
	if st.Upstream != "" {
		attrs = append(attrs, attribute.String("portunus.upstream", st.Upstream))
	}
	if st.Consumer != "" {
		attrs = append(attrs, attribute.String("portunus.consumer", st.Consumer))
	}
	if st.ErrorCode != "" {
		attrs = append(attrs, attribute.String("error.type", st.ErrorCode))
	} else if status >= 500 {
		attrs = append(attrs, attribute.String("error.type", strconv.Itoa(status)))
	}
	s.span.SetAttributes(attrs...)
	if status >= 500 {
		s.span.SetStatus(codes.Error, st.ErrorCode)
	}
	s.span.End()
}

// Client is the CLIENT span of one upstream attempt; the zero value (the
// request is not sampled) makes every method a no-op.
type Client struct{ span trace.Span }

// StartClient starts the CLIENT span of one upstream attempt as a child of
// the server span in ctx and injects its traceparent (and tracestate,
// baggage) into the outbound header h, which must be the attempt's own map
// (values are replaced, never written through). When ctx holds no recorded
// span it returns ctx and the zero Client: h keeps the headers the client
// sent, untouched. hostport is the target's "host:port".
func (p *Provider) StartClient(ctx context.Context, h http.Header, method, upstreamName, hostport string) (context.Context, Client) {
	if !trace.SpanFromContext(ctx).IsRecording() {
		return ctx, Client{}
	}
	ctx, span := p.tracer.Start(ctx, spanMethod(method), trace.WithSpanKind(trace.SpanKindClient))
	attrs := make([]attribute.KeyValue, 0, 4)
	attrs = append(attrs,
		attribute.String("http.request.method", spanMethod(method)),
		attribute.String("portunus.upstream", upstreamName),
	)
	if host, port := splitHostPort(hostport); host != "" {
		attrs = append(attrs, attribute.String("server.address", host))
		if port > 0 {
			attrs = append(attrs, attribute.Int("server.port", port))
		}
	}
	span.SetAttributes(attrs...)
	// Our span context replaces the client's: tracestate is re-emitted
	// from it (the SDK carries the parent's entries over).
	delete(h, hdrTracestate)
	p.prop.Inject(ctx, propagation.HeaderCarrier(h))
	return ctx, Client{span: span}
}

// Result records how the attempt ended: the upstream's status (0 when
// there was no response) or the transport error.
func (c Client) Result(status int, err error) {
	if c.span == nil {
		return
	}
	if status > 0 {
		c.span.SetAttributes(attribute.Int("http.response.status_code", status))
	}
	switch {
	case err != nil:
		c.span.SetAttributes(attribute.String("error.type", errorType(err)))
		c.span.SetStatus(codes.Error, err.Error())
	case status >= 400:
		c.span.SetAttributes(attribute.String("error.type", strconv.Itoa(status)))
		c.span.SetStatus(codes.Error, "")
	}
}

// End ends the attempt's span.
func (c Client) End() {
	if c.span != nil {
		c.span.End()
	}
}

func errorType(err error) string {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return "timeout"
	}
	return "transport"
}

// spanMethod bounds the method's cardinality as the conventions ask:
// unknown methods read "_OTHER".
func spanMethod(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions, http.MethodConnect, http.MethodTrace:
		return m
	}
	return "_OTHER"
}

func protoVersion(r *http.Request) string {
	switch r.ProtoMajor {
	case 2:
		return "2"
	case 3:
		return "3"
	}
	if r.ProtoMinor == 0 {
		return "1.0"
	}
	return "1.1"
}

// splitHostPort splits "host[:port]"; port 0 when absent.
func splitHostPort(hp string) (string, int) {
	host, ps, err := net.SplitHostPort(hp)
	if err != nil {
		return hp, 0
	}
	port, _ := strconv.Atoi(ps)
	return host, port
}
