package gateway

// The admin REST API under /api/v1 (docs/admin-api.md; the OpenAPI
// document internal/admin/openapi.json describes every endpoint and is
// served at /api/v1/openapi.json). Access control is internal/admin's:
// the bearer token, or loopback only without one. Errors are problem+json.

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/portunus-gw/portunus/internal/admin"
	"github.com/portunus-gw/portunus/internal/config"
	"github.com/portunus-gw/portunus/internal/problem"
)

// Body limits of the admin API's POST endpoints.
const (
	maxExplainBody = 64 << 10
	maxPurgeBody   = 4 << 10
)

// registerAdminAPI mounts the /api/v1 endpoints on s.
func registerAdminAPI(s *admin.Server, rt *Runtime) {
	s.Handle("GET /api/v1/openapi.json", http.HandlerFunc(serveOpenAPI))
	s.Handle("GET /api/v1/routes", http.HandlerFunc(rt.serveRoutes))
	s.Handle("GET /api/v1/upstreams", http.HandlerFunc(rt.serveUpstreams))
	s.Handle("GET /api/v1/consumers", http.HandlerFunc(rt.serveConsumers))
	s.Handle("GET /api/v1/config", http.HandlerFunc(rt.serveConfig))
	s.Handle("POST /api/v1/reload", http.HandlerFunc(rt.serveReload))
	s.Handle("GET /api/v1/reload", http.HandlerFunc(rt.serveReloadStatus))
	s.Handle("POST /api/v1/explain", http.HandlerFunc(rt.serveExplain))
	s.Handle("POST /api/v1/cache/purge", http.HandlerFunc(rt.serveCachePurge))
	s.Handle("GET /api/v1/stats", http.HandlerFunc(rt.serveStats))
	s.Handle("GET /api/v1/deprecations", http.HandlerFunc(rt.serveDeprecations)) // adminapi_deprecations.go
	registerQuotaAPI(s, rt)
	registerRateLimitAPI(s, rt) // rate-limit usage per consumer: adminapi_ratelimit.go
	registerDashboard(s)        // the dashboard at /ui/: adminapi_ui.go
	registerConsumersAPI(s, rt) // runtime consumers and the audit trail: adminapi_consumers.go
}

func serveOpenAPI(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	_, _ = w.Write(admin.OpenAPI)
}

// snapshotOr503 returns the current snapshot or answers 503.
func (rt *Runtime) snapshotOr503(w http.ResponseWriter, r *http.Request) *Snapshot {
	snap := rt.gw.Snapshot()
	if snap == nil {
		problem.Write(w, r, problem.Problem{Code: problem.UpstreamUnavailable, Status: http.StatusServiceUnavailable, Detail: "no configuration loaded"})
	}
	return snap
}

// RoutesAnswer is the body of GET /api/v1/routes.
type RoutesAnswer struct {
	Hash   string      `json:"hash"`
	Routes []RouteView `json:"routes"`
}

func (rt *Runtime) serveRoutes(w http.ResponseWriter, r *http.Request) {
	snap := rt.snapshotOr503(w, r)
	if snap == nil {
		return
	}
	v := snap.View()
	if v.Routes == nil {
		v.Routes = []RouteView{}
	}
	admin.WriteJSON(w, http.StatusOK, RoutesAnswer{Hash: snap.Hash, Routes: v.Routes})
}

// UpstreamStatus is one pool in GET /api/v1/upstreams.
type UpstreamStatus struct {
	Name         string         `json:"name"`
	Balancer     string         `json:"balancer"`
	PreserveHost bool           `json:"preserve_host"`
	Targets      []TargetStatus `json:"targets"`
}

// TargetStatus is one target with its live state (upstream_status.go).
type TargetStatus struct {
	URL      string `json:"url"`
	Weight   int    `json:"weight"`
	InFlight int64  `json:"in_flight"`
	// Health is "healthy", "unhealthy" (active checks), "ejected"
	// (passive health) or "unknown" (no probe result: in rotation).
	Health string `json:"health"`
	// Breaker is "closed", "open" or "half_open".
	Breaker string `json:"breaker"`
	// LatencyMS is the answer latency moving average (0: no sample).
	LatencyMS float64 `json:"latency_ms"`
	// ConsecutiveFailures are failed attempts since the last success.
	ConsecutiveFailures int64 `json:"consecutive_failures"`
	// Ejections counts passive ejections.
	Ejections int64 `json:"ejections"`
	// EjectedUntil is set while the target is ejected.
	EjectedUntil *time.Time `json:"ejected_until,omitempty"`
	// LastCheck is the last active probe; null before the first one or
	// without health_check.
	LastCheck *CheckStatus `json:"last_check"`
}

