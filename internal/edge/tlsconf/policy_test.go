package tlsconf

import (
	"crypto/tls"
	"strings"
	"testing"

	"github.com/portunus-gw/portunus/internal/config"
)

// TestProtocolPolicy: old versions and weak TLS 1.2 suites are refused;
// a positive control beside each refusal shows the client otherwise works.
func TestProtocolPolicy(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ca := newCA(t, "root", true)
	rsaPair := ca.issue(t, leafOpts{cn: "rsa", dns: []string{"rsa.test"}, rsaKey: true}).write(t, dir, "rsa")
	ecPair := ca.issue(t, leafOpts{cn: "ec", dns: []string{"ec.test"}}).write(t, dir, "ec")
	certs := []config.Certificate{rsaPair, ecPair}
	addr12 := handshakeServer(t, newManager(t, &config.ListenerTLS{Certificates: certs, MinVersion: "1.2"}, nil).TLSConfig())
	addr13 := handshakeServer(t, newManager(t, &config.ListenerTLS{Certificates: certs, MinVersion: "1.3"}, nil).TLSConfig())

	cases := []struct {
		name    string
		addr    string
		sni     string
		min     uint16
		max     uint16
		suites  []uint16
		wantOK  bool
		wantVer uint16
	}{
		{name: "TLS 1.3 accepted", addr: addr12, sni: "rsa.test", wantOK: true, wantVer: tls.VersionTLS13},
		{name: "TLS 1.2 ECDHE-RSA-AES-GCM accepted", addr: addr12, sni: "rsa.test", max: tls.VersionTLS12, suites: []uint16{tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256}, wantOK: true, wantVer: tls.VersionTLS12},
		{name: "TLS 1.2 ECDHE-RSA-CHACHA20 accepted", addr: addr12, sni: "rsa.test", max: tls.VersionTLS12, suites: []uint16{tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256}, wantOK: true, wantVer: tls.VersionTLS12},
		{name: "TLS 1.2 ECDHE-ECDSA-AES256-GCM accepted", addr: addr12, sni: "ec.test", max: tls.VersionTLS12, suites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384}, wantOK: true, wantVer: tls.VersionTLS12},
		{name: "TLS 1.1 refused", addr: addr12, sni: "rsa.test", min: tls.VersionTLS10, max: tls.VersionTLS11},
		{name: "TLS 1.0 refused", addr: addr12, sni: "rsa.test", min: tls.VersionTLS10, max: tls.VersionTLS10},
		{name: "RSA key exchange GCM refused", addr: addr12, sni: "rsa.test", max: tls.VersionTLS12, suites: []uint16{tls.TLS_RSA_WITH_AES_128_GCM_SHA256, tls.TLS_RSA_WITH_AES_256_GCM_SHA384}},
		{name: "RSA key exchange CBC refused", addr: addr12, sni: "rsa.test", max: tls.VersionTLS12, suites: []uint16{tls.TLS_RSA_WITH_AES_128_CBC_SHA, tls.TLS_RSA_WITH_AES_256_CBC_SHA}},
		{name: "ECDHE CBC refused", addr: addr12, sni: "rsa.test", max: tls.VersionTLS12, suites: []uint16{tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA, tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256, tls.TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA}},
		{name: "3DES refused", addr: addr12, sni: "rsa.test", max: tls.VersionTLS12, suites: []uint16{tls.TLS_RSA_WITH_3DES_EDE_CBC_SHA, tls.TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA}},
		{name: "RC4 refused", addr: addr12, sni: "rsa.test", max: tls.VersionTLS12, suites: []uint16{tls.TLS_RSA_WITH_RC4_128_SHA, tls.TLS_ECDHE_RSA_WITH_RC4_128_SHA}},
		{name: "min 1.3 accepts 1.3", addr: addr13, sni: "rsa.test", wantOK: true, wantVer: tls.VersionTLS13},
		{name: "min 1.3 refuses a 1.2-only client", addr: addr13, sni: "rsa.test", max: tls.VersionTLS12, suites: []uint16{tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cs, err := dial(tc.addr, &tls.Config{
				ServerName: tc.sni, InsecureSkipVerify: true,
				MinVersion: tc.min, MaxVersion: tc.max, CipherSuites: tc.suites,
			})
			if !tc.wantOK {
				if err == nil {
					t.Fatalf("handshake succeeded with version %x suite %s; want refused", cs.Version, tls.CipherSuiteName(cs.CipherSuite))
				}
				// The refusal must come from the server (an alert), not
				// from a client that could not even offer the suites.
				if !strings.Contains(err.Error(), "remote error") {
					t.Errorf("got error %v; want a server alert", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("handshake: %v; want accepted", err)
			}
			if cs.Version != tc.wantVer {
				t.Errorf("got version %x; want %x", cs.Version, tc.wantVer)
			}
		})
	}
}

// TestCipherSuitesArePolicy pins the suite list: every TLS 1.2 suite is
// ECDHE with an AEAD, and none is on Go's insecure list.
func TestCipherSuitesArePolicy(t *testing.T) {
	t.Parallel()
	insecure := map[uint16]bool{}
	for _, s := range tls.InsecureCipherSuites() {
		insecure[s.ID] = true
	}
	cfg := (&Manager{minVersion: tls.VersionTLS12}).baseConfig()
	if len(cfg.CipherSuites) == 0 {
		t.Fatal("got no cipher suites; want an explicit list")
	}
	for _, id := range cfg.CipherSuites {
		name := tls.CipherSuiteName(id)
		if insecure[id] {
			t.Errorf("suite %s is insecure", name)
		}
		if !strings.Contains(name, "ECDHE") || !(strings.Contains(name, "GCM") || strings.Contains(name, "CHACHA20_POLY1305")) {
			t.Errorf("suite %s: want ECDHE with AES-GCM or ChaCha20-Poly1305", name)
		}
	}
	if got := cfg.NextProtos; len(got) != 2 || got[0] != "h2" || got[1] != "http/1.1" {
		t.Errorf("got NextProtos %q; want [h2 http/1.1]", got)
	}
}
