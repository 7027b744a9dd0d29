package gateway

import (
	"net/http"

	"github.com/portunus-gw/portunus/internal/pipeline"
	"github.com/portunus-gw/portunus/internal/policy/transform"
)

// explainTransforms applies the route's request transformations
// (rewrite.regex, request_transform) to r and st as the pipeline does just
// before the action, so explain shows the request the upstream really
// receives. The route compiled already, so the plan compiles here too;
// without one r is returned as it is.
func (rt *Route) explainTransforms(r *http.Request, st *pipeline.State) *http.Request {
	c := rt.Config
	if c.RequestTransform == nil && (c.Rewrite == nil || c.Rewrite.Regex == "") {
		return r
	}
	p, err := transform.CompileRequest(c.Rewrite, c.RequestTransform, pathParamNames(c.Match.Path))
	if err != nil || p == nil {
		return r
	}
	return p.Apply(r, st)
}
