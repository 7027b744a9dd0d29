package config

// The types in this file are the config contract (../../docs/config.md) as Go
// values. Field tags name the YAML keys; the `default` comments say what a
// zero value becomes after ApplyDefaults. The JSON Schema in
// schema/portunus.schema.json is generated from these types, so a field's doc
// comment is also what an editor shows for it.

// Config is one whole, decoded configuration file.
type Config struct {
	// Listeners are the addresses public traffic arrives on.
	Listeners []Listener `yaml:"listeners" json:"listeners"`
	// TrustedProxies are CIDRs whose X-Forwarded-For, Forwarded and PROXY
	// headers are believed. Empty: no peer is trusted.
	TrustedProxies []string `yaml:"trusted_proxies" json:"trusted_proxies,omitempty"`
	// Admin is the admin listener; absent means there is none.
	Admin *Admin `yaml:"admin" json:"admin,omitempty"`
	// Store is where shared state lives (rate-limit counters, cache entries).
	Store Store `yaml:"store" json:"store,omitempty"`
	// Observability configures logs, traces and profiling.
	Observability Observability `yaml:"observability" json:"observability,omitempty"`
	// Upstreams are the named pools of targets routes forward to.
	Upstreams []Upstream `yaml:"upstreams" json:"upstreams,omitempty"`
	// Consumers are the known clients and their credentials.
	Consumers []Consumer `yaml:"consumers" json:"consumers,omitempty"`
	// APIKey says where API keys are read from.
	APIKey APIKeySource `yaml:"api_key" json:"api_key,omitempty"`
	// JWTProviders are the JWT issuers routes may accept tokens from.
	JWTProviders []JWTProvider `yaml:"jwt_providers" json:"jwt_providers,omitempty"`
	// OAuth2Providers are RFC 7662 token introspection endpoints.
	OAuth2Providers []OAuth2Provider `yaml:"oauth2_providers" json:"oauth2_providers,omitempty"`
	// ForwardAuth are external services asked to allow or deny a request.
	ForwardAuth []ForwardAuth `yaml:"forward_auth" json:"forward_auth,omitempty"`
	// PolicySets are reusable bundles of route policies, applied by a
	// route's `use:` list; the route's own keys win.
	PolicySets map[string]RoutePolicies `yaml:"policy_sets" json:"policy_sets,omitempty"`
	// Defaults apply to every route before its policy sets and own keys.
	Defaults RoutePolicies `yaml:"defaults" json:"defaults,omitempty"`
	// Routes map requests to actions.
	Routes []Route `yaml:"routes" json:"routes,omitempty"`
	// DemoUpstreams are built-in echo services Portunus starts itself, so an
	// example config works with nothing else running. Not for production.
	DemoUpstreams []DemoUpstream `yaml:"demo_upstreams" json:"demo_upstreams,omitempty"`

	// src remembers where the config came from and where each value was
	// written, for error positions (see ErrorAt). Not part of the contract.
	src *source
}

// Listener is one address public traffic arrives on.
type Listener struct {
	// Address is host:port to listen on, e.g. "127.0.0.1:8080" or ":8080".
	Address string `yaml:"address" json:"address"`
	// H2C enables HTTP/2 with prior knowledge on a plain listener.
	H2C bool `yaml:"h2c" json:"h2c,omitempty"`
	// ProxyProtocol accepts PROXY protocol v1/v2 from trusted_proxies.
	ProxyProtocol bool `yaml:"proxy_protocol" json:"proxy_protocol,omitempty"`
	// TLS makes this a TLS listener.
	TLS *ListenerTLS `yaml:"tls" json:"tls,omitempty"`
	// Limits bound what one client may send; omitted fields take defaults.
	Limits *Limits `yaml:"limits" json:"limits,omitempty"`
	// RedirectHTTPS makes this plain listener answer every request with a
	// redirect to the same URL on https (no routing, no upstream).
	RedirectHTTPS *RedirectHTTPS `yaml:"redirect_https" json:"redirect_https,omitempty"`
}

// RedirectHTTPS configures an HTTP to HTTPS redirect listener.
type RedirectHTTPS struct {
	// Port of the HTTPS URL; default 443 (then omitted from the URL).
	Port int `yaml:"port" json:"port,omitempty"`
	// Status is 301, 302, 307 or 308 (default 308, which keeps the method).
	Status int `yaml:"status" json:"status,omitempty"`
}

