// Package concurrency caps a route's in-flight requests, with a bounded
// FIFO queue and an optional adaptive limit. SKELETON: the API below is
// fixed; the implementation is being written.
package concurrency

import (
	"github.com/portunus-gw/portunus/internal/config"
	"github.com/portunus-gw/portunus/internal/pipeline"
)

// Limiter is one route's concurrency limiter. It is carried across
// reloads while its config is unchanged, so in-flight counts and the
// adaptive limit survive; Close releases it.
type Limiter struct{}

// New builds the limiter for route.
func New(c config.Concurrency, route string) (*Limiter, error) { return &Limiter{}, nil }

// Middleware returns the limiting middleware.
func (l *Limiter) Middleware() pipeline.Middleware {
	return func(next pipeline.Handler) pipeline.Handler { return next }
}

// Close stops background work (the adaptive controller).
func (l *Limiter) Close() error { return nil }
