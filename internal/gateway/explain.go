package gateway

import (
	"net/http"
	"net/netip"
	"net/url"
	"sort"
	"strings"

	"github.com/portunus-gw/portunus/internal/config"
	"github.com/portunus-gw/portunus/internal/pipeline"
	"github.com/portunus-gw/portunus/internal/proxy"
	"github.com/portunus-gw/portunus/internal/router"
)

// ExplainRequest is a request to explain, as a client would send it.
type ExplainRequest struct {
	Method   string
	URL      string // absolute URL (http://host/path?query) or origin-form path
	Header   http.Header
	ClientIP string // the TCP peer; default 127.0.0.1
}

// Explanation says what the gateway would do with a request.
type Explanation struct {
	Request struct {
		Method   string `json:"method"`
		Host     string `json:"host"`
		Path     string `json:"path"`
		Query    string `json:"query,omitempty"`
		ClientIP string `json:"client_ip"`
	} `json:"request"`
	// Outcome is "matched", "no-route", "method-not-allowed" or "invalid-path".
	Outcome  string            `json:"outcome"`
	Status   int               `json:"status,omitempty"`
	Detail   string            `json:"detail,omitempty"`
	Allow    []string          `json:"allow,omitempty"`
	Route    string            `json:"route,omitempty"`
	Params   map[string]string `json:"params,omitempty"`
	Policies []string          `json:"policies,omitempty"`
	Action   *ExplainAction    `json:"action,omitempty"`
}

// ExplainAction describes the route's action.
type ExplainAction struct {
	Kind     string   `json:"kind"`
	Upstream string   `json:"upstream,omitempty"`
	Targets  []string `json:"targets,omitempty"`
	// Split, StickyBy, Mirror and Hedge describe a route's traffic
	// split (Upstream is then the side this request goes to), its
	// mirror and its hedging (upstream_build.go).
	Split    []config.WeightedUpstream `json:"split,omitempty"`
	StickyBy string                    `json:"sticky_by,omitempty"`
	Mirror   *config.Mirror            `json:"mirror,omitempty"`
	Hedge    *config.Hedge             `json:"hedge,omitempty"`
	// UpstreamRequest is what the first target would receive, after the
	// route's request transforms (path regex, query edits, method).
	UpstreamRequest *ExplainUpstreamRequest `json:"upstream_request,omitempty"`
	Status          int                     `json:"status,omitempty"`
	// Aggregate is an aggregate route's plan: its backends in config
	// order with their stage (0 = at once) and, where it needs no earlier
	// answer, the URL this request would call.
	Aggregate *ExplainAggregate `json:"aggregate,omitempty"`
}

// ExplainUpstreamRequest is the request sent upstream.
type ExplainUpstreamRequest struct {
	Method  string              `json:"method"`
	URL     string              `json:"url"`
	Host    string              `json:"host"`
	Headers map[string][]string `json:"headers"`
}