// ListenerTLS configures TLS termination on a listener.
type ListenerTLS struct {
	// Certificates are chosen by SNI; no match: the first.
	Certificates []Certificate `yaml:"certificates" json:"certificates"`
	// ClientCAFile is a PEM bundle of CAs that sign client certificates.
	ClientCAFile string `yaml:"client_ca_file" json:"client_ca_file,omitempty"`
	// ClientAuth is none (default), request (verify if presented) or require.
	ClientAuth string `yaml:"client_auth" json:"client_auth,omitempty" jsonschema:"enum=none,enum=request,enum=require"`
	// MinVersion is the lowest TLS version accepted: "1.2" (default) or "1.3".
	MinVersion string `yaml:"min_version" json:"min_version,omitempty" jsonschema:"enum=1.2,enum=1.3"`
	// HSTS adds Strict-Transport-Security to every answer on this listener.
	HSTS *HSTS `yaml:"hsts" json:"hsts,omitempty"`
}

// HSTS configures the Strict-Transport-Security header.
type HSTS struct {
	// MaxAge is how long browsers remember to use HTTPS. Default 365 days (8760h).
	MaxAge            Duration `yaml:"max_age" json:"max_age,omitempty"`
	IncludeSubdomains bool     `yaml:"include_subdomains" json:"include_subdomains,omitempty"`
	Preload           bool     `yaml:"preload" json:"preload,omitempty"`
}

// Certificate is a PEM certificate chain and its key.
type Certificate struct {
	CertFile string `yaml:"cert_file" json:"cert_file"`
	KeyFile  string `yaml:"key_file" json:"key_file"`
}

// Limits bound what one client may send on a listener.
type Limits struct {
	// ReadHeaderTimeout is the longest time to read a request's header block
	// (slowloris guard). Default 10s.
	ReadHeaderTimeout Duration `yaml:"read_header_timeout" json:"read_header_timeout,omitempty"`
	// BodyReadTimeout is the longest wait for the next body bytes (408 after).
	// Default 30s.
	BodyReadTimeout Duration `yaml:"body_read_timeout" json:"body_read_timeout,omitempty"`
	// WriteTimeout bounds writing a response; 0 (default) = none, for streaming.
	WriteTimeout Duration `yaml:"write_timeout" json:"write_timeout,omitempty"`
	// IdleTimeout closes keep-alive connections idle this long. Default 120s.
	IdleTimeout Duration `yaml:"idle_timeout" json:"idle_timeout,omitempty"`
	// MaxHeaderBytes bounds the request header block (431 above). Default 64KiB.
	MaxHeaderBytes Size `yaml:"max_header_bytes" json:"max_header_bytes,omitempty"`
	// MaxHeaders bounds the number of header fields (431 above). Default 100.
	MaxHeaders int `yaml:"max_headers" json:"max_headers,omitempty"`
	// MaxURIBytes bounds the request target (414 above). Default 8192.
	MaxURIBytes Size `yaml:"max_uri_bytes" json:"max_uri_bytes,omitempty"`
	// MaxConnections caps open connections; 0 (default) = unlimited.
	MaxConnections int `yaml:"max_connections" json:"max_connections,omitempty"`
	// MaxConcurrentStreams caps HTTP/2 streams per connection. Default 250.
	MaxConcurrentStreams int `yaml:"max_concurrent_streams" json:"max_concurrent_streams,omitempty"`
}

// Admin is the admin listener: health, metrics, admin API.
type Admin struct {
	// Address is host:port of the admin listener.
	Address string `yaml:"address" json:"address"`
	// Token is the bearer token for /api/v1 and /ui. Empty: only loopback
	// clients are served, and a non-loopback address is a config error.
	Token string `yaml:"token" json:"token,omitempty"`
	// PublicHealth lets /healthz, /readyz and /metrics answer without the
	// token. Default true.
	PublicHealth *bool `yaml:"public_health" json:"public_health,omitempty"`
}

// Store says where shared state lives.
type Store struct {
	// Backend is memory (default) or redis.
	Backend string      `yaml:"backend" json:"backend,omitempty" jsonschema:"enum=memory,enum=redis"`
	Memory  MemoryStore `yaml:"memory" json:"memory,omitempty"`
	Redis   RedisStore  `yaml:"redis" json:"redis,omitempty"`
	// OnError is what happens while the store is unreachable: fail_open
	// (default; the local in-memory limiter decides) or fail_closed (503).
	OnError string `yaml:"on_error" json:"on_error,omitempty" jsonschema:"enum=fail_open,enum=fail_closed"`
	// ConsumersFile is the embedded database (bbolt) holding consumers
	// created through the admin API, with the memory backend. Empty: the
	// admin API refuses to create them. Redis keeps them in Redis.
	ConsumersFile string `yaml:"consumers_file" json:"consumers_file,omitempty"`
}

// MemoryStore configures the in-process store.
type MemoryStore struct {
	// CacheMaxBytes bounds the response cache. Default 256MiB.
	CacheMaxBytes Size `yaml:"cache_max_bytes" json:"cache_max_bytes,omitempty"`
}

