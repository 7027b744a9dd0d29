package gateway

import (
	"net/http"
	"time"

	"github.com/portunus-gw/portunus/internal/admin"
	"github.com/portunus-gw/portunus/internal/pipeline"
	"github.com/portunus-gw/portunus/internal/problem"
	"github.com/portunus-gw/portunus/internal/proxy"
	"github.com/portunus-gw/portunus/internal/stats"
)

// statsTable resolves a snapshot's routes to their stats recorders once,
// when the snapshot is installed, so finish records by index: no lookup,
// lock or allocation per request.
type statsTable struct {
	snap *Snapshot
	// routes and upstreams are indexed by Route.Index; upstreams[i] is
	// the series of route i's upstream (nil for other actions).
	routes    []*stats.Recorder
	upstreams []*stats.Recorder
}

// installStats builds s's stats table. Swap calls it before making s
// current.
func (g *Gateway) installStats(s *Snapshot) {
	if s == nil || g.stats == nil {
		g.statsTab.Store(nil)
		return
	}
	n := 0
	for _, rt := range s.routes {
		n = max(n, rt.Index+1)
	}
	t := &statsTable{snap: s, routes: make([]*stats.Recorder, n), upstreams: make([]*stats.Recorder, n)}
	for _, rt := range s.routes {
		t.routes[rt.Index] = g.stats.Route(rt.Name)
		if rt.Upstream != nil {
			t.upstreams[rt.Index] = g.stats.Upstream(rt.Upstream.Name())
		}
	}
	g.statsTab.Store(t)
}

// recordStats adds one finished request to the ring. An error is a 5xx
// answer or any answer the gateway produced itself (a problem code), but
// not a client that went away. Requests no route took are not recorded:
// the ring is per route and per upstream.
func (g *Gateway) recordStats(snap *Snapshot, rt *Route, s *pipeline.State, status int, d time.Duration) {
	if rt == nil {
		return
	}
	t := g.statsTab.Load()
	if t == nil {
		return
	}
	var rrec, urec *stats.Recorder
	if t.snap == snap && rt.Index < len(t.routes) {
		rrec, urec = t.routes[rt.Index], t.upstreams[rt.Index]
	} else {
		// The request began on a snapshot a reload has since replaced:
		// look its series up by name (lock-free once they exist).
		rrec = g.stats.Route(rt.Name)
	}
	if s.Upstream != "" && (urec == nil || urec.Name() != s.Upstream) {
		urec = g.stats.Upstream(s.Upstream)
	}
	isErr := status >= 500 || (s.ErrorCode != "" && s.ErrorCode != proxy.CodeClientClosed)
	sec := s.Start.Add(d).Unix()
	rrec.Record(sec, d, isErr)
	if s.Upstream != "" {
		urec.Record(sec, s.UpstreamDuration, isErr)
	}
}

// Stats is the ring behind /api/v1/stats.
func (g *Gateway) Stats() *stats.Ring { return g.stats }

// serveStats answers GET /api/v1/stats?window=15m&step=1s. Series are
// listed for the current snapshot's routes and upstreams, and for any
// other series (a route a reload removed, "(other)") with traffic in the
// window.
func (rt *Runtime) serveStats(w http.ResponseWriter, r *http.Request) {
	window, step := stats.MaxWindow, time.Second
	q := r.URL.Query()
	if v := q.Get("window"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < time.Second || d > stats.MaxWindow || d%time.Second != 0 {
			badRequest(w, r, "window must be a whole number of seconds from 1s to 15m, e.g. 5m")
			return
		}
		window = d
	}
	if v := q.Get("step"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || !stats.ValidStep(d) {
			badRequest(w, r, "step must be one of 1s, 5s, 10s, 1m")
			return
		}
		step = d
	}
	if window < step || window%step != 0 {
		badRequest(w, r, "window must be a multiple of step")
		return
	}
	res := rt.gw.stats.Query(window, step)
	live := map[string]bool{}
	ups := map[string]bool{}
	if snap := rt.gw.Snapshot(); snap != nil {
		for _, r := range snap.routes {
			live[r.Name] = true
		}
		for name := range snap.upstreams {
			ups[name] = true
		}
	}
	res.Routes = keepSeries(res.Routes, live)
	res.Upstreams = keepSeries(res.Upstreams, ups)
	admin.WriteJSON(w, http.StatusOK, res)
}

func keepSeries(in []stats.Series, live map[string]bool) []stats.Series {
	out := in[:0]
	for _, s := range in {
		if live[s.Name] || s.Totals.Requests > 0 {
			out = append(out, s)
		}
	}
	return out
}

func badRequest(w http.ResponseWriter, r *http.Request, detail string) {
	problem.Write(w, r, problem.Problem{Code: problem.BadRequest, Detail: detail})
}
