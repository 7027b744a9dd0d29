package gateway

import (
	"net/http"
	"net/netip"
	"net/url"

	"github.com/portunus-gw/portunus/internal/aggregate"
	"github.com/portunus-gw/portunus/internal/pipeline"
)

// ExplainAggregate is an aggregate route's plan for one request.
type ExplainAggregate struct {
	Timeout         string                  `json:"timeout"`
	MaxBackendBytes int64                   `json:"max_backend_bytes"`
	Steps           []aggregate.ExplainStep `json:"steps"`
}

func (rt *Route) explainAggregate(method string, u *url.URL, host string, hdr http.Header, peer netip.Addr, st *pipeline.State) *ExplainAction {
	r := &http.Request{Method: method, URL: u, Host: host, Header: hdr, RemoteAddr: netip.AddrPortFrom(peer, 0).String(), Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1}
	p := rt.aggregate
	return &ExplainAction{Kind: "aggregate", Aggregate: &ExplainAggregate{
		Timeout:         p.Timeout().String(),
		MaxBackendBytes: p.MaxBackendBytes(),
		Steps:           p.Explain(r, st),
	}}
}