// RedisStore configures the Redis store.
type RedisStore struct {
	// Addresses: one address; several with cluster; or sentinels.
	Addresses []string `yaml:"addresses" json:"addresses,omitempty"`
	// SentinelMaster, when set, makes Addresses the sentinels of this master.
	SentinelMaster string `yaml:"sentinel_master" json:"sentinel_master,omitempty"`
	Cluster        bool   `yaml:"cluster" json:"cluster,omitempty"`
	Password       string `yaml:"password" json:"password,omitempty"`
	DB             int    `yaml:"db" json:"db,omitempty"`
	TLS            struct {
		Enabled bool   `yaml:"enabled" json:"enabled,omitempty"`
		CAFile  string `yaml:"ca_file" json:"ca_file,omitempty"`
	} `yaml:"tls" json:"tls,omitempty"`
	// KeyPrefix is put before every key. Default "portunus:".
	KeyPrefix string `yaml:"key_prefix" json:"key_prefix,omitempty"`
}

// Observability configures logs, traces and profiling.
type Observability struct {
	AccessLog AccessLog `yaml:"access_log" json:"access_log,omitempty"`
	Tracing   Tracing   `yaml:"tracing" json:"tracing,omitempty"`
	// Pprof serves /debug/pprof on the admin listener.
	Pprof bool `yaml:"pprof" json:"pprof,omitempty"`
}

// AccessLog configures the per-request log.
type AccessLog struct {
	// Format is json (default) or combined.
	Format string `yaml:"format" json:"format,omitempty" jsonschema:"enum=json,enum=combined"`
	// Path is stdout (default), stderr, off, or a file path.
	Path string `yaml:"path" json:"path,omitempty"`
	// SampleSuccess is the share of successful requests logged, 0..1.
	// Default 1. Errors (status >= 400) are always logged.
	SampleSuccess *float64 `yaml:"sample_success" json:"sample_success,omitempty"`
}

// Tracing configures OpenTelemetry export.
type Tracing struct {
	// OTLPEndpoint is where spans go; empty (default) = tracing off.
	OTLPEndpoint string `yaml:"otlp_endpoint" json:"otlp_endpoint,omitempty"`
	// Protocol is http (default) or grpc.
	Protocol string `yaml:"protocol" json:"protocol,omitempty" jsonschema:"enum=http,enum=grpc"`
	// SampleRatio is the share of traces sampled. Default 0.01.
	SampleRatio *float64 `yaml:"sample_ratio" json:"sample_ratio,omitempty"`
}

// Upstream is a named pool of targets.
type Upstream struct {
	// Name is how routes refer to this upstream.
	Name string `yaml:"name" json:"name"`
	// Balancer is round_robin (default), least_conn, p2c_ewma,
	// consistent_hash or random.
	Balancer string `yaml:"balancer" json:"balancer,omitempty" jsonschema:"enum=round_robin,enum=least_conn,enum=p2c_ewma,enum=consistent_hash,enum=random"`
	// HashOn is what consistent_hash hashes: ip, consumer, header:NAME, cookie:NAME.
	HashOn string `yaml:"hash_on" json:"hash_on,omitempty"`
	// Targets are the instances; a path in a target URL is prepended to the
	// forwarded path.
	Targets   []Target  `yaml:"targets" json:"targets"`
	Discovery Discovery `yaml:"discovery" json:"discovery,omitempty"`
	// PreserveHost sends the client's Host; false (default) sends the
	// target's host, with the original in X-Forwarded-Host.
	PreserveHost    bool             `yaml:"preserve_host" json:"preserve_host,omitempty"`
	HealthCheck     *HealthCheck     `yaml:"health_check" json:"health_check,omitempty"`
	PassiveHealth   *PassiveHealth   `yaml:"passive_health" json:"passive_health,omitempty"`
	CircuitBreaker  *CircuitBreaker  `yaml:"circuit_breaker" json:"circuit_breaker,omitempty"`
	FailureStatuses []int            `yaml:"failure_statuses" json:"failure_statuses,omitempty"`
	Timeouts        UpstreamTimeouts `yaml:"timeouts" json:"timeouts,omitempty"`
	Retries         *Retries         `yaml:"retries" json:"retries,omitempty"`
	// MaxConnections caps connections per target; 0 (default) = unlimited.
	MaxConnections int `yaml:"max_connections" json:"max_connections,omitempty"`
	// Protocol towards the targets: auto (default: HTTP/1.1 for http://,
	// HTTP/2 by ALPN for https://), http1, or h2c (HTTP/2 with prior
	// knowledge over plain TCP, e.g. for gRPC servers).
	Protocol string      `yaml:"protocol" json:"protocol,omitempty" jsonschema:"enum=auto,enum=http1,enum=h2c"`
	TLS      UpstreamTLS `yaml:"tls" json:"tls,omitempty"`
}

