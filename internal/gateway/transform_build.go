package gateway

import (
	"fmt"

	"github.com/portunus-gw/portunus/internal/config"
	"github.com/portunus-gw/portunus/internal/pipeline"
	"github.com/portunus-gw/portunus/internal/policy/transform"
)

// buildTransforms compiles a route's request and response transformations
// (rewrite.regex, request_transform, response_transform). They go right
// around the action: the request side edits what the action sends, the
// response side sees the action's answer before the cache stores it. Each
// step is listed in the route's policies, which explain shows.
func buildTransforms(cfg *config.Config, i int, rc *config.Route, rt *Route, params []string) ([]pipeline.Middleware, config.ErrorList) {
	var mws []pipeline.Middleware
	var errs config.ErrorList
	req, err := transform.CompileRequest(rc.Rewrite, rc.RequestTransform, params)
	if err != nil {
		errs = append(errs, cfg.ErrorAt(fmt.Sprintf("routes[%d].request_transform", i), "%v", err))
	} else if req != nil {
		mws = append(mws, req.Middleware())
		for _, d := range req.Describe() {
			rt.Policies = append(rt.Policies, "request transform: "+d)
		}
	}
	resp, err := transform.CompileResponse(rc.ResponseTransform)
	if err != nil {
		errs = append(errs, cfg.ErrorAt(fmt.Sprintf("routes[%d].response_transform", i), "%v", err))
	} else if resp != nil {
		mws = append(mws, resp.Middleware())
		for _, d := range resp.Describe() {
			rt.Policies = append(rt.Policies, "response transform: "+d)
		}
	}
	return mws, errs
}
