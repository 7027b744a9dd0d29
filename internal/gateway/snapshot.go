package gateway

import (
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/portunus-gw/portunus/internal/aggregate"
	"github.com/portunus-gw/portunus/internal/auth"
	"github.com/portunus-gw/portunus/internal/cache"
	"github.com/portunus-gw/portunus/internal/carry"
	"github.com/portunus-gw/portunus/internal/config"
	"github.com/portunus-gw/portunus/internal/consumers"
	"github.com/portunus-gw/portunus/internal/headers"
	"github.com/portunus-gw/portunus/internal/pipeline"
	"github.com/portunus-gw/portunus/internal/policy/authz"
	"github.com/portunus-gw/portunus/internal/policy/bodylimit"
	"github.com/portunus-gw/portunus/internal/policy/compress"
	"github.com/portunus-gw/portunus/internal/policy/concurrency"
	"github.com/portunus-gw/portunus/internal/policy/cors"
	"github.com/portunus-gw/portunus/internal/policy/grpcweb"
	"github.com/portunus-gw/portunus/internal/policy/ipfilter"
	"github.com/portunus-gw/portunus/internal/policy/quota"
	"github.com/portunus-gw/portunus/internal/policy/ratelimit"
	"github.com/portunus-gw/portunus/internal/proxy"
	"github.com/portunus-gw/portunus/internal/router"
	"github.com/portunus-gw/portunus/internal/store"
	"github.com/portunus-gw/portunus/internal/telemetry"
	"github.com/portunus-gw/portunus/internal/tracing"
	"github.com/portunus-gw/portunus/internal/upstream"
	"github.com/portunus-gw/portunus/internal/upstream/discovery"
)

// Snapshot is one compiled configuration: immutable once built, shared by
// every request that started while it was current.
type Snapshot struct {
	Config *config.Config
	Hash   string
	// Loaded is when this snapshot became current.
	Loaded time.Time

	router    *router.Router[*Route]
	routes    []*Route
	upstreams map[string]*upstream.Pool
	trusted   []netip.Prefix
	accessLog *telemetry.AccessLog
	// tracer is the tracing provider (carried by runtime.go); nil =
	// tracing off.
	tracer *tracing.Provider
	// discoverers keep pools with DNS-named targets current; started
	// by the runtime once the snapshot is live (upstream_build.go).
	discoverers []*discovery.Discoverer
	// rc is the consumers made through the admin API and the directory
	// that resolves clashes with the config (consumers_build.go).
	rc runtimeConsumerState
}

// Route is a compiled route: its match data and the handler chain that
// serves it.
type Route struct {
	Name  string
	Index int
	// Config is the route as loaded (policies already layered).
	Config *config.Route
	// Handler runs the route's policies and its action.
	Handler pipeline.Handler
	// Policies names the stages of Handler in order, for explain.
	Policies []string

	AllowEncodedSlash   bool
	AllowMethodOverride bool
	// Upstream is the proxy action's pool (nil for other actions).
	Upstream *upstream.Pool
	proxyCfg *proxy.Config
	// up holds a split's sides and the mirror (upstream_build.go).
	up      *upstreamAction
	metrics *telemetry.RouteMetrics
	// upMetrics records the proxy action's upstream calls (nil for
	// other actions, or with metrics off).
	upMetrics *telemetry.UpstreamMetrics
	// cache is the route's response cache (nil without `cache:`).
	cache *cache.Policy
	// aggregate is the aggregate action's plan (nil for other actions).
	aggregate *aggregate.Plan
	// deprecated counts calls per consumer (nil without `deprecated:`).
	deprecated *telemetry.DeprecatedRecorder
}

// compileDeps are the process-wide parts a snapshot is built with.
type compileDeps struct {
	metrics *telemetry.Metrics
	build   *carry.Build
	log     *slog.Logger
	auth    *authMethods
	// store holds shared state (rate-limit buckets, quota counters).
	store store.Store
	// consumerLimits are consumers' own rate_limits by name (nil: none).
	consumerLimits map[string][]config.RateLimit
	// consumerQuotas are consumers' own quotas by name (nil: none).
	consumerQuotas map[string][]config.Quota
	// runtimeConsumers are the admin API's consumers; nil = off.
	runtimeConsumers *consumers.Manager
	// tracer is given to every proxy action and the snapshot; nil = off.
	tracer *tracing.Provider
}

