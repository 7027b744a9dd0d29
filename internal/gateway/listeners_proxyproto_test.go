package gateway

import (
	"fmt"
	"strings"
	"testing"
)

// TestListenerProxyProtocol: a listener with proxy_protocol takes the
// client address from a trusted peer's PROXY header; a listener without
// it does not parse one; changing trusted_proxies re-creates the
// listener (the wrapper is built with the list).
func TestListenerProxyProtocol(t *testing.T) {
	t.Parallel()
	up := newUpstream(t, "up")
	cfg := func(trusted string) string {
		return fmt.Sprintf(`
listeners:
  - { address: "127.0.0.1:0", proxy_protocol: true }
  - { address: "127.0.0.1:0" }
trusted_proxies: [%s]
observability: { access_log: { path: "off" } }
upstreams: [{ name: up, targets: [{ url: %q }] }]
routes: [{ match: { path_prefix: / }, upstream: up }]
`, trusted, up.URL)
	}
	g := startGateway(t, cfg("127.0.0.0/8"))
	pp := g.lsAddr("127.0.0.1:0")
	plain := g.lsAddr("127.0.0.1:0#1")
	const req = "PROXY TCP4 203.0.113.9 10.0.0.1 40000 80\r\nGET /x HTTP/1.1\r\nHost: a.example\r\nConnection: close\r\n\r\n"

	resp := lsRawResponse(t, pp, req)
	if resp.StatusCode != 200 {
		t.Fatalf("PROXY listener: status %d; want 200", resp.StatusCode)
	}
	if xff := strings.Join(up.last(t).Header["X-Forwarded-For"], ","); xff != "203.0.113.9" {
		t.Errorf("upstream X-Forwarded-For = %q; want the PROXY header's 203.0.113.9", xff)
	}

	before := up.count()
	resp = lsRawResponse(t, plain, req)
	if resp.StatusCode != 400 {
		t.Errorf("PROXY header on a listener without proxy_protocol: status %d; want 400", resp.StatusCode)
	}
	if up.count() != before {
		t.Errorf("upstream reached from a PROXY header on a plain listener; want no request")
	}

	// No longer trusted: the listener is re-created with the new list.
	g.rewrite(cfg("10.0.0.0/8"))
	if err := g.lsReload(); err != nil {
		t.Fatalf("reload: %v", err)
	}
	if got := g.lsAddr("127.0.0.1:0#1"); got != plain {
		t.Errorf("plain listener moved from %s to %s; want it kept", plain, got)
	}
	pp = g.lsAddr("127.0.0.1:0")
	before = up.count()
	if resp := lsRawResponseOrClosed(t, pp, req); resp == 200 {
		if xff := strings.Join(up.last(t).Header["X-Forwarded-For"], ","); strings.Contains(xff, "203.0.113.9") {
			t.Errorf("untrusted peer's PROXY header believed: X-Forwarded-For = %q", xff)
		}
	} else if up.count() != before {
		t.Errorf("upstream reached although the untrusted PROXY request was refused")
	}
}
