package gateway

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/portunus-gw/portunus/internal/carry"
	"github.com/portunus-gw/portunus/internal/config"
	"github.com/portunus-gw/portunus/internal/pipeline"
	"github.com/portunus-gw/portunus/internal/proxy"
	"github.com/portunus-gw/portunus/internal/telemetry"
	"github.com/portunus-gw/portunus/internal/upstream"
	"github.com/portunus-gw/portunus/internal/upstream/discovery"
)

// upstreamAction is what a route's proxy action is made of beyond its
// primary pool: the sides of a traffic split and the mirror. nil on a
// route with one upstream and no mirror.
type upstreamAction struct {
	split *proxy.Split
	// pools and cfgs are per split side, in the split's order.
	pools []*upstream.Pool
	cfgs  []*proxy.Config
	// metrics per upstream name, for the sides of a split.
	metrics map[string]*telemetry.UpstreamMetrics
	mirror  *proxy.Mirror
}

// primaryUpstream is the upstream that stands for the route where one is
// needed (its first split side with a share of traffic).
func primaryUpstream(u *config.UpstreamRef) string {
	if u.Split == nil {
		return u.Name
	}
	for _, w := range u.Split {
		if w.Weight > 0 {
			return w.Name
		}
	}
	if len(u.Split) > 0 {
		return u.Split[0].Name
	}
	return ""
}

// buildUpstreamAction builds a proxy route's action from pc (the proxy
// config for the primary pool): hedging, the split over several
// upstreams, and the mirror around it all.
func buildUpstreamAction(cfg *config.Config, i int, rc *config.Route, snap *Snapshot, deps compileDeps, rt *Route, pc proxy.Config) (pipeline.Handler, config.ErrorList) {
	var errs config.ErrorList
	at := func(field string) string { return fmt.Sprintf("routes[%d].%s", i, field) }
	if h := rc.Hedge; h != nil && !h.After.IsZero() {
		pc.HedgeAfter, pc.HedgePercentile, pc.HedgeMin, pc.HedgeMax = h.After.Duration.D(), h.After.Percentile, h.Min.D(), h.Max
		*rt.proxyCfg = pc
	}
	var action pipeline.Handler
	if split := rc.Upstream.Split; split != nil {
		ua := &upstreamAction{metrics: map[string]*telemetry.UpstreamMetrics{}}
		sides := make([]proxy.SplitSide, 0, len(split))
		parts := make([]string, 0, len(split))
		for _, w := range split {
			pool := snap.upstreams[w.Name]
			if pool == nil {
				// Validation reports unknown names; a pool that failed
				// to build was reported with its upstream.
				return nil, errs
			}
			sc := pc
			sc.Pool = pool
			ua.pools = append(ua.pools, pool)
			ua.cfgs = append(ua.cfgs, &sc)
			sides = append(sides, proxy.SplitSide{Name: w.Name, Weight: w.Weight, Handler: proxy.New(sc)})
			parts = append(parts, w.Name+" "+strconv.Itoa(w.Weight))
			rt.metrics.PrepareUpstream(w.Name)
			um := deps.metrics.Upstream(w.Name)
			for _, t := range pool.Targets() {
				um.Prepare(t.String())
			}
			ua.metrics[w.Name] = um
		}
		sp, err := proxy.NewSplit(sides, rc.StickyBy)
		if err != nil {
			errs = append(errs, cfg.ErrorAt(at("upstream"), "%v", err))
			return nil, errs
		}
		ua.split = sp
		rt.up = ua
		action = sp.Serve
		desc := "split " + strings.Join(parts, " / ")
		if rc.StickyBy != "" {
			desc += " (sticky by " + rc.StickyBy + ")"
		}
		rt.Policies = append(rt.Policies, desc)
	} else {
		action = proxy.New(pc)
		rt.Policies = append(rt.Policies, "proxy to upstream "+pc.Pool.Name())
	}
	if pc.HedgeAfter > 0 {
		rt.Policies = append(rt.Policies, fmt.Sprintf("hedge after %s (max %d)", pc.HedgeAfter, max(pc.HedgeMax, 1)))
	} else if pc.HedgePercentile > 0 {
		rt.Policies = append(rt.Policies, fmt.Sprintf("hedge after %s of upstream latency, at least %s (max %d)",
			rc.Hedge.After, max(pc.HedgeMin, config.DefaultHedgeMin.D()), max(pc.HedgeMax, 1)))
	}
	if m := rc.Mirror; m != nil {
		shadow := snap.upstreams[m.Upstream]
		if shadow == nil {
			return nil, errs
		}
		mc := pc
		mc.Pool, mc.HedgeAfter, mc.HedgePercentile, mc.HedgeMax = shadow, 0, 0, 0
		mcfg := proxy.MirrorConfig{Proxy: mc, Percent: m.Percent}
		if rec := deps.metrics.Mirror(rt.Name, m.Upstream); rec != nil {
			mcfg.Observer = rec
		}
		mir := proxy.NewMirror(mcfg)
		if rt.up == nil {
			rt.up = &upstreamAction{}
		}
		rt.up.mirror = mir
		action = mir.Middleware()(action)
		rt.Policies = append(rt.Policies, "mirror "+strconv.FormatFloat(m.Percent, 'f', -1, 64)+"% to upstream "+m.Upstream)
	}
	return action, errs
}

// upstreamMetrics returns the metrics of the upstream that served a
// request (the split side it went to).
func (rt *Route) upstreamMetrics(name string) *telemetry.UpstreamMetrics {
	if rt.up != nil && rt.up.split != nil {
		return rt.up.metrics[name]
	}
	return rt.upMetrics
}

// explainSide returns the pool and proxy config that serve r on this
// route: the split side it would go to, or the route's one upstream.
func (rt *Route) explainSide(r *http.Request, s *pipeline.State) (*upstream.Pool, *proxy.Config) {
	if rt.up != nil && rt.up.split != nil {
		i := rt.up.split.Choose(r, s)
		return rt.up.pools[i], rt.up.cfgs[i]
	}
	return rt.Upstream, rt.proxyCfg
}

// explainUpstreamAction adds the route's split, mirror and hedge to an
// explanation.
func (rt *Route) explainUpstreamAction(a *ExplainAction) {
	c := rt.Config
	if c.Upstream != nil && c.Upstream.Split != nil {
		a.Split = c.Upstream.Split
		a.StickyBy = c.StickyBy
	}
	a.Mirror = c.Mirror
	a.Hedge = c.Hedge
}

// buildDiscovery gives upstream u (the i-th) its discoverer when it has
// DNS-named targets or dns_srv: carried across reloads with the pool
// (same config, same discoverer), closed when a reload drops it, and
// started by the runtime only once the snapshot is live.
func buildDiscovery(cfg *config.Config, i int, u config.Upstream, pool *upstream.Pool, snap *Snapshot, deps compileDeps) config.ErrorList {
	if !discovery.Needed(u) {
		return nil
	}
	d, err := carry.Get(deps.build, carry.Key("discovery", u.Name, u), func() (*discovery.Discoverer, error) {
		return discovery.New(pool, u, deps.log)
	})
	if err != nil {
		return config.ErrorList{cfg.ErrorAt(fmt.Sprintf("upstreams[%d].discovery", i), "%v", err)}
	}
	snap.discoverers = append(snap.discoverers, d)
	return nil
}
