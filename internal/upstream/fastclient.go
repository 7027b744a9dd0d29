package upstream

import (
	"crypto/tls"
	"net"
	"net/http"
	"os"

	"github.com/portunus-gw/portunus/internal/config"
	"github.com/portunus-gw/portunus/internal/upstream/h1"
)

// envClient names the environment variable that switches every pool back
// to the stdlib transport ("stdlib"). It exists for A/B measurements (the
// load harness's before/after) and as an escape hatch, not as config.
const envClient = "PORTUNUS_UPSTREAM_CLIENT"

// newRoundTripper picks what a pool sends requests with: the h1 client
// for HTTP/1.1 pools, with base serving what h1 hands over (https targets,
// upgrades, Expect); base alone for h2c pools.
func newRoundTripper(cfg config.Upstream, base http.RoundTripper) http.RoundTripper {
	switch cfg.Protocol {
	case "", "auto", "http1":
	default:
		return base
	}
	if os.Getenv(envClient) == "stdlib" {
		return base
	}
	return h1.New(h1.Options{
		Fallback:              base,
		ConnectTimeout:        orDefault(cfg.Timeouts.Connect.D(), DefaultConnectTimeout),
		ResponseHeaderTimeout: orDefault(cfg.Timeouts.ResponseHeader.D(), DefaultResponseHeaderTimeout),
		IdleTimeout:           orDefault(cfg.Timeouts.IdleConnection.D(), DefaultIdleConnTimeout),
		// max_connections bounds h1's connections; the fallback keeps
		// its own bound for the requests it serves (upgrades, https).
		MaxConnsPerHost: cfg.MaxConnections,
	})
}

// namedTransport is the pool's stdlib transport, except for https targets
// discovery found under a host name: those go through a transport of
// their own whose TLS server name is that name, so the certificate is
// checked against the name the config gave (and sent as SNI), not against
// the address it resolved to. A transport per target keeps everything the
// stdlib does for TLS (ALPN, HTTP/2, HTTP/1.1-only upgrades).
type namedTransport struct{ p *Pool }

func (n namedTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if m := n.p.named.Load(); m != nil && req.URL.Scheme == "https" {
		if tr := (*m)[req.URL.Host]; tr != nil {
			return tr.RoundTrip(req)
		}
	}
	return n.p.transport.RoundTrip(req)
}

// CloseIdleConnections closes the idle connections of every transport.
func (n namedTransport) CloseIdleConnections() {
	n.p.transport.CloseIdleConnections()
	if m := n.p.named.Load(); m != nil {
		for _, tr := range *m {
			tr.CloseIdleConnections()
		}
	}
}

// withServerName is a copy of tr verifying and naming its TLS peer as
// name.
func withServerName(tr *http.Transport, name string) *http.Transport {
	c := tr.Clone()
	if c.TLSClientConfig == nil {
		c.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	c.TLSClientConfig.ServerName = name
	return c
}

// namedServer reports the TLS server name t needs apart from the pool's
// transport: its host name when discovery resolved it for an https
// target and tls.server_name does not name the server already.
func (p *Pool) namedServer(t *Target) string {
	if t.URL.Scheme != "https" || p.serverName != "" || t.Authority == t.Host {
		return ""
	}
	host, _, err := net.SplitHostPort(t.Authority)
	if err != nil {
		host = t.Authority
	}
	return host
}

// closeRoundTripper closes rt's idle connections (and, for the h1
// client, every connection as its request ends).
func closeRoundTripper(rt http.RoundTripper) {
	switch c := rt.(type) {
	case *h1.Client:
		c.Close()
	case interface{ CloseIdleConnections() }:
		c.CloseIdleConnections()
	}
}

// Transport is the pool's stdlib transport: what h1 falls back to, and
// what h2c pools use alone.
func (p *Pool) Transport() *http.Transport { return p.transport }
