// Package upstream holds the named pools of targets that proxy routes
// forward to: each Pool owns its targets, the balancer that picks one per
// request, and its own tuned *http.Transport (so connection reuse, limits
// and timeouts are per upstream, and dropping a pool on reload closes only
// its connections).
//
// Balancing is smooth weighted round robin: weights 3:1 give A A B A, not
// A A A B. The sequence is computed once at construction, so a pick is an
// atomic increment and an index: no lock is taken per request.
package upstream

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
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

// Target is one instance of an upstream. It is immutable after NewPool,
// but for its in-flight counter.
type Target struct {
	// URL is scheme + host; URL.Path is the prefix prepended to forwarded
	// paths ("" or "/x").
	URL *url.URL
	// Weight is the target's share of traffic relative to the others.
	Weight int
	// Host is URL.Host, precomputed.
	Host string
	// PathPrefix is URL's escaped path with no trailing '/' ("" for none).
	PathPrefix string

	str string
	// inFlight counts requests sent to this target and not yet finished
	// (the one mutable field: the admin API reports it, least_conn will
	// read it).
	inFlight atomic.Int64
}

// Begin counts a request to this target as in flight; End must follow.
func (t *Target) Begin() { t.inFlight.Add(1) }

// End counts a request to this target as finished.
func (t *Target) End() { t.inFlight.Add(-1) }

// InFlight is the number of requests to this target not yet finished.
func (t *Target) InFlight() int64 { return t.inFlight.Load() }

// String returns the target URL as configured (normalized), precomputed so
// recording it per request costs nothing.
func (t *Target) String() string { return t.str }

// picker chooses a target for a request. It is the seam for the balancers
// a later issue adds (least_conn, p2c_ewma, consistent_hash, random, and
// health-aware picking): each is a small type built once per pool.
type picker interface {
	pick(s *pipeline.State) *Target
}

// Pool is one named upstream: its targets, its balancer and its transport.
// A Pool is safe for concurrent use.
type Pool struct {
	name         string
	preserveHost bool
	targets      []*Target
	picker       picker
	transport    *http.Transport
	failures     *failureSet
	retries      *RetryPolicy
	budget       Budget
}

// NewPool builds a pool from cfg: parses and checks the targets, builds
// the balancer and a dedicated transport. Relative TLS file paths must
// already be resolved by the config loader.
func NewPool(cfg config.Upstream) (*Pool, error) {
	if cfg.Name == "" {
		return nil, errors.New("upstream: name is empty")
	}
	p := &Pool{name: cfg.Name, preserveHost: cfg.PreserveHost, failures: newFailureSet(cfg.FailureStatuses)}
	rp, err := ParseRetries(cfg.Retries)
	if err != nil {
		return nil, fmt.Errorf("upstream %s: %w", cfg.Name, err)
	}
	p.retries = rp
	for i, tc := range cfg.Targets {
		t, err := newTarget(tc)
		if err != nil {
			return nil, fmt.Errorf("upstream %s: targets[%d]: %w", cfg.Name, i, err)
		}
		p.targets = append(p.targets, t)
	}
	switch cfg.Balancer {
	case "", "round_robin":
	default:
		// Other balancers arrive with a later issue; until then they
		// fall back to weighted round robin rather than refusing the
		// config, which the contract already accepts.
	}
	p.picker = newWeightedRoundRobin(p.targets)
	tr, err := newTransport(cfg)
	if err != nil {
		return nil, fmt.Errorf("upstream %s: %w", cfg.Name, err)
	}
	p.transport = tr
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
	return &Target{URL: base, Weight: w, Host: u.Host, PathPrefix: prefix, str: base.String()}, nil
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

// Targets returns the pool's targets (read-only).
func (p *Pool) Targets() []*Target { return p.targets }

// Pick returns the target for this request, or nil when the pool has none.
func (p *Pool) Pick(s *pipeline.State) *Target { return p.picker.pick(s) }

// RoundTripper is what requests to this pool are sent with. It is the seam
// where a later issue swaps in a faster client.
func (p *Pool) RoundTripper() http.RoundTripper { return p.transport }

// Close closes the pool's idle connections. It is called when a reload
// drops the pool. Requests in flight finish; a connection they return to
// the idle pool afterwards is closed after timeouts.idle_connection.
func (p *Pool) Close() error {
	p.transport.CloseIdleConnections()
	return nil
}