// Target is one instance of an upstream.
type Target struct {
	// URL is scheme://host:port[/path].
	URL string `yaml:"url" json:"url"`
	// Weight is the share of traffic relative to the others. Default 1.
	Weight int `yaml:"weight" json:"weight,omitempty"`
}

// Discovery finds targets at run time.
type Discovery struct {
	// DNSSRV is an SRV name whose records become targets.
	DNSSRV string `yaml:"dns_srv" json:"dns_srv,omitempty"`
	// Resolver is the DNS server (host:port) asked; default: the
	// nameservers of /etc/resolv.conf.
	Resolver string `yaml:"resolver" json:"resolver,omitempty"`
	// MinTTL and MaxTTL bound how often names are re-resolved: on the
	// records' TTL, but at most every min_ttl (default 1s) and at least
	// every max_ttl (default 5m).
	MinTTL Duration `yaml:"min_ttl" json:"min_ttl,omitempty"`
	MaxTTL Duration `yaml:"max_ttl" json:"max_ttl,omitempty"`
}

// HealthCheck configures active health checks.
type HealthCheck struct {
	Path               string   `yaml:"path" json:"path,omitempty"`
	Interval           Duration `yaml:"interval" json:"interval,omitempty"`
	Timeout            Duration `yaml:"timeout" json:"timeout,omitempty"`
	HealthyThreshold   int      `yaml:"healthy_threshold" json:"healthy_threshold,omitempty"`
	UnhealthyThreshold int      `yaml:"unhealthy_threshold" json:"unhealthy_threshold,omitempty"`
	ExpectedStatus     string   `yaml:"expected_status" json:"expected_status,omitempty"`
}

// PassiveHealth configures outlier ejection.
type PassiveHealth struct {
	ConsecutiveFailures int      `yaml:"consecutive_failures" json:"consecutive_failures,omitempty"`
	EjectionTime        Duration `yaml:"ejection_time" json:"ejection_time,omitempty"`
	MaxEjectedPercent   int      `yaml:"max_ejected_percent" json:"max_ejected_percent,omitempty"`
}

// CircuitBreaker configures the per-target breaker.
type CircuitBreaker struct {
	FailureRatio     float64  `yaml:"failure_ratio" json:"failure_ratio,omitempty"`
	MinRequests      int      `yaml:"min_requests" json:"min_requests,omitempty"`
	OpenFor          Duration `yaml:"open_for" json:"open_for,omitempty"`
	HalfOpenRequests int      `yaml:"half_open_requests" json:"half_open_requests,omitempty"`
}

// UpstreamTimeouts bound the connection to a target.
type UpstreamTimeouts struct {
	// Connect bounds dialing a target. Default 2s.
	Connect Duration `yaml:"connect" json:"connect,omitempty"`
	// ResponseHeader bounds the wait for response headers. Default 30s.
	ResponseHeader Duration `yaml:"response_header" json:"response_header,omitempty"`
	// IdleConnection closes pooled connections idle this long. Default 90s.
	IdleConnection Duration `yaml:"idle_connection" json:"idle_connection,omitempty"`
}

// Retries configures retrying failed attempts.
type Retries struct {
	Attempts      int      `yaml:"attempts" json:"attempts,omitempty"`
	On            []string `yaml:"on" json:"on,omitempty"`
	BudgetPercent int      `yaml:"budget_percent" json:"budget_percent,omitempty"`
	MinPerSecond  int      `yaml:"min_per_second" json:"min_per_second,omitempty"`
}

// UpstreamTLS configures TLS towards targets.
type UpstreamTLS struct {
	CAFile             string `yaml:"ca_file" json:"ca_file,omitempty"`
	CertFile           string `yaml:"cert_file" json:"cert_file,omitempty"`
	KeyFile            string `yaml:"key_file" json:"key_file,omitempty"`
	ServerName         string `yaml:"server_name" json:"server_name,omitempty"`
	InsecureSkipVerify bool   `yaml:"insecure_skip_verify" json:"insecure_skip_verify,omitempty"`
}

// Consumer is a known client.
type Consumer struct {
	Name         string             `yaml:"name" json:"name"`
	Roles        []string           `yaml:"roles" json:"roles,omitempty"`
	APIKeys      []string           `yaml:"api_keys" json:"api_keys,omitempty"`
	BasicAuth    *BasicAuth         `yaml:"basic_auth" json:"basic_auth,omitempty"`
	Certificates []CertificateMatch `yaml:"certificates" json:"certificates,omitempty"`
	RateLimits   []RateLimit        `yaml:"rate_limits" json:"rate_limits,omitempty"`
	// Quotas replace the route's quotas for this consumer, on routes that
	// have quotas.
	Quotas []Quota `yaml:"quotas" json:"quotas,omitempty"`
}

