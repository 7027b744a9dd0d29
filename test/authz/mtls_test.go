package authz

import (
	"crypto/tls"
	"crypto/x509/pkix"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestMTLS runs real handshakes against two TLS listeners sharing one
// client CA: client_auth require and client_auth request.
func TestMTLS(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ca := newCA(t, "portunus test CA")
	rogue := newCA(t, "rogue CA")
	server := ca.issue(t, ecKey, pkix.Name{CommonName: "localhost"}, []string{"localhost"}, []net.IP{net.IPv4(127, 0, 0, 1)}, true)
	certFile, keyFile := writePair(t, dir, "server", server)
	caFile := filepath.Join(dir, "clients-ca.pem")
	if err := os.WriteFile(caFile, ca.pem, 0o600); err != nil {
		t.Fatal(err)
	}
	up := newEchoUpstream(t)
	cfg := fmt.Sprintf(`
listeners:
  - address: "127.0.0.1:0"
    tls: { certificates: [{ cert_file: %[1]q, key_file: %[2]q }], client_ca_file: %[3]q, client_auth: require }
  - address: "127.0.0.1:0"
    tls: { certificates: [{ cert_file: %[1]q, key_file: %[2]q }], client_ca_file: %[3]q, client_auth: request }
observability: { access_log: { path: "off" } }
upstreams: [{ name: up, targets: [{ url: %[4]q }] }]
consumers:
  - name: alice
    roles: [admin]
    certificates: [{ subject: "CN=alice-laptop" }]
  - name: device-17
    roles: [device]
    certificates: [{ san: device-17.iot.example.com }]
  - name: acme-dev
    roles: [dev]
    certificates: [{ subject: "CN=dev,O=Acme" }]
  - name: bob
    roles: [reader]
    api_keys: ["bob-key"]
routes:
  - name: devices
    match: { path_prefix: /dev }
    upstream: up
    auth: [mtls]
  - name: either
    match: { path_prefix: /any }
    upstream: up
    auth: [mtls, api_key]
  - name: admin
    match: { path_prefix: /admin }
    upstream: up
    auth: [mtls]
    allow: { roles: [admin] }
`, certFile, keyFile, caFile, up.URL)
	rt := startGateway(t, cfg)
	addrs := rt.ListenerAddrs()
	if len(addrs) != 2 {
		t.Fatalf("listeners = %v; want 2", addrs)
	}
	require, request := "https://"+addrs["127.0.0.1:0"], "https://"+addrs["127.0.0.1:0#1"]

	alice := ca.issue(t, rsaKey, pkix.Name{CommonName: "alice-laptop"}, nil, nil, false)
	device := ca.issue(t, edKey, pkix.Name{CommonName: "fleet-device"}, []string{"device-17.iot.example.com"}, nil, false)
	acme := ca.issue(t, ecKey, pkix.Name{CommonName: "dev", Organization: []string{"Acme"}}, nil, nil, false)
	stranger := ca.issue(t, ecKey, pkix.Name{CommonName: "stranger"}, []string{"stranger.example.com"}, nil, false)
	forged := rogue.issue(t, ecKey, pkix.Name{CommonName: "alice-laptop"}, nil, nil, false)

	cases := []struct {
		name     string
		base     string
		cert     *tls.Certificate
		path     string
		header   map[string]string
		status   int // 0: the handshake must fail
		consumer string
	}{
		{"RSA cert by subject", require, &alice, "/dev", nil, 200, "alice"},
		{"Ed25519 cert by DNS SAN", require, &device, "/dev", nil, 200, "device-17"},
		{"EC cert by multi-RDN subject", require, &acme, "/dev", nil, 200, "acme-dev"},
		{"verified but unknown", require, &stranger, "/dev", nil, 401, ""},
		{"allow by role", require, &alice, "/admin", nil, 200, "alice"},
		{"allow refuses another role", require, &device, "/admin", nil, 403, ""},
		{"require: no certificate fails the handshake", require, nil, "/dev", nil, 0, ""},
		{"require: rogue CA fails the handshake", require, &forged, "/dev", nil, 0, ""},
		{"request: no certificate, mtls only", request, nil, "/dev", nil, 401, ""},
		{"request: no certificate, api key instead", request, nil, "/any", map[string]string{"X-API-Key": "bob-key"}, 200, "bob"},
		{"request: certificate wins when first", request, &device, "/any", nil, 200, "device-17"},
		{"request: unknown certificate is not rescued by a key", request, &stranger, "/any", map[string]string{"X-API-Key": "bob-key"}, 401, ""},
		{"request: rogue CA fails the handshake", request, &forged, "/dev", nil, 0, ""},
		{"request: spoofed identity header without cert", request, nil, "/dev", map[string]string{"X-Consumer-Name": "alice"}, 401, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			req, err := httpNewRequest("GET", tc.base+tc.path, tc.header)
			if err != nil {
				t.Fatal(err)
			}
			resp, err := httpsClient(ca.pool, tc.cert).Do(req)
			if tc.status == 0 {
				if err == nil {
					resp.Body.Close()
					t.Fatalf("got %d; want the TLS handshake to fail", resp.StatusCode)
				}
				return
			}
			if err != nil {
				t.Fatalf("request: %v", err)
			}
			a := readAnswer(t, resp)
			if a.status != tc.status {
				t.Fatalf("got %d; want %d (%q)", a.status, tc.status, a.body)
			}
			if a.status == 401 && a.header.Get("WWW-Authenticate") != "" && !strings.Contains(tc.path, "any") {
				t.Errorf("mtls-only 401 carries a challenge %q; want none", a.header.Get("WWW-Authenticate"))
			}
			if !a.reached {
				return
			}
			if got := a.upstream.Header.Get("X-Consumer-Name"); got != tc.consumer {
				t.Errorf("upstream X-Consumer-Name = %q; want %q", got, tc.consumer)
			}
		})
	}
}
