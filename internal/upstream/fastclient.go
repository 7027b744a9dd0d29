package upstream

import (
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
// for HTTP/1.1 pools, with tr serving what h1 hands over (https targets,
// upgrades, Expect); tr alone for h2c pools.
func newRoundTripper(cfg config.Upstream, tr *http.Transport) http.RoundTripper {
	switch cfg.Protocol {
	case "", "auto", "http1":
	default:
		return tr
	}
	if os.Getenv(envClient) == "stdlib" {
		return tr
	}
	return h1.New(h1.Options{
		Fallback:              tr,
		ConnectTimeout:        orDefault(cfg.Timeouts.Connect.D(), DefaultConnectTimeout),
		ResponseHeaderTimeout: orDefault(cfg.Timeouts.ResponseHeader.D(), DefaultResponseHeaderTimeout),
		IdleTimeout:           orDefault(cfg.Timeouts.IdleConnection.D(), DefaultIdleConnTimeout),
		// max_connections bounds h1's connections; the fallback keeps
		// its own bound for the requests it serves (upgrades, https).
		MaxConnsPerHost: cfg.MaxConnections,
	})
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
