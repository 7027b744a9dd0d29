// Package ratelimit enforces a route's GCRA rate limits. SKELETON: the API
// below is fixed; the implementation is being written.
package ratelimit

import (
	"github.com/portunus-gw/portunus/internal/config"
	"github.com/portunus-gw/portunus/internal/pipeline"
	"github.com/portunus-gw/portunus/internal/store"
	"github.com/portunus-gw/portunus/internal/telemetry"
)

// Options configure one route's limits.
type Options struct {
	// Route is the route's name (part of every key).
	Route string
	// Limits are the route's rate_limits (defaults applied).
	Limits []config.RateLimit
	// Consumers are per-consumer overrides (consumers[].rate_limits) by
	// consumer name: they replace Limits for that consumer.
	Consumers map[string][]config.RateLimit
	// Store holds the buckets (memory or redis).
	Store store.Store
	// OnError is store.on_error: fail_open or fail_closed.
	OnError string
	// Metrics receives decisions; nil = none.
	Metrics *telemetry.Metrics
}

// New returns the middleware.
func New(o Options) (pipeline.Middleware, error) {
	return func(next pipeline.Handler) pipeline.Handler { return next }, nil
}
