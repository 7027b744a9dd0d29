// Package tracing is the gateway's OpenTelemetry tracing: a TracerProvider
// exporting over OTLP (HTTP or gRPC), one SERVER span per request and one
// CLIENT span per upstream attempt, with W3C trace context and baggage
// propagated to upstreams.
//
// Cost model. Tracing off means no Provider at all: callers hold a nil
// *Provider and check it, nothing else. With tracing on, the sampling
// decision is taken here, before any OpenTelemetry object exists:
//
//   - an incoming traceparent with sampled=0 is forwarded untouched (no
//     span, no new parent id; W3C Trace Context lets a participant that
//     records nothing pass the header on as it came, and a parent id naming
//     a span that is never exported would only break the chain);
//   - a request without a valid traceparent gets fresh trace and span ids;
//     if the ratio sampler declines that trace id, the upstream receives a
//     traceparent with sampled=0 so that the services behind the gateway
//     follow the gateway's head decision instead of starting traces of
//     their own (what the OpenTelemetry SDK itself propagates);
//   - only sampled requests create spans and contexts.
//
// The sampler installed in the SDK is ParentBased(TraceIDRatioBased(ratio));
// the pre-check asks that very sampler, and the id generator hands the SDK
// the trace id the pre-check decided on, so both always agree.
package tracing