// BasicAuth is one user for HTTP Basic authentication.
type BasicAuth struct {
	Username     string `yaml:"username" json:"username"`
	PasswordHash string `yaml:"password_hash" json:"password_hash"`
}

// CertificateMatch identifies a client certificate.
type CertificateMatch struct {
	Subject string `yaml:"subject" json:"subject,omitempty"`
	SAN     string `yaml:"san" json:"san,omitempty"`
}

// APIKeySource says where API keys are read.
type APIKeySource struct {
	// Header carrying the key. Default X-API-Key.
	Header string `yaml:"header" json:"header,omitempty"`
	// Query parameter carrying the key; empty (default) = not read.
	Query string `yaml:"query" json:"query,omitempty"`
}

// JWTProvider is a JWT issuer.
type JWTProvider struct {
	Name                string            `yaml:"name" json:"name"`
	Issuer              string            `yaml:"issuer" json:"issuer,omitempty"`
	Audiences           []string          `yaml:"audiences" json:"audiences,omitempty"`
	JWKSURL             string            `yaml:"jwks_url" json:"jwks_url,omitempty"`
	Algorithms          []string          `yaml:"algorithms" json:"algorithms,omitempty"`
	JWKSRefetchCooldown Duration          `yaml:"jwks_refetch_cooldown" json:"jwks_refetch_cooldown,omitempty"`
	Keys                []JWTKey          `yaml:"keys" json:"keys,omitempty"`
	ConsumerClaim       string            `yaml:"consumer_claim" json:"consumer_claim,omitempty"`
	RolesClaim          string            `yaml:"roles_claim" json:"roles_claim,omitempty"`
	ClockSkew           Duration          `yaml:"clock_skew" json:"clock_skew,omitempty"`
	ClaimsToHeaders     map[string]string `yaml:"claims_to_headers" json:"claims_to_headers,omitempty"`
}

// JWTKey is a static verification key.
type JWTKey struct {
	KID           string `yaml:"kid" json:"kid,omitempty"`
	Algorithm     string `yaml:"algorithm" json:"algorithm"`
	PublicKeyFile string `yaml:"public_key_file" json:"public_key_file,omitempty"`
	Secret        string `yaml:"secret" json:"secret,omitempty"`
}

// OAuth2Provider is an RFC 7662 introspection endpoint.
type OAuth2Provider struct {
	Name             string   `yaml:"name" json:"name"`
	IntrospectionURL string   `yaml:"introspection_url" json:"introspection_url"`
	ClientID         string   `yaml:"client_id" json:"client_id,omitempty"`
	ClientSecret     string   `yaml:"client_secret" json:"client_secret,omitempty"`
	CacheTTL         Duration `yaml:"cache_ttl" json:"cache_ttl,omitempty"`
	ConsumerClaim    string   `yaml:"consumer_claim" json:"consumer_claim,omitempty"`
	RolesClaim       string   `yaml:"roles_claim" json:"roles_claim,omitempty"`
}

// ForwardAuth is an external authorization service.
type ForwardAuth struct {
	Name        string   `yaml:"name" json:"name"`
	URL         string   `yaml:"url" json:"url"`
	CopyHeaders []string `yaml:"copy_headers" json:"copy_headers,omitempty"`
}

