package gateway

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/portunus-gw/portunus/internal/aggregate"
	"github.com/portunus-gw/portunus/internal/config"
	"github.com/portunus-gw/portunus/internal/headers"
	"github.com/portunus-gw/portunus/internal/pipeline"
)

// buildAggregate compiles a route's aggregate action. The route's
// request_headers apply to every backend call; its response_headers to the
// merged answer.
func buildAggregate(cfg *config.Config, i int, rc *config.Route, snap *Snapshot, rt *Route, params []string) (pipeline.Handler, config.ErrorList) {
	var errs config.ErrorList
	at := func(field string) string { return fmt.Sprintf("routes[%d].%s", i, field) }
	opts := aggregate.Options{Pools: snap.upstreams, Params: params}
	if rc.Timeout != nil {
		opts.RouteTimeout = rc.Timeout.D()
	}
	if rc.RequestHeaders != nil {
		rules, err := headers.CompileRules(rc.RequestHeaders, params)
		if err != nil {
			errs = append(errs, cfg.ErrorAt(at("request_headers"), "%v", err))
		}
		opts.RequestHeaders = rules
	}
	var respRules *headers.Rules
	if rc.ResponseHeaders != nil {
		rules, err := headers.CompileRules(rc.ResponseHeaders, params)
		if err != nil {
			errs = append(errs, cfg.ErrorAt(at("response_headers"), "%v", err))
		}
		respRules = rules
	}
	plan, err := aggregate.Compile(rc.Aggregate, opts)
	if err != nil {
		field, msg, _ := strings.Cut(err.Error(), ": ")
		errs = append(errs, cfg.ErrorAt(at("aggregate."+field), "%s", msg))
	}
	if len(errs) > 0 {
		return nil, errs
	}
	rt.aggregate = plan
	names := make([]string, 0, len(rc.Aggregate.Backends))
	for _, b := range rc.Aggregate.Backends {
		names = append(names, b.Upstream)
	}
	rt.Policies = append(rt.Policies, "aggregate "+strings.Join(names, ", "))
	h := plan.Handler()
	if respRules == nil {
		return h, nil
	}
	return func(w http.ResponseWriter, r *http.Request, s *pipeline.State) {
		respRules.Apply(w.Header(), r, s)
		h(w, r, s)
	}, nil
}
