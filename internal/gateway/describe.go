package gateway

import (
	"sort"

	"github.com/portunus-gw/portunus/internal/config"
)

// RouteView is a compiled route as the admin API and golden tests see it.
type RouteView struct {
	Name                string       `json:"name"`
	Index               int          `json:"index"`
	Match               config.Match `json:"match"`
	Use                 []string     `json:"use,omitempty"`
	Policies            []string     `json:"policies"`
	Action              string       `json:"action"`
	Upstream            string       `json:"upstream,omitempty"`
	Timeout             string       `json:"timeout,omitempty"`
	MaxBodyBytes        string       `json:"max_body_bytes,omitempty"`
	AllowEncodedSlash   bool         `json:"allow_encoded_slash,omitempty"`
	AllowMethodOverride bool         `json:"allow_method_override,omitempty"`

	// Split is a weighted upstream list (Upstream is then its first
	// side); StickyBy keeps clients on one side.
	Split    []config.WeightedUpstream `json:"split,omitempty"`
	StickyBy string                    `json:"sticky_by,omitempty"`
}

// UpstreamView is a compiled upstream pool.
type UpstreamView struct {
	Name         string       `json:"name"`
	Balancer     string       `json:"balancer"`
	PreserveHost bool         `json:"preserve_host,omitempty"`
	Targets      []TargetView `json:"targets"`
}

// TargetView is one target of a pool.
type TargetView struct {
	URL    string `json:"url"`
	Weight int    `json:"weight"`
}

// View is a whole compiled snapshot, without secrets.
type View struct {
	Listeners []string       `json:"listeners"`
	Trusted   []string       `json:"trusted_proxies,omitempty"`
	Upstreams []UpstreamView `json:"upstreams"`
	Routes    []RouteView    `json:"routes"`
}

// View describes the snapshot.
func (s *Snapshot) View() View {
	var v View
	for _, l := range s.Config.Listeners {
		v.Listeners = append(v.Listeners, l.Address)
	}
	for _, p := range s.trusted {
		v.Trusted = append(v.Trusted, p.String())
	}
	for _, u := range s.Config.Upstreams {
		pool := s.upstreams[u.Name]
		if pool == nil {
			continue
		}
		uv := UpstreamView{Name: u.Name, Balancer: u.Balancer, PreserveHost: pool.PreserveHost()}
		for _, t := range pool.Targets() {
			uv.Targets = append(uv.Targets, TargetView{URL: t.URL.String(), Weight: t.Weight})
		}
		v.Upstreams = append(v.Upstreams, uv)
	}
	sort.Slice(v.Upstreams, func(i, j int) bool { return v.Upstreams[i].Name < v.Upstreams[j].Name })
	for _, rt := range s.routes {
		c := rt.Config
		rv := RouteView{
			Name: rt.Name, Index: rt.Index, Match: c.Match, Use: c.Use, Policies: rt.Policies,
			AllowEncodedSlash: rt.AllowEncodedSlash, AllowMethodOverride: rt.AllowMethodOverride,
		}
		switch {
		case c.Respond != nil:
			rv.Action = "respond"
		case rt.Upstream != nil:
			rv.Action = "proxy"
			rv.Upstream = rt.Upstream.Name()
			if c.Upstream.Split != nil {
				rv.Split, rv.StickyBy = c.Upstream.Split, c.StickyBy
			}
			if c.Timeout != nil {
				rv.Timeout = c.Timeout.String()
			}
		}
		if c.MaxBodyBytes != nil {
			rv.MaxBodyBytes = c.MaxBodyBytes.String()
		}
		v.Routes = append(v.Routes, rv)
	}
	return v
}
