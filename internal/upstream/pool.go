// Package upstream holds the named pools of targets that proxy routes
// forward to: each Pool owns its targets, the balancer that picks one per
// request, and its own tuned *http.Transport (so connection reuse, limits
// and timeouts are per upstream, and dropping a pool on reload closes only
// its connections).
//
// Balancers (balancer.go, hash.go): smooth weighted round robin (3:1
// gives A A B A, not A A A B), least_conn, p2c_ewma, consistent_hash and
// random. Every one skips targets that failed active health checks
// (health.go), were ejected by passive health (passive.go) or whose
// circuit breaker is open (breaker.go). A pick reads atomics only: no lock
// is taken per request. Retries are bounded by a lock-free budget
// (budget.go). The API the proxy and discovery use is in seams.go.
package upstream

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/portunus-gw/portunus/internal/config"
	"github.com/portunus-gw/portunus/internal/pipeline"
)

// Defaults for zero timeouts (the config contract's defaults, repeated
// so a Pool built from an un-defaulted config still behaves).
const (
	DefaultConnectTimeout        = 2 * time.Second
	DefaultResponseHeaderTimeout = 30 * time.Second
	DefaultIdleConnTimeout       = 90 * time.Second
)

// Pool is one named upstream: its targets, its balancer and its transport.
// A Pool is safe for concurrent use. The target set and its balancer are
// one immutable view behind an atomic pointer: a pick loads it and takes
// no lock; SetTargets (discovery) swaps in a new one.
type Pool struct {
	name         string
	preserveHost bool
	balancer     string
	hashOn       hashKey
	view         atomic.Pointer[view]
	transport    *http.Transport
	rt           http.RoundTripper // fastclient.go: h1 over transport
	// named holds a transport per https target that discovery found
	// under a host name, whose TLS server name is that name (the pool's
	// transport would use the address); keyed by the target's Host. nil
	// without such targets, or when tls.server_name is set.
	named      atomic.Pointer[map[string]*http.Transport]
	serverName string // upstreams[].tls.server_name
	// namedRetiring are the hosts in named whose targets left at the
	// last change (kept one round; guarded by mu).
	namedRetiring map[string]bool
	failures      *failureSet
	retries       *RetryPolicy
	budget        Budget
	health        *poolHealth
	// latency is the histogram of successful attempts' latencies
	// (latency.go); nil until a route hedges by percentile.
	latency atomic.Pointer[LatencyStats]

	// mu serializes SetTargets, Start and Close (never a pick).
	mu      sync.Mutex
	started bool
	closed  bool
	ctx     context.Context
	cancel  context.CancelFunc
	checker *checker
	stops   map[*targetState]chan struct{}
}

// view is one target set and the balancer built over it.
type view struct {
	targets []*Target
	picker  picker
}

// NewPool builds a pool from cfg: parses and checks the targets, builds
// the balancer and a dedicated transport. Relative TLS file paths must
// already be resolved by the config loader. Building a pool starts
// nothing: Start begins its health checks.
func NewPool(cfg config.Upstream, opts ...Option) (*Pool, error) {
	if cfg.Name == "" {
		return nil, errors.New("upstream: name is empty")
	}
	po := poolOptions{obs: nopObserver{}, clock: monoNow}
	for _, o := range opts {
		o(&po)
	}
	p := &Pool{name: cfg.Name, preserveHost: cfg.PreserveHost, failures: newFailureSet(cfg.FailureStatuses)}
	rp, err := ParseRetries(cfg.Retries)
	if err != nil {
		return nil, fmt.Errorf("upstream %s: %w", cfg.Name, err)
	}
	p.retries = rp
	p.budget.init(cfg.Retries)
	switch cfg.Balancer {
	case "":
		p.balancer = "round_robin"
	case "round_robin", "least_conn", "p2c_ewma", "consistent_hash", "random":
		p.balancer = cfg.Balancer
	default:
		return nil, fmt.Errorf("upstream %s: balancer %q: want round_robin, least_conn, p2c_ewma, consistent_hash or random", cfg.Name, cfg.Balancer)
	}
	if p.hashOn, err = parseHashOn(cfg.HashOn); err != nil {
		return nil, fmt.Errorf("upstream %s: %w", cfg.Name, err)
	}
	active, err := newActiveConfig(cfg.HealthCheck)
	if err != nil {
		return nil, fmt.Errorf("upstream %s: %w", cfg.Name, err)
	}
	p.health = &poolHealth{
		name: cfg.Name, clock: po.clock, obs: po.obs, pool: p, active: active,
		passive: newPassiveConfig(cfg.PassiveHealth), breaker: newBreakerConfig(cfg.CircuitBreaker),
	}
	targets := make([]*Target, 0, len(cfg.Targets))
	for i, tc := range cfg.Targets {
		t, err := newTarget(tc)
		if err != nil {
			return nil, fmt.Errorf("upstream %s: targets[%d]: %w", cfg.Name, i, err)
		}
		t.targetState = newTargetState(p.health)
		targets = append(targets, t)
	}
	p.view.Store(&view{targets: targets, picker: newPicker(p.balancer, p.hashOn, targets)})
	tr, err := newTransport(cfg)
	if err != nil {
		return nil, fmt.Errorf("upstream %s: %w", cfg.Name, err)
	}
	p.transport = tr
	p.serverName = cfg.TLS.ServerName
	p.rt = newRoundTripper(cfg, namedTransport{p})
	return p, nil
}

