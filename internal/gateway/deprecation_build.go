package gateway

import (
	"fmt"

	"github.com/portunus-gw/portunus/internal/carry"
	"github.com/portunus-gw/portunus/internal/config"
	"github.com/portunus-gw/portunus/internal/pipeline"
	"github.com/portunus-gw/portunus/internal/policy/deprecation"
	"github.com/portunus-gw/portunus/internal/telemetry"
)

// buildDeprecation compiles a route's `deprecated` policy into its two
// middlewares: the headers (first in the chain) and the count (after
// authentication). The per-consumer
// counter is carried across reloads while the route's name and its
// deprecation settings stay the same, so the admin API's counts survive a
// reload that changes something else.
func buildDeprecation(cfg *config.Config, i int, rc *config.Route, rt *Route, deps compileDeps) (headers, count pipeline.Middleware, errs config.ErrorList) {
	h, err := deprecation.Compile(*rc.Deprecated)
	if err != nil {
		return nil, nil, config.ErrorList{cfg.ErrorAt(fmt.Sprintf("routes[%d].deprecated", i), "%v", err)}
	}
	rec, err := carry.Get(deps.build, carry.Key("deprecated", rc.Name, *rc.Deprecated), func() (*telemetry.DeprecatedRecorder, error) {
		return deps.metrics.Deprecated(rc.Name), nil
	})
	if err != nil {
		return nil, nil, config.ErrorList{cfg.ErrorAt(fmt.Sprintf("routes[%d].deprecated", i), "%v", err)}
	}
	rt.deprecated = rec
	rt.Policies = append(rt.Policies, "deprecated (Deprecation "+h.Deprecation+")")
	return deprecation.HeadersMiddleware(h), deprecation.Count(rec), nil
}