// UpstreamsAnswer is the body of GET /api/v1/upstreams.
type UpstreamsAnswer struct {
	Upstreams []UpstreamStatus `json:"upstreams"`
}

func (rt *Runtime) serveUpstreams(w http.ResponseWriter, r *http.Request) {
	snap := rt.snapshotOr503(w, r)
	if snap == nil {
		return
	}
	admin.WriteJSON(w, http.StatusOK, UpstreamsAnswer{Upstreams: upstreamStatuses(snap)})
}

func upstreamStatuses(snap *Snapshot) []UpstreamStatus {
	out := []UpstreamStatus{}
	for _, u := range snap.Config.Upstreams {
		pool := snap.upstreams[u.Name]
		if pool == nil {
			continue
		}
		bal := pool.Balancer()
		us := UpstreamStatus{Name: u.Name, Balancer: bal, PreserveHost: pool.PreserveHost(), Targets: []TargetStatus{}}
		for _, t := range pool.Targets() {
			us.Targets = append(us.Targets, targetStatus(t))
		}
		out = append(out, us)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// ConsumerView is a consumer without its secrets: which kinds of
// credentials it has and how many, never their values.
type ConsumerView struct {
	Name         string   `json:"name"`
	Roles        []string `json:"roles"`
	APIKeys      int      `json:"api_keys"`
	BasicAuth    bool     `json:"basic_auth"`
	Certificates int      `json:"certificates"`
	RateLimits   int      `json:"rate_limits"`
	Quotas       int      `json:"quotas"`
	// Source is "config" (the file; read-only) or "runtime" (admin API).
	Source string `json:"source"`
	// ShadowedByConfig marks a runtime consumer whose name the config
	// file also has: the config one wins.
	ShadowedByConfig bool `json:"shadowed_by_config,omitempty"`
}

// ConsumersAnswer is the body of GET /api/v1/consumers.
type ConsumersAnswer struct {
	Consumers []ConsumerView `json:"consumers"`
}

// consumerViews maps the configured consumers, in file order.
func consumerViews(cfg *config.Config) []ConsumerView {
	out := make([]ConsumerView, 0, len(cfg.Consumers))
	for _, c := range cfg.Consumers {
		roles := c.Roles
		if roles == nil {
			roles = []string{}
		}
		out = append(out, ConsumerView{
			Name: c.Name, Roles: roles, APIKeys: len(c.APIKeys), BasicAuth: c.BasicAuth != nil,
			Certificates: len(c.Certificates), RateLimits: len(c.RateLimits), Quotas: len(c.Quotas), Source: "config",
		})
	}
	return out
}

func (rt *Runtime) serveConsumers(w http.ResponseWriter, r *http.Request) {
	snap := rt.snapshotOr503(w, r)
	if snap == nil {
		return
	}
	admin.WriteJSON(w, http.StatusOK, ConsumersAnswer{Consumers: append(consumerViews(snap.Config), runtimeConsumerViews(snap)...)})
}

// ConfigAnswer is the body of GET /api/v1/config.
type ConfigAnswer struct {
	Hash       string        `json:"hash"`
	Loaded     time.Time     `json:"loaded"`
	Source     string        `json:"source"`
	Config     any           `json:"config"`
	LastReload *ReloadStatus `json:"last_reload"`
}

func (rt *Runtime) serveConfig(w http.ResponseWriter, r *http.Request) {
	snap := rt.snapshotOr503(w, r)
	if snap == nil {
		return
	}
	red, err := redactedConfig(snap.Config)
	if err != nil {
		problem.Write(w, r, problem.Problem{Code: problem.Internal, Detail: "config: " + err.Error()})
		return
	}
	admin.WriteJSON(w, http.StatusOK, ConfigAnswer{
		Hash: snap.Hash, Loaded: snap.Loaded, Source: snap.Config.SourceFile(), Config: red, LastReload: rt.LastReload(),
	})
}

// serveReload reloads the config file; 422 problem+json lists every error
// (FILE:LINE:COL) when it is invalid and the running config stays.
func (rt *Runtime) serveReload(w http.ResponseWriter, r *http.Request) {
	// A reload may replace this very admin server: run it apart from
	// this request so Shutdown does not wait on itself.
	result := make(chan error, 1)
	go func() { result <- rt.Reload("admin api") }()
	if err := <-result; err != nil {
		b, _ := json.MarshalIndent(map[string]any{
			"type": problem.BadRequest.Type(), "title": "Config invalid; the previous config keeps serving",
			"status": http.StatusUnprocessableEntity, "errors": errorLines(err),
		}, "", "  ")
		h := w.Header()
		h.Set("Content-Type", "application/problem+json")
		h.Set("Cache-Control", "no-store")
		w.WriteHeader(http.StatusUnprocessableEntity)
		_, _ = w.Write(append(b, '\n'))
		return
	}
	admin.WriteJSON(w, http.StatusOK, rt.LastReload())
}

func (rt *Runtime) serveReloadStatus(w http.ResponseWriter, r *http.Request) {
	admin.WriteJSON(w, http.StatusOK, rt.LastReload())
}

// explainBody is the body of POST /api/v1/explain: what `portunus
// explain METHOD URL -H ... --client-ip IP` takes on its command line.
type explainBody struct {
	Method   string                     `json:"method"`
	URL      string                     `json:"url"`
	Headers  map[string]json.RawMessage `json:"headers"`
	ClientIP string                     `json:"client_ip"`
}

func (rt *Runtime) serveExplain(w http.ResponseWriter, r *http.Request) {
	var b explainBody
	if err := decodeBody(w, r, maxExplainBody, &b); err != nil {
		badRequest(w, r, err.Error())
		return
	}
	if b.URL == "" {
		badRequest(w, r, "url is required")
		return
	}
	h := http.Header{}
	for name, raw := range b.Headers {
		name = strings.TrimSpace(name)
		if name == "" {
			badRequest(w, r, "a header name is empty")
			return
		}
		var one string
		if err := json.Unmarshal(raw, &one); err == nil {
			h.Add(name, strings.TrimSpace(one))
			continue
		}
		var many []string
		if err := json.Unmarshal(raw, &many); err != nil {
			badRequest(w, r, fmt.Sprintf("header %q: want a string or an array of strings", name))
			return
		}
		for _, v := range many {
			h.Add(name, strings.TrimSpace(v))
		}
	}
	snap := rt.snapshotOr503(w, r)
	if snap == nil {
		return
	}
	ex := snap.Explain(ExplainRequest{Method: b.Method, URL: b.URL, Header: h, ClientIP: b.ClientIP})
	admin.WriteJSON(w, http.StatusOK, ex)
}

// purgeBody is the body of POST /api/v1/cache/purge: exactly one of its
// fields selects what to drop.
type purgeBody struct {
	Key        *string `json:"key"`
	PathPrefix *string `json:"path_prefix"`
	Route      *string `json:"route"`
	All        *bool   `json:"all"`
}

// serveCachePurge validates the purge request; purgeCache (cache_purge.go)
// does it.
func (rt *Runtime) serveCachePurge(w http.ResponseWriter, r *http.Request) {
	var b purgeBody
	if err := decodeBody(w, r, maxPurgeBody, &b); err != nil {
		badRequest(w, r, err.Error())
		return
	}
	n := 0
	for _, set := range []bool{b.Key != nil, b.PathPrefix != nil, b.Route != nil, b.All != nil} {
		if set {
			n++
		}
	}
	switch {
	case n != 1:
		badRequest(w, r, "give exactly one of key, path_prefix, route or all")
		return
	case b.All != nil && !*b.All:
		badRequest(w, r, "all must be true")
		return
	case b.Key != nil && *b.Key == "", b.PathPrefix != nil && !strings.HasPrefix(*b.PathPrefix, "/"), b.Route != nil && *b.Route == "":
		badRequest(w, r, "key and route must not be empty; path_prefix must start with /")
		return
	}
	rt.purgeCache(w, r, b)
}

// decodeBody reads one JSON object of at most limit bytes into v,
// refusing unknown fields and trailing data.
func decodeBody(w http.ResponseWriter, r *http.Request, limit int64, v any) error {
	if ct := r.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(strings.ToLower(ct), "application/json") {
		return errors.New("the body must be application/json")
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, limit))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return fmt.Errorf("the body is larger than %d bytes", limit)
		}
		if errors.Is(err, io.EOF) {
			return errors.New("the body is empty; want a JSON object")
		}
		return fmt.Errorf("malformed body: %v", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("malformed body: data after the JSON object")
	}
	return nil
}