// Explain matches req against the snapshot and describes the decision of
// every stage, without sending anything.
func (s *Snapshot) Explain(req ExplainRequest) *Explanation {
	ex := &Explanation{}
	method := strings.ToUpper(req.Method)
	if method == "" {
		method = http.MethodGet
	}
	u, err := url.Parse(req.URL)
	if err != nil {
		ex.Outcome, ex.Status, ex.Detail = "invalid-path", http.StatusBadRequest, err.Error()
		return ex
	}
	host := u.Host
	if h := req.Header.Get("Host"); h != "" {
		host = h
	}
	raw := u.EscapedPath()
	if raw == "" {
		raw = "/"
	}
	ex.Request.Method, ex.Request.Host, ex.Request.Query = method, host, u.RawQuery
	client := req.ClientIP
	if client == "" {
		client = "127.0.0.1"
	}
	peer, err := netip.ParseAddr(client)
	if err != nil {
		ex.Outcome, ex.Status, ex.Detail = "invalid-path", http.StatusBadRequest, "invalid client IP "+client
		return ex
	}
	peer = peer.Unmap()
	hdr := req.Header.Clone()
	if hdr == nil {
		hdr = http.Header{}
	}
	hdr.Del("Host")
	trusted := s.trusts(peer)
	st := &pipeline.State{RequestID: "explain", ClientIP: peer, PeerTrusted: trusted}
	if trusted {
		st.ClientIP = clientFromXFF(hdr["X-Forwarded-For"], peer, s)
	}
	ex.Request.ClientIP = st.ClientIP.String()

	path, encodedSep, err := router.Normalize(raw)
	if err != nil {
		ex.Outcome, ex.Status, ex.Detail = "invalid-path", http.StatusBadRequest, err.Error()
		return ex
	}
	ex.Request.Path = path
	st.Path = path
	override := ""
	if method == http.MethodPost {
		for _, k := range methodOverrideHeaders {
			if v := hdr[k]; len(v) > 0 {
				override = strings.ToUpper(strings.TrimSpace(v[0]))
				break
			}
		}
	}
	proxy.SanitizeInbound(hdr, trusted)
	rreq := &router.Request{Host: host, Path: path, Method: method, Header: hdr}
	if method == http.MethodOptions && hdr.Get("Origin") != "" && hdr.Get("Access-Control-Request-Method") != "" {
		rreq.Method = hdr.Get("Access-Control-Request-Method")
	}
	var m router.Match[*Route]
	res := router.NotFound
	if override != "" && validMethod(override) {
		rreq.Method = override
		if res = s.router.Match(rreq, &m); res == router.Matched && m.Value.AllowMethodOverride {
			method = override
		} else {
			rreq.Method, res = method, router.NotFound
		}
	}
	if res == router.NotFound {
		res = s.router.Match(rreq, &m)
	}
	switch res {
	case router.NotFound:
		ex.Outcome, ex.Status = "no-route", http.StatusNotFound
		return ex
	case router.MethodNotAllowed:
		ex.Outcome, ex.Status, ex.Allow = "method-not-allowed", http.StatusMethodNotAllowed, s.router.Allowed(rreq)
		return ex
	}
	rt := m.Value
	ex.Route = rt.Name
	if m.Params.Len() > 0 {
		ex.Params = map[string]string{}
		for i := 0; i < m.Params.Len(); i++ {
			p := m.Params.At(i)
			ex.Params[p.Name] = p.Value
		}
	}
	if encodedSep && !rt.AllowEncodedSlash {
		ex.Outcome, ex.Status, ex.Detail = "invalid-path", http.StatusBadRequest, "encoded '/', '\\' or NUL in the path is not allowed on this route"
		return ex
	}
	ex.Outcome = "matched"
	ex.Policies = append([]string(nil), rt.Policies...)
	st.RouteName, st.Params = rt.Name, m.Params
	switch {
	case rt.Config.Respond != nil:
		ex.Action = &ExplainAction{Kind: "respond", Status: rt.Config.Respond.Status}
	case rt.aggregate != nil:
		ex.Action = rt.explainAggregate(method, u, host, hdr, peer, st)
	case rt.Upstream != nil:
		r := &http.Request{Method: method, URL: u, Host: host, Header: hdr, RemoteAddr: netip.AddrPortFrom(peer, 0).String(), Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1}
		// The upstream request is shown after the request transforms,
		// which run just before the action: what the backend receives.
		r = rt.explainTransforms(r, st)
		// A split shows the side this request goes to.
		pool, pcfg := rt.explainSide(r, st)
		a := &ExplainAction{Kind: "proxy", Upstream: pool.Name()}
		rt.explainUpstreamAction(a)
		for _, t := range pool.Targets() {
			a.Targets = append(a.Targets, t.URL.String())
		}
		if out, err := proxy.Describe(pcfg, r, st); err == nil && out != nil {
			keys := make([]string, 0, len(out.Header))
			for k := range out.Header {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			hs := make(map[string][]string, len(keys))
			for _, k := range keys {
				hs[k] = out.Header[k]
			}
			a.UpstreamRequest = &ExplainUpstreamRequest{Method: out.Method, URL: out.URL.String(), Host: out.Host, Headers: hs}
		}
		ex.Action = a
	}
	return ex
}
