package gateway

import (
	"net"
	"net/netip"
	"time"

	"github.com/portunus-gw/portunus/internal/edge/proxyproto"
)

// proxyHeaderTimeout bounds how long a trusted peer may take to send its
// PROXY header.
const proxyHeaderTimeout = 5 * time.Second

// proxyProtocolListener accepts PROXY protocol headers from trusted peers
// on ln (listeners with proxy_protocol: true).
func proxyProtocolListener(ln net.Listener, trusted []netip.Prefix) net.Listener {
	return proxyproto.Wrap(ln, trusted, proxyHeaderTimeout)
}
