package config

import (
	"strconv"
	"time"
)

// Built-in defaults, as documented in docs/config.md.
const (
	DefaultReadHeaderTimeout    = Duration(10 * time.Second)
	DefaultBodyReadTimeout      = Duration(30 * time.Second)
	DefaultIdleTimeout          = Duration(120 * time.Second)
	DefaultMaxHeaderBytes       = Size(64 << 10)
	DefaultMaxHeaders           = 100
	DefaultMaxURIBytes          = Size(8192)
	DefaultMaxConcurrentStreams = 250
	DefaultCacheMaxBytes        = Size(256 << 20)
	DefaultCacheMaxObjectBytes  = Size(8 << 20)
	DefaultRouteTimeout         = Duration(60 * time.Second)
	DefaultMaxBodyBytes         = Size(10 << 20)
	DefaultHSTSMaxAge           = Duration(365 * 24 * time.Hour)
	DefaultCompressMinBytes     = Size(1 << 10)
)

// DefaultCompressTypes are the media types compressed when a route's
// compression lists none.
var DefaultCompressTypes = []string{
	"text/*", "application/json", "application/*+json", "application/javascript",
	"application/xml", "application/*+xml", "image/svg+xml", "application/wasm",
	"application/x-ndjson", "application/graphql-response+json",
}

// DefaultCompressAlgorithms are offered in this order of preference.
var DefaultCompressAlgorithms = []string{"zstd", "br", "gzip"}

func setDefault[T comparable](p *T, v T) {
	var zero T
	if *p == zero {
		*p = v
	}
}

func ptrDefault[T any](p **T, v T) {
	if *p == nil {
		*p = &v
	}
}

// applyDefaults fills every value left unset with its built-in default.
// It runs after layering, so a route's defaults only fill what neither
// defaults:, nor its policy sets, nor the route itself set.
func (c *Config) applyDefaults() {
	for i := range c.Listeners {
		l := &c.Listeners[i]
		if l.Limits == nil {
			l.Limits = &Limits{}
		}
		m := l.Limits
		setDefault(&m.ReadHeaderTimeout, DefaultReadHeaderTimeout)
		setDefault(&m.BodyReadTimeout, DefaultBodyReadTimeout)
		setDefault(&m.IdleTimeout, DefaultIdleTimeout)
		setDefault(&m.MaxHeaderBytes, DefaultMaxHeaderBytes)
		setDefault(&m.MaxHeaders, DefaultMaxHeaders)
		setDefault(&m.MaxURIBytes, DefaultMaxURIBytes)
		setDefault(&m.MaxConcurrentStreams, DefaultMaxConcurrentStreams)
		if t := l.TLS; t != nil {
			setDefault(&t.ClientAuth, "none")
			setDefault(&t.MinVersion, "1.2")
			if h := t.HSTS; h != nil {
				setDefault(&h.MaxAge, DefaultHSTSMaxAge)
			}
		}
		if rd := l.RedirectHTTPS; rd != nil {
			setDefault(&rd.Port, 443)
			setDefault(&rd.Status, 308)
		}
	}
	if a := c.Admin; a != nil {
		ptrDefault(&a.PublicHealth, true)
	}

	s := &c.Store
	setDefault(&s.Backend, "memory")
	setDefault(&s.OnError, "fail_open")
	setDefault(&s.Memory.CacheMaxBytes, DefaultCacheMaxBytes)
	setDefault(&s.Redis.KeyPrefix, "portunus:")

	o := &c.Observability
	setDefault(&o.AccessLog.Format, "json")
	setDefault(&o.AccessLog.Path, "stdout")
	ptrDefault(&o.AccessLog.SampleSuccess, 1.0)
	setDefault(&o.Tracing.Protocol, "http")
	ptrDefault(&o.Tracing.SampleRatio, 0.01)

	setDefault(&c.APIKey.Header, "X-API-Key")

	for i := range c.Upstreams {
		upstreamDefaults(&c.Upstreams[i])
	}
	for i := range c.Consumers {
		rateLimitDefaults(c.Consumers[i].RateLimits)
		quotaDefaults(c.Consumers[i].Quotas)
	}
	for i := range c.JWTProviders {
		j := &c.JWTProviders[i]
		setDefault(&j.JWKSRefetchCooldown, Duration(5*time.Second))
		setDefault(&j.ClockSkew, Duration(30*time.Second))
		setDefault(&j.ConsumerClaim, "sub")
		setDefault(&j.RolesClaim, "roles")
		if j.JWKSURL != "" && len(j.Algorithms) == 0 {
			j.Algorithms = []string{"RS256", "ES256"}
		}
	}
	for i := range c.OAuth2Providers {
		o := &c.OAuth2Providers[i]
		setDefault(&o.CacheTTL, Duration(30*time.Second))
		setDefault(&o.ConsumerClaim, "sub")
		setDefault(&o.RolesClaim, "scope")
	}
	for i := range c.Routes {
		routeDefaults(i, &c.Routes[i])
	}
}