// RoutePolicies are the keys a route shares with defaults and policy sets.
// Pointers and nil slices mean "not set here", so layering can tell an
// explicit value from an absent one.
type RoutePolicies struct {
	// Auth lists accepted authentication methods; any one suffices. Absent: public.
	Auth []string `yaml:"auth" json:"auth,omitempty"`
	// Allow restricts authenticated clients (403 otherwise).
	Allow *Allow `yaml:"allow" json:"allow,omitempty"`
	// HideCredentials removes the credential used before forwarding. Default true.
	HideCredentials *bool `yaml:"hide_credentials" json:"hide_credentials,omitempty"`
	// AllowMethodOverride honours X-HTTP-Method-Override before routing and RBAC.
	AllowMethodOverride *bool `yaml:"allow_method_override" json:"allow_method_override,omitempty"`
	// AllowEncodedSlash keeps %2F and %5C in this route's paths instead of 400.
	AllowEncodedSlash *bool        `yaml:"allow_encoded_slash" json:"allow_encoded_slash,omitempty"`
	RateLimits        []RateLimit  `yaml:"rate_limits" json:"rate_limits,omitempty"`
	Quotas            []Quota      `yaml:"quotas" json:"quotas,omitempty"`
	Concurrency       *Concurrency `yaml:"concurrency" json:"concurrency,omitempty"`
	Cache             *Cache       `yaml:"cache" json:"cache,omitempty"`
	CORS              *CORS        `yaml:"cors" json:"cors,omitempty"`
	IP                *IPFilter    `yaml:"ip" json:"ip,omitempty"`
	RequestHeaders    *HeaderRules `yaml:"request_headers" json:"request_headers,omitempty"`
	ResponseHeaders   *HeaderRules `yaml:"response_headers" json:"response_headers,omitempty"`
	// MaxBodyBytes bounds the request body (413 above). Default 10MiB.
	MaxBodyBytes *Size `yaml:"max_body_bytes" json:"max_body_bytes,omitempty"`
	// Timeout is the time until the upstream's response headers, retries
	// included (504 after). Default 60s.
	Timeout *Duration `yaml:"timeout" json:"timeout,omitempty"`
	// Compression compresses answers for clients that accept it. Absent: off.
	Compression *Compression `yaml:"compression" json:"compression,omitempty"`
	Mirror      *Mirror      `yaml:"mirror" json:"mirror,omitempty"`
	Hedge       *Hedge       `yaml:"hedge" json:"hedge,omitempty"`
	Deprecated  *Deprecated  `yaml:"deprecated" json:"deprecated,omitempty"`
}

// Route maps matching requests to one action.
type Route struct {
	// Name identifies the route in logs, metrics and the admin API.
	// Default: "route-N" for the N-th route (from 0).
	Name string `yaml:"name" json:"name,omitempty"`
	// Use lists policy sets applied before the route's own keys.
	Use           []string `yaml:"use" json:"use,omitempty"`
	Match         Match    `yaml:"match" json:"match"`
	RoutePolicies `yaml:",inline" json:",inline"`
	// Upstream is the action "proxy": one upstream name, or a weighted list.
	Upstream *UpstreamRef `yaml:"upstream" json:"upstream,omitempty"`
	// StickyBy keeps a client on one side of a weighted split: consumer,
	// ip or header:NAME.
	StickyBy string   `yaml:"sticky_by" json:"sticky_by,omitempty"`
	Rewrite  *Rewrite `yaml:"rewrite" json:"rewrite,omitempty"`
	// RequestTransform and ResponseTransform reshape proxied and
	// aggregated traffic. Absent: untouched.
	RequestTransform  *RequestTransform  `yaml:"request_transform" json:"request_transform,omitempty"`
	ResponseTransform *ResponseTransform `yaml:"response_transform" json:"response_transform,omitempty"`
	Aggregate         *Aggregate         `yaml:"aggregate" json:"aggregate,omitempty"`
	Respond           *Respond           `yaml:"respond" json:"respond,omitempty"`
}

// Match says which requests a route takes.
type Match struct {
	// Hosts: exact names or "*.suffix" (one or more labels). Absent: any host.
	Hosts []string `yaml:"hosts" json:"hosts,omitempty"`
	// PathPrefix matches whole segments: /api matches /api and /api/x.
	PathPrefix string `yaml:"path_prefix" json:"path_prefix,omitempty"`
	// Path is an exact path; {name} segments capture a parameter.
	Path string `yaml:"path" json:"path,omitempty"`
	// PathRegex is an RE2 expression matched against the whole normalized
	// path; named groups become parameters.
	PathRegex string `yaml:"path_regex" json:"path_regex,omitempty"`
	// Methods absent: any; GET also matches HEAD.
	Methods []string `yaml:"methods" json:"methods,omitempty"`
	// Headers must all be present with exactly these values.
	Headers map[string]string `yaml:"headers" json:"headers,omitempty"`
	// MediaType must be one of the media ranges of the request's Accept
	// header (parameters and case ignored), e.g.
	// application/vnd.shop.v2+json: versioning by media type. Absent:
	// Accept is not looked at.
	MediaType string `yaml:"media_type" json:"media_type,omitempty"`
}

// UpstreamRef names the upstream(s) of a proxy route.
type UpstreamRef struct {
	// Name is set for the single-upstream form.
	Name string
	// Split is set for the weighted-list form.
	Split []WeightedUpstream
}

// WeightedUpstream is one side of a traffic split.
type WeightedUpstream struct {
	Name   string `yaml:"name" json:"name"`
	Weight int    `yaml:"weight" json:"weight"`
}

// Rewrite changes the path sent upstream.
type Rewrite struct {
	// StripPrefix removes this leading path (whole segments).
	StripPrefix string `yaml:"strip_prefix" json:"strip_prefix,omitempty"`
	// Path replaces the path; {param} values are re-escaped.
	Path string `yaml:"path" json:"path,omitempty"`
	// Regex (RE2) is matched against the escaped path and the match is
	// replaced by Replace ($1, ${name} refer to groups); applied before
	// strip_prefix. Absent: no regex rewrite.
	Regex   string `yaml:"regex" json:"regex,omitempty"`
	Replace string `yaml:"replace" json:"replace,omitempty"`
}

