// Package quota enforces calendar quotas (per day, week, month). SKELETON:
// the API below is fixed; the implementation is being written.
package quota

import (
	"time"

	"github.com/portunus-gw/portunus/internal/config"
	"github.com/portunus-gw/portunus/internal/pipeline"
	"github.com/portunus-gw/portunus/internal/store"
)

// Options configure one route's quotas.
type Options struct {
	Route   string
	Quotas  []config.Quota
	Store   store.Store
	OnError string
	// Now is the clock; nil = time.Now.
	Now func() time.Time
}

// New returns the middleware.
func New(o Options) (pipeline.Middleware, error) {
	return func(next pipeline.Handler) pipeline.Handler { return next }, nil
}