func upstreamDefaults(u *Upstream) {
	setDefault(&u.Balancer, "round_robin")
	if u.Balancer == "consistent_hash" {
		setDefault(&u.HashOn, "ip")
	}
	setDefault(&u.Protocol, "auto")
	for j := range u.Targets {
		setDefault(&u.Targets[j].Weight, 1)
	}
	if u.FailureStatuses == nil {
		u.FailureStatuses = []int{502, 503, 504}
	}
	setDefault(&u.Timeouts.Connect, Duration(2*time.Second))
	setDefault(&u.Timeouts.ResponseHeader, Duration(30*time.Second))
	setDefault(&u.Timeouts.IdleConnection, Duration(90*time.Second))
	if hc := u.HealthCheck; hc != nil {
		setDefault(&hc.Path, "/healthz")
		setDefault(&hc.Interval, Duration(2*time.Second))
		setDefault(&hc.Timeout, Duration(time.Second))
		setDefault(&hc.HealthyThreshold, 2)
		setDefault(&hc.UnhealthyThreshold, 2)
		setDefault(&hc.ExpectedStatus, "200-399")
	}
	if ph := u.PassiveHealth; ph != nil {
		setDefault(&ph.ConsecutiveFailures, 5)
		setDefault(&ph.EjectionTime, Duration(30*time.Second))
		setDefault(&ph.MaxEjectedPercent, 50)
	}
	if cb := u.CircuitBreaker; cb != nil {
		setDefault(&cb.FailureRatio, 0.5)
		setDefault(&cb.MinRequests, 20)
		setDefault(&cb.OpenFor, Duration(10*time.Second))
		setDefault(&cb.HalfOpenRequests, 3)
	}
	if r := u.Retries; r != nil {
		setDefault(&r.Attempts, 2)
		if r.On == nil {
			r.On = []string{"connect_failure", "reset", "timeout"}
		}
		setDefault(&r.BudgetPercent, 20)
		setDefault(&r.MinPerSecond, 3)
	}
}

func rateLimitDefaults(rls []RateLimit) {
	for k := range rls {
		rl := &rls[k]
		setDefault(&rl.By, "ip")
		setDefault(&rl.Burst, rl.Limit)
	}
}

func quotaDefaults(qs []Quota) {
	for k := range qs {
		q := &qs[k]
		setDefault(&q.By, "ip")
		setDefault(&q.TimeZone, "UTC")
	}
}

func routeDefaults(i int, r *Route) {
	setDefault(&r.Name, "route-"+strconv.Itoa(i))
	p := &r.RoutePolicies
	ptrDefault(&p.Timeout, DefaultRouteTimeout)
	ptrDefault(&p.MaxBodyBytes, DefaultMaxBodyBytes)
	ptrDefault(&p.HideCredentials, true)
	ptrDefault(&p.AllowMethodOverride, false)
	ptrDefault(&p.AllowEncodedSlash, false)
	rateLimitDefaults(p.RateLimits)
	quotaDefaults(p.Quotas)
	if cc := p.Concurrency; cc != nil {
		setDefault(&cc.QueueTimeout, Duration(time.Second))
	}
	if ca := p.Cache; ca != nil {
		setDefault(&ca.Query, "keep")
		setDefault(&ca.MaxObjectBytes, DefaultCacheMaxObjectBytes)
	}
	if m := p.Mirror; m != nil {
		setDefault(&m.Percent, 100)
	}
	if c := p.Compression; c != nil {
		setDefault(&c.MinBytes, DefaultCompressMinBytes)
		if c.Types == nil {
			c.Types = DefaultCompressTypes
		}
		if c.Algorithms == nil {
			c.Algorithms = DefaultCompressAlgorithms
		}
	}
	if h := p.Hedge; h != nil {
		setDefault(&h.Max, 1)
		if h.After.Percentile > 0 {
			setDefault(&h.Min, DefaultHedgeMin)
		}
	}
	if rs := r.Respond; rs != nil {
		setDefault(&rs.Status, 200)
	}
}
