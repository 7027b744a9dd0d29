package gateway

import (
	"net/http"
	"sort"

	"github.com/portunus-gw/portunus/internal/admin"
)

// DeprecationsAnswer is the body of GET /api/v1/deprecations.
type DeprecationsAnswer struct {
	Routes []DeprecatedRoute `json:"routes"`
}

// DeprecatedRoute is one deprecated route and who still calls it.
type DeprecatedRoute struct {
	Route  string `json:"route"`
	Since  string `json:"since,omitempty"`
	Sunset string `json:"sunset,omitempty"`
	Link   string `json:"link,omitempty"`
	// Consumers counts calls per consumer since this process started
	// (or since the route's deprecation settings last changed):
	// "anonymous" for unauthenticated calls, "other" beyond 100 consumers.
	Consumers map[string]int64 `json:"consumers"`
	Total     int64            `json:"total"`
}

func (rt *Runtime) serveDeprecations(w http.ResponseWriter, r *http.Request) {
	snap := rt.snapshotOr503(w, r)
	if snap == nil {
		return
	}
	ans := DeprecationsAnswer{Routes: []DeprecatedRoute{}}
	for _, route := range snap.routes {
		if route.deprecated == nil {
			continue
		}
		d := route.Config.Deprecated
		v := DeprecatedRoute{Route: route.Name, Since: d.Since, Sunset: d.Sunset, Link: d.Link, Consumers: route.deprecated.Counts()}
		for _, n := range v.Consumers {
			v.Total += n
		}
		ans.Routes = append(ans.Routes, v)
	}
	sort.Slice(ans.Routes, func(i, j int) bool { return ans.Routes[i].Route < ans.Routes[j].Route })
	admin.WriteJSON(w, http.StatusOK, ans)
}
