package tracing

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/portunus-gw/portunus/internal/config"
)

// DefaultServiceName is the service.name of exported spans unless the
// OTEL_SERVICE_NAME environment variable says otherwise.
const DefaultServiceName = "portunus"

// Bounds on export: one OTLP call, and the final flush when a provider is
// dropped (reload) or the process stops.
const (
	exportTimeout   = 10 * time.Second
	shutdownTimeout = 5 * time.Second
)

// Provider is one tracing configuration: the SDK's TracerProvider with a
// batch span processor and an OTLP exporter, its sampler and the W3C
// propagators. A nil *Provider means tracing is off.
type Provider struct {
	tp      *sdktrace.TracerProvider
	tracer  trace.Tracer
	sampler sdktrace.Sampler
	prop    propagation.TextMapPropagator
}

// New builds the provider cfg describes. cfg.OTLPEndpoint must be set (an
// empty endpoint means tracing off: do not call New). The exporter does not
// connect until it has spans to send, so New does not fail on an
// unreachable collector.
func New(cfg config.Tracing) (*Provider, error) {
	if cfg.OTLPEndpoint == "" {
		return nil, errors.New("tracing: no otlp_endpoint")
	}
	u, err := url.Parse(cfg.OTLPEndpoint)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("tracing: otlp_endpoint %q is not an http:// or https:// URL", cfg.OTLPEndpoint)
	}
	var exp sdktrace.SpanExporter
	switch cfg.Protocol {
	case "", "http":
		// The endpoint is the collector's base URL, as
		// OTEL_EXPORTER_OTLP_ENDPOINT is: the signal path is added
		// unless the URL names a path of its own.
		ep := *u
		if ep.Path == "" || ep.Path == "/" {
			ep.Path = "/v1/traces"
		}
		// WithEndpointURL picks plain HTTP for http:// and TLS for https://.
		exp, err = otlptracehttp.New(context.Background(),
			otlptracehttp.WithEndpointURL(ep.String()),
			otlptracehttp.WithTimeout(exportTimeout))
	case "grpc":
		// http:// = plaintext (insecure) connection, https:// = TLS
		// with the system roots.
		exp, err = otlptracegrpc.New(context.Background(),
			otlptracegrpc.WithEndpointURL(u.String()),
			otlptracegrpc.WithTimeout(exportTimeout))
	default:
		return nil, fmt.Errorf("tracing: protocol %q (want http or grpc)", cfg.Protocol)
	}
	if err != nil {
		return nil, fmt.Errorf("tracing: otlp exporter: %w", err)
	}
	ratio := 0.01
	if cfg.SampleRatio != nil {
		ratio = min(max(*cfg.SampleRatio, 0), 1)
	}
	sampler := sdktrace.ParentBased(sdktrace.TraceIDRatioBased(ratio))
	name := strings.TrimSpace(os.Getenv("OTEL_SERVICE_NAME"))
	if name == "" {
		name = DefaultServiceName
	}
	res := resource.NewSchemaless(
		attribute.String("service.name", name),
		attribute.String("telemetry.sdk.name", "opentelemetry"),
		attribute.String("telemetry.sdk.language", "go"),
	)
	tp := sdktrace.NewTracerProvider(
		// The batcher's queue is bounded (2048 spans by default); when
		// the collector cannot keep up, spans are dropped, never queued
		// without limit or waited for on the request path.
		sdktrace.WithBatcher(exp),
		sdktrace.WithSampler(sampler),
		sdktrace.WithIDGenerator(idGenerator{}),
		sdktrace.WithResource(res),
	)
	return &Provider{
		tp:      tp,
		tracer:  tp.Tracer("github.com/portunus-gw/portunus"),
		sampler: sampler,
		prop:    propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}),
	}, nil
}

// ForceFlush exports every span ended so far and waits for the exporter.
func (p *Provider) ForceFlush(ctx context.Context) error {
	if p == nil {
		return nil
	}
	return p.tp.ForceFlush(ctx)
}

// Close flushes what is queued (bounded by a few seconds) and stops the
// provider. Spans of requests still in flight that end afterwards are
// dropped. It is what internal/carry calls when a reload replaces the
// tracing config, and at shutdown.
func (p *Provider) Close() error {
	if p == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	return p.tp.Shutdown(ctx)
}

// traceIDKey carries, on the context given to Tracer.Start, the trace id
// the pre-check sampled, so that the SDK's sampler sees the same id.
type traceIDKey struct{}

// idGenerator gives root spans the pre-decided trace id and draws every
// other id from math/rand/v2 (lock-free).
type idGenerator struct{}

func (idGenerator) NewIDs(ctx context.Context) (trace.TraceID, trace.SpanID) {
	if t, ok := ctx.Value(traceIDKey{}).(trace.TraceID); ok && t.IsValid() {
		return t, newSpanID()
	}
	return newTraceID(), newSpanID()
}

func (idGenerator) NewSpanID(context.Context, trace.TraceID) trace.SpanID { return newSpanID() }