// RequestTransform edits the request before the action.
type RequestTransform struct {
	// Method replaces the request method sent upstream. Absent: unchanged.
	Method string `yaml:"method" json:"method,omitempty"`
	// Query edits the query string sent upstream.
	Query *QueryRules `yaml:"query" json:"query,omitempty"`
}

// QueryRules edit query parameters, in the order rename, remove, set, add.
type QueryRules struct {
	// Rename: old name -> new name (every value moves).
	Rename map[string]string `yaml:"rename" json:"rename,omitempty"`
	Remove []string          `yaml:"remove" json:"remove,omitempty"`
	// Set replaces every value; Add appends one. Values are templates
	// ({consumer}, {param.id}, {header.X}, ...).
	Set map[string]string `yaml:"set" json:"set,omitempty"`
	Add map[string]string `yaml:"add" json:"add,omitempty"`
}

// ResponseTransform edits the answer after the action.
type ResponseTransform struct {
	// StatusMap replaces answer statuses: {"404": 204}.
	StatusMap map[string]int `yaml:"status_map" json:"status_map,omitempty"`
	// Allow keeps only these (dotted) JSON fields; Deny removes them. At
	// most one of the two. Only JSON answers are touched.
	Allow []string `yaml:"allow_fields" json:"allow_fields,omitempty"`
	Deny  []string `yaml:"deny_fields" json:"deny_fields,omitempty"`
	// MaxBodyBytes bounds a JSON answer that is filtered; a larger one is
	// refused with 502 rather than sent unfiltered. Default 1MiB.
	MaxBodyBytes Size `yaml:"max_body_bytes" json:"max_body_bytes,omitempty"`
}

// Allow restricts authenticated clients.
type Allow struct {
	Roles     []string `yaml:"roles" json:"roles,omitempty"`
	Consumers []string `yaml:"consumers" json:"consumers,omitempty"`
	Scopes    []string `yaml:"scopes" json:"scopes,omitempty"`
}

// RateLimit is one GCRA limit.
type RateLimit struct {
	Name   string   `yaml:"name" json:"name,omitempty"`
	Limit  int      `yaml:"limit" json:"limit"`
	Window Duration `yaml:"window" json:"window"`
	// By is consumer, ip, route or header:NAME.
	By    string `yaml:"by" json:"by,omitempty"`
	Burst int    `yaml:"burst" json:"burst,omitempty"`
}

// Quota is a limit over a calendar period.
type Quota struct {
	Limit    int    `yaml:"limit" json:"limit"`
	Period   string `yaml:"period" json:"period" jsonschema:"enum=day,enum=week,enum=month"`
	By       string `yaml:"by" json:"by,omitempty"`
	TimeZone string `yaml:"time_zone" json:"time_zone,omitempty"`
}

// Concurrency caps in-flight requests.
type Concurrency struct {
	Max              int      `yaml:"max" json:"max,omitempty"`
	Queue            int      `yaml:"queue" json:"queue,omitempty"`
	QueueTimeout     Duration `yaml:"queue_timeout" json:"queue_timeout,omitempty"`
	Adaptive         bool     `yaml:"adaptive" json:"adaptive,omitempty"`
	PerConsumerShare float64  `yaml:"per_consumer_share" json:"per_consumer_share,omitempty"`
}

// Cache configures response caching.
type Cache struct {
	TTL         Duration `yaml:"ttl" json:"ttl,omitempty"`
	Vary        []string `yaml:"vary" json:"vary,omitempty"`
	Query       string   `yaml:"query" json:"query,omitempty" jsonschema:"enum=keep,enum=sort,enum=ignore"`
	IgnoreQuery []string `yaml:"ignore_query" json:"ignore_query,omitempty"`
	// HonorClientNoCache lets a client's Cache-Control no-cache, max-age=0
	// or no-store skip the stored answer. Default false: clients cannot
	// force traffic to the upstream.
	HonorClientNoCache bool `yaml:"honor_client_no_cache" json:"honor_client_no_cache,omitempty"`
	// MaxObjectBytes bounds one stored answer's body; larger answers are
	// streamed unstored. Default 8MiB.
	MaxObjectBytes Size `yaml:"max_object_bytes" json:"max_object_bytes,omitempty"`
}