func (d compileDeps) logger() *slog.Logger {
	if d.log != nil {
		return d.log
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// compile builds a snapshot from a validated config. Problems it finds
// are reported as config errors with positions, all at once.
func compile(cfg *config.Config, deps compileDeps) (*Snapshot, error) {
	snap := &Snapshot{
		Config:    cfg,
		Hash:      cfg.Hash(),
		upstreams: make(map[string]*upstream.Pool, len(cfg.Upstreams)),
		tracer:    deps.tracer,
	}
	var errs config.ErrorList

	for _, c := range cfg.TrustedProxies {
		p, err := parsePrefix(c)
		if err != nil {
			errs = append(errs, cfg.ErrorAt("trusted_proxies", "%v", err))
			continue
		}
		snap.trusted = append(snap.trusted, p)
	}

	for i := range cfg.Upstreams {
		u := cfg.Upstreams[i]
		pool, err := carry.Get(deps.build, carry.Key("upstream", u.Name, u), func() (*upstream.Pool, error) {
			return buildPool(u, deps.metrics)
		})
		if err != nil {
			errs = append(errs, cfg.ErrorAt(fmt.Sprintf("upstreams[%d]", i), "%v", err))
			continue
		}
		snap.upstreams[u.Name] = pool
		errs = append(errs, buildDiscovery(cfg, i, u, pool, snap, deps)...)
	}

	am, aerrs := buildAuthMethods(cfg, deps.build, deps.logger())
	errs = append(errs, aerrs...)
	deps.auth = am
	attachRuntimeConsumers(snap, am, deps.runtimeConsumers)
	for _, c := range cfg.Consumers {
		if len(c.RateLimits) > 0 {
			if deps.consumerLimits == nil {
				deps.consumerLimits = map[string][]config.RateLimit{}
			}
			deps.consumerLimits[c.Name] = c.RateLimits
		}
		if len(c.Quotas) > 0 {
			if deps.consumerQuotas == nil {
				deps.consumerQuotas = map[string][]config.Quota{}
			}
			deps.consumerQuotas[c.Name] = c.Quotas
		}
	}

	specs := make([]router.Route[*Route], 0, len(cfg.Routes))
	for i := range cfg.Routes {
		rc := &cfg.Routes[i]
		rt, rerrs := compileRoute(cfg, i, rc, snap, deps)
		errs = append(errs, rerrs...)
		if rt == nil {
			continue
		}
		snap.routes = append(snap.routes, rt)
		specs = append(specs, router.Route[*Route]{
			Hosts:      rc.Match.Hosts,
			Path:       rc.Match.Path,
			PathPrefix: rc.Match.PathPrefix,
			PathRegex:  rc.Match.PathRegex,
			Methods:    rc.Match.Methods,
			Headers:    rc.Match.Headers,
			MediaType:  rc.Match.MediaType,
			Value:      rt,
		})
	}
	if len(errs) == 0 {
		r, err := router.New(specs)
		if err != nil {
			for _, be := range unwrapBuildErrors(err) {
				idx := specs[be.Index].Value.Index
				errs = append(errs, cfg.ErrorAt(fmt.Sprintf("routes[%d].%s", idx, be.Field), "%s", be.Msg))
			}
		}
		snap.router = r
	}
	if len(errs) > 0 {
		sort.SliceStable(errs, func(a, b int) bool {
			if errs[a].Line != errs[b].Line {
				return errs[a].Line < errs[b].Line
			}
			return errs[a].Col < errs[b].Col
		})
		return nil, errs
	}
	return snap, nil
}

// compileRoute composes one route's chain. The order of policies is fixed
// here and only here (DESIGN.md "Pipeline"): IP filter → CORS → body/size
// limits → authentication → authorization → rate limit → concurrency →
// cache lookup → request transforms → action → response transforms → cache
// store. Absent policies are absent from the chain, so they cost nothing.
func compileRoute(cfg *config.Config, i int, rc *config.Route, snap *Snapshot, deps compileDeps) (*Route, config.ErrorList) {
	var errs config.ErrorList
	at := func(field string) string { return fmt.Sprintf("routes[%d].%s", i, field) }
	rt := &Route{
		Name:                rc.Name,
		Index:               i,
		Config:              rc,
		AllowEncodedSlash:   boolOr(rc.AllowEncodedSlash, false),
		AllowMethodOverride: boolOr(rc.AllowMethodOverride, false),
		metrics:             deps.metrics.Route(rc.Name),
	}
	paramNames := pathParamNames(rc.Match.Path)

	var mws []pipeline.Middleware
	// Deprecation headers come first, so every answer of the route carries
	// them, refusals by the policies below included; the count comes
	// after authentication.
	var countDeprecated pipeline.Middleware
	if rc.Deprecated != nil {
		set, count, derrs := buildDeprecation(cfg, i, rc, rt, deps)
		errs = append(errs, derrs...)
		if set != nil {
			mws = append(mws, set)
			countDeprecated = count
		}
	}
	if rc.IP != nil {
		mw, err := ipfilter.New(*rc.IP)
		if err != nil {
			errs = append(errs, cfg.ErrorAt(at("ip"), "%v", err))
		} else {
			mws = append(mws, mw)
			rt.Policies = append(rt.Policies, "ip filter")
		}
	}
	if rc.CORS != nil {
		mw, err := cors.New(*rc.CORS)
		if err != nil {
			errs = append(errs, cfg.ErrorAt(at("cors"), "%v", err))
		} else {
			mws = append(mws, mw)
			rt.Policies = append(rt.Policies, "cors")
		}
	}
	if rc.Upstream != nil {
		// gRPC-Web from browsers becomes gRPC before anything else looks
		// at the request; other requests pass through untouched.
		mws = append(mws, grpcweb.New())
	}
	if rc.MaxBodyBytes != nil && *rc.MaxBodyBytes > 0 {
		mws = append(mws, bodylimit.New(int64(*rc.MaxBodyBytes)))
		rt.Policies = append(rt.Policies, "body limit "+rc.MaxBodyBytes.String())
	}
	if len(rc.Auth) > 0 {
		methods, err := deps.auth.methods(rc.Auth)
		if err != nil {
			errs = append(errs, cfg.ErrorAt(at("auth"), "%v", err))
		} else {
			mws = append(mws, auth.New(auth.Options{Methods: methods, Consumers: deps.auth.consumers, HideCredentials: boolOr(rc.HideCredentials, true)}))
			rt.Policies = append(rt.Policies, "auth "+strings.Join(rc.Auth, " | "))
		}
	}
	if rc.Allow != nil {
		mws = append(mws, authz.New(*rc.Allow))
		rt.Policies = append(rt.Policies, "allow")
	}
	// Deprecated calls are counted after authentication, so per consumer,
	// and before limits, so a call refused with 429 still counts.
	if countDeprecated != nil {
		mws = append(mws, countDeprecated)
	}
	if len(rc.RateLimits) > 0 {
		// A consumer's own rate_limits replace the route's for that
		// consumer, on routes that have limits.
		mw, err := ratelimit.New(ratelimit.Options{
			Route: rc.Name, Limits: rc.RateLimits, Consumers: deps.consumerLimits, Lookup: runtimeLimitLookup(deps),
			Store: deps.store, OnError: cfg.Store.OnError, Metrics: deps.metrics,
		})
		if err != nil {
			errs = append(errs, cfg.ErrorAt(at("rate_limits"), "%v", err))
		} else {
			mws = append(mws, mw)
			rt.Policies = append(rt.Policies, "rate limits")
		}
	}
	if len(rc.Quotas) > 0 {
		// A consumer's own quotas replace the route's for that consumer,
		// on routes that have quotas (as rate_limits do above).
		mw, err := quota.New(quota.Options{
			Route: rc.Name, Quotas: rc.Quotas, Consumers: deps.consumerQuotas, Lookup: runtimeQuotaLookup(deps),
			Store: deps.store, OnError: cfg.Store.OnError,
		})
		if err != nil {
			errs = append(errs, cfg.ErrorAt(at("quotas"), "%v", err))
		} else {
			mws = append(mws, mw)
			rt.Policies = append(rt.Policies, "quotas")
		}
	}
	if cc := rc.Concurrency; cc != nil {
		lim, err := carry.Get(deps.build, carry.Key("concurrency", rc.Name, *cc), func() (*concurrency.Limiter, error) {
			return concurrency.New(*cc, rc.Name)
		})
		if err != nil {
			errs = append(errs, cfg.ErrorAt(at("concurrency"), "%v", err))
		} else {
			mws = append(mws, lim.Middleware())
			rt.Policies = append(rt.Policies, "concurrency")
		}
	}
	// Compression wraps everything after it (later: the cache), so a
	// cached answer is stored once and compressed per client.
	if rc.Compression != nil {
		mw, err := compress.New(*rc.Compression)
		if err != nil {
			errs = append(errs, cfg.ErrorAt(at("compression"), "%v", err))
		} else {
			mws = append(mws, mw)
			rt.Policies = append(rt.Policies, "compression "+strings.Join(rc.Compression.Algorithms, ", "))
		}
	}
	if rc.Cache != nil {
		mw, err := buildCache(cfg, rc, rt, deps)
		if err != nil {
			errs = append(errs, cfg.ErrorAt(at("cache"), "%v", err))
		} else {
			mws = append(mws, mw)
			rt.Policies = append(rt.Policies, "cache "+rc.Cache.TTL.String())
		}
	}

	tmws, terrs := buildTransforms(cfg, i, rc, rt, paramNames)
	errs = append(errs, terrs...)
	mws = append(mws, tmws...)

	var action pipeline.Handler
	switch {
	case rc.Respond != nil:
		h, err := respondHandler(rc.Respond, rc.ResponseHeaders, paramNames)
		if err != nil {
			errs = append(errs, cfg.ErrorAt(at("response_headers"), "%v", err))
		}
		action = h
		rt.Policies = append(rt.Policies, "respond "+strconv.Itoa(rc.Respond.Status))
	case rc.Upstream != nil:
		pool := snap.upstreams[primaryUpstream(rc.Upstream)]
		if pool == nil {
			// Validation reports unknown names; a pool that failed to
			// build was reported above.
			return nil, errs
		}
		pc := proxy.Config{Pool: pool, Tracer: deps.tracer}
		if rc.Timeout != nil {
			pc.Timeout = rc.Timeout.D()
		}
		if rc.Rewrite != nil {
			pc.StripPrefix = rc.Rewrite.StripPrefix
			if rc.Rewrite.Path != "" {
				t, err := headers.CompilePath(rc.Rewrite.Path, paramNames)
				if err != nil {
					errs = append(errs, cfg.ErrorAt(at("rewrite.path"), "%v", err))
				}
				pc.RewritePath = t
			}
		}
		if rc.RequestHeaders != nil {
			rules, err := headers.CompileRules(rc.RequestHeaders, paramNames)
			if err != nil {
				errs = append(errs, cfg.ErrorAt(at("request_headers"), "%v", err))
			}
			pc.RequestHeaders = rules
			rt.Policies = append(rt.Policies, "request headers")
		}
		if rc.ResponseHeaders != nil {
			rules, err := headers.CompileRules(rc.ResponseHeaders, paramNames)
			if err != nil {
				errs = append(errs, cfg.ErrorAt(at("response_headers"), "%v", err))
			}
			pc.ResponseHeaders = rules
			rt.Policies = append(rt.Policies, "response headers")
		}
		rt.Upstream = pool
		// Metrics children for this upstream and its targets are
		// resolved now, not on the first request.
		rt.metrics.PrepareUpstream(pool.Name())
		rt.upMetrics = deps.metrics.Upstream(pool.Name())
		for _, t := range pool.Targets() {
			rt.upMetrics.Prepare(t.String())
		}
		rt.proxyCfg = &pc
		var aerrs config.ErrorList
		action, aerrs = buildUpstreamAction(cfg, i, rc, snap, deps, rt, pc)
		errs = append(errs, aerrs...)
		if action == nil {
			return nil, errs
		}
	case rc.Aggregate != nil:
		h, aerrs := buildAggregate(cfg, i, rc, snap, rt, paramNames)
		errs = append(errs, aerrs...)
		action = h
	default:
		errs = append(errs, cfg.ErrorAt(fmt.Sprintf("routes[%d]", i), "route has no action this version supports"))
		return nil, errs
	}
	if len(errs) > 0 {
		return nil, errs
	}
	rt.Handler = pipeline.Chain(action, mws...)
	return rt, nil
}

// respondHandler answers with a fixed response; header values may hold
// templates.
func respondHandler(rc *config.Respond, extra *config.HeaderRules, params []string) (pipeline.Handler, error) {
	hr := &config.HeaderRules{Set: map[string]string{}}
	for k, v := range rc.Headers {
		hr.Set[k] = v
	}
	if extra != nil {
		for k, v := range extra.Set {
			hr.Set[k] = v
		}
		hr.Add = extra.Add
		hr.Remove = extra.Remove
	}
	rules, err := headers.CompileRules(hr, params)
	if err != nil {
		return nil, err
	}
	status := rc.Status
	if status == 0 {
		status = http.StatusOK
	}
	body := []byte(rc.Body)
	clen := []string{strconv.Itoa(len(body))}
	_, hasType := rc.Headers["Content-Type"]
	return func(w http.ResponseWriter, r *http.Request, s *pipeline.State) {
		h := w.Header()
		if !hasType && len(body) > 0 {
			h["Content-Type"] = textPlain
		}
		rules.Apply(h, r, s)
		h["Content-Length"] = clen
		w.WriteHeader(status)
		if r.Method != http.MethodHead {
			_, _ = w.Write(body)
		}
	}, nil
}

var textPlain = []string{"text/plain; charset=utf-8"}

func boolOr(p *bool, def bool) bool {
	if p == nil {
		return def
	}
	return *p
}

// pathParamNames lists the {name} segments of an exact route path.
func pathParamNames(path string) []string {
	var names []string
	for i := 0; i < len(path); i++ {
		if path[i] != '{' {
			continue
		}
		j := i + 1
		for j < len(path) && path[j] != '}' {
			j++
		}
		if j < len(path) {
			names = append(names, path[i+1:j])
		}
		i = j
	}
	return names
}

func parsePrefix(s string) (netip.Prefix, error) {
	if p, err := netip.ParsePrefix(s); err == nil {
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("invalid CIDR or address %q", s)
	}
	return netip.PrefixFrom(a, a.BitLen()), nil
}

func unwrapBuildErrors(err error) []*router.BuildError {
	var out []*router.BuildError
	var walk func(error)
	walk = func(e error) {
		if e == nil {
			return
		}
		if be, ok := e.(*router.BuildError); ok {
			out = append(out, be)
			return
		}
		if j, ok := e.(interface{ Unwrap() []error }); ok {
			for _, x := range j.Unwrap() {
				walk(x)
			}
		}
	}
	walk(err)
	if len(out) == 0 {
		out = append(out, &router.BuildError{Index: 0, Field: "match", Msg: err.Error()})
	}
	return out
}

// CompileForExplain compiles cfg without opening anything, for `portunus
// explain`.
func CompileForExplain(cfg *config.Config) (*Snapshot, error) {
	b := carry.NewRegistry().Begin()
	defer b.Abort()
	// Explain never runs the policies; the store is only there to build them.
	st := store.NewMemory(store.MemoryOptions{})
	defer st.Close()
	return compile(cfg, compileDeps{metrics: telemetry.NewMetrics(), build: b, store: st})
}

// trusts reports whether addr is one of the trusted proxies.
func (s *Snapshot) trusts(addr netip.Addr) bool {
	for _, p := range s.trusted {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}

// Routes returns the compiled routes in file order.
func (s *Snapshot) Routes() []*Route { return s.routes }