func newTarget(tc config.Target) (*Target, error) {
	u, err := url.Parse(tc.URL)
	if err != nil {
		return nil, fmt.Errorf("invalid url %q: %v", tc.URL, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("url %q: scheme must be http or https", tc.URL)
	}
	if u.Host == "" || u.Opaque != "" {
		return nil, fmt.Errorf("url %q: no host", tc.URL)
	}
	if u.User != nil || u.RawQuery != "" || u.ForceQuery || u.Fragment != "" {
		return nil, fmt.Errorf("url %q: must hold only scheme, host, port and path", tc.URL)
	}
	if tc.Weight < 0 {
		return nil, fmt.Errorf("url %q: weight %d is negative", tc.URL, tc.Weight)
	}
	w := tc.Weight
	if w == 0 {
		w = 1
	}
	prefix := strings.TrimRight(u.EscapedPath(), "/")
	base := &url.URL{Scheme: u.Scheme, Host: u.Host}
	if prefix != "" {
		base.Path = strings.TrimRight(u.Path, "/")
		base.RawPath = prefix
	}
	return &Target{URL: base, Weight: w, Host: u.Host, Authority: u.Host, PathPrefix: prefix, str: base.String()}, nil
}

// newTransport builds the pool's own transport. Every choice here is about
// a gateway talking to a few known hosts on behalf of many clients.
func newTransport(cfg config.Upstream) (*http.Transport, error) {
	connect := orDefault(cfg.Timeouts.Connect.D(), DefaultConnectTimeout)
	dialer := &net.Dialer{
		// A target that does not accept within connect is down for this
		// request; the balancer (later: retries) moves on.
		Timeout: connect,
		// TCP keep-alive finds half-dead pooled connections before a
		// request is sent on them.
		KeepAlive: 30 * time.Second,
	}
	tr := &http.Transport{
		// Never honour HTTP_PROXY and friends for upstream traffic: the
		// operator's environment must not reroute what the config says.
		Proxy:       nil,
		DialContext: dialer.DialContext,
		// All connections go to few hosts, so the per-host idle limit is
		// the one that matters; the default 2 would churn connections
		// under any real load.
		MaxIdleConns:        0,
		MaxIdleConnsPerHost: 1024,
		MaxConnsPerHost:     cfg.MaxConnections,
		// Pooled connections are closed after this idle time, before the
		// upstream's own keep-alive timeout typically drops them.
		IdleConnTimeout: orDefault(cfg.Timeouts.IdleConnection.D(), DefaultIdleConnTimeout),
		// The per-attempt bound on waiting for response headers; the
		// route timeout (proxy) bounds the whole wait.
		ResponseHeaderTimeout: orDefault(cfg.Timeouts.ResponseHeader.D(), DefaultResponseHeaderTimeout),
		TLSHandshakeTimeout:   connect + 3*time.Second,
		ExpectContinueTimeout: time.Second,
		// Accept-Encoding passes through untouched and bodies are never
		// decoded: the client negotiates with the upstream, not with us.
		DisableCompression: true,
	}
	protos, err := protocols(cfg.Protocol)
	if err != nil {
		return nil, err
	}
	tr.Protocols = protos
	if protos.HTTP2() || protos.UnencryptedHTTP2() {
		// One HTTP/2 connection carries many streams; when the upstream's
		// SETTINGS_MAX_CONCURRENT_STREAMS is reached, more connections are
		// opened rather than queueing requests (gRPC streams are long).
		tr.HTTP2 = &http.HTTP2Config{
			StrictMaxConcurrentRequests: false,
			// Pings find a dead HTTP/2 connection whose TCP connection
			// still looks open, before requests are lost on it.
			SendPingTimeout: 30 * time.Second,
			PingTimeout:     15 * time.Second,
		}
	}
	tc, err := tlsConfig(cfg.TLS)
	if err != nil {
		return nil, err
	}
	tr.TLSClientConfig = tc
	return tr, nil
}

// protocols maps upstreams[].protocol to the transport's protocol set.
//
//   - auto: HTTP/1.1 to http:// targets, HTTP/2 by ALPN (falling back to
//     HTTP/1.1) to https:// targets. A WebSocket upgrade still goes over
//     HTTP/1.1: the transport dials those without offering h2.
//   - http1: HTTP/1.1 only.
//   - h2c: HTTP/2 only; with prior knowledge over plain TCP to http://
//     targets and over TLS (ALPN h2) to https:// ones. No HTTP/1.1
//     fallback, so WebSocket upgrades to such a pool fail (502).
func protocols(p string) (*http.Protocols, error) {
	var protos http.Protocols
	switch p {
	case "", "auto":
		protos.SetHTTP1(true)
		protos.SetHTTP2(true)
	case "http1":
		protos.SetHTTP1(true)
	case "h2c":
		protos.SetUnencryptedHTTP2(true)
		protos.SetHTTP2(true)
	default:
		return nil, fmt.Errorf("protocol %q: want auto, http1 or h2c", p)
	}
	return &protos, nil
}

// tlsConfig builds the client TLS config for https targets. With no CA
// file the system roots verify targets.
func tlsConfig(c config.UpstreamTLS) (*tls.Config, error) {
	tc := &tls.Config{
		MinVersion:         tls.VersionTLS12,
		ServerName:         c.ServerName,
		InsecureSkipVerify: c.InsecureSkipVerify, //nolint:gosec // explicit opt-in in config
	}
	if c.CAFile != "" {
		pem, err := os.ReadFile(c.CAFile)
		if err != nil {
			return nil, fmt.Errorf("tls.ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("tls.ca_file %s: no PEM certificates", c.CAFile)
		}
		tc.RootCAs = pool
	}
	if c.CertFile != "" || c.KeyFile != "" {
		cert, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("tls client certificate: %w", err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}

func orDefault(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

// Name is the upstream's name.
func (p *Pool) Name() string { return p.name }

// PreserveHost reports whether the client's Host is sent upstream.
func (p *Pool) PreserveHost() bool { return p.preserveHost }

// Balancer is the balancer's name (round_robin when not configured).
func (p *Pool) Balancer() string { return p.balancer }

// Targets returns the pool's current targets (read-only; a new slice after
// each SetTargets).
func (p *Pool) Targets() []*Target { return p.view.Load().targets }

// Pick returns the target for this request, or nil when the pool has no
// usable target. Balancers that hash a header or cookie need the request:
// use PickFor.
func (p *Pool) Pick(s *pipeline.State) *Target { return p.PickFor(nil, s, nil) }

// RoundTripper is what requests to this pool are sent with. It is the seam
// where a later issue swaps in a faster client.
func (p *Pool) RoundTripper() http.RoundTripper { return p.rt }

// Close stops the pool's health checks and closes its idle connections.
// It is called when a reload drops the pool. Requests in flight finish; a
// connection they return to the idle pool afterwards is closed after
// timeouts.idle_connection.
func (p *Pool) Close() error {
	p.mu.Lock()
	p.closed = true
	if p.cancel != nil {
		p.cancel()
		p.checker.closeIdle()
	}
	if p.started {
		for _, t := range p.Targets() {
			p.health.obs.Forget(t.str)
		}
	}
	p.mu.Unlock()
	closeRoundTripper(p.rt)
	return nil
}