// CORS configures cross-origin resource sharing.
type CORS struct {
	Origins     []string `yaml:"origins" json:"origins,omitempty"`
	Methods     []string `yaml:"methods" json:"methods,omitempty"`
	Headers     []string `yaml:"headers" json:"headers,omitempty"`
	Credentials bool     `yaml:"credentials" json:"credentials,omitempty"`
	MaxAge      Duration `yaml:"max_age" json:"max_age,omitempty"`
}

// IPFilter allows or denies client addresses by CIDR.
type IPFilter struct {
	Allow []string `yaml:"allow" json:"allow,omitempty"`
	Deny  []string `yaml:"deny" json:"deny,omitempty"`
}

// HeaderRules edit headers. Values may hold templates such as {consumer}.
type HeaderRules struct {
	Set    map[string]string `yaml:"set" json:"set,omitempty"`
	Add    map[string]string `yaml:"add" json:"add,omitempty"`
	Remove []string          `yaml:"remove" json:"remove,omitempty"`
}

// Compression configures response compression.
type Compression struct {
	// MinBytes: smaller answers (by Content-Length) are sent as they are.
	// Default 1KiB.
	MinBytes Size `yaml:"min_bytes" json:"min_bytes,omitempty"`
	// Types are the compressible media types; a trailing "/*" matches a
	// whole family. Default: text/*, JSON, JavaScript, XML, SVG, wasm.
	Types []string `yaml:"types" json:"types,omitempty"`
	// Algorithms offered, in the server's order of preference among those
	// the client accepts equally: zstd, br, gzip (default all three).
	Algorithms []string `yaml:"algorithms" json:"algorithms,omitempty"`
}

// Mirror copies a share of requests to a shadow upstream.
type Mirror struct {
	Upstream string  `yaml:"upstream" json:"upstream"`
	Percent  float64 `yaml:"percent" json:"percent,omitempty"`
}

// Hedge sends a second attempt when the first is slow.
type Hedge struct {
	// After is how long the first attempt may go without response
	// headers before another is sent: a duration (50ms), or a percentile
	// of the upstream's response-header latency over the last 10-20 s
	// (p50 to p99.9, e.g. p95; no hedging until enough answers were
	// seen: 100, or 5/(1-p) for high percentiles). Required.
	After HedgeDelay `yaml:"after" json:"after,omitzero"`
	// Min is the shortest wait when After is a percentile, however fast
	// the upstream answers (default 1ms).
	Min Duration `yaml:"min" json:"min,omitempty"`
	Max int      `yaml:"max" json:"max,omitempty"`
}

// Deprecated marks a route as deprecated.
type Deprecated struct {
	// Since is when the route was (or will be) deprecated, RFC 3339; it
	// becomes the Deprecation header. Absent: "@0" (deprecated, no date).
	Since string `yaml:"since" json:"since,omitempty"`
	// Sunset is when the route stops answering, RFC 3339 (Sunset header).
	Sunset string `yaml:"sunset" json:"sunset,omitempty"`
	// Link is the migration guide (Link rel="deprecation" and "sunset").
	Link string `yaml:"link" json:"link,omitempty"`
}

// Aggregate composes several upstream calls into one JSON answer.
type Aggregate struct {
	// Timeout bounds the whole fan-out (504 after). Default 10s, and
	// never more than the route's timeout.
	Timeout Duration `yaml:"timeout" json:"timeout,omitempty"`
	// MaxBackendBytes bounds one backend's answer; a larger one is that
	// backend's failure. Default 1MiB.
	MaxBackendBytes Size               `yaml:"max_backend_bytes" json:"max_backend_bytes,omitempty"`
	Backends        []AggregateBackend `yaml:"backends" json:"backends"`
}

// AggregateBackend is one call of an aggregate.
type AggregateBackend struct {
	Upstream string `yaml:"upstream" json:"upstream"`
	Path     string `yaml:"path" json:"path"`
	As       string `yaml:"as" json:"as,omitempty"`
	// Fields keeps only these fields of the answer: "name", or
	// "name:new_name" to rename. Absent: keep all.
	Fields   []string `yaml:"fields" json:"fields,omitempty"`
	Optional bool     `yaml:"optional" json:"optional,omitempty"`
	After    string   `yaml:"after" json:"after,omitempty"`
}

// Respond answers with a fixed response.
type Respond struct {
	// Status code. Default 200.
	Status  int               `yaml:"status" json:"status,omitempty"`
	Body    string            `yaml:"body" json:"body,omitempty"`
	Headers map[string]string `yaml:"headers" json:"headers,omitempty"`
}

// DemoUpstream is a built-in echo service.
type DemoUpstream struct {
	// Name appears in the echo answers, so balancing is visible.
	Name string `yaml:"name" json:"name,omitempty"`
	// Address is the loopback host:port it listens on.
	Address string `yaml:"address" json:"address"`
}
