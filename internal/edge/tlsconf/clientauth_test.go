package tlsconf

import (
	"crypto/tls"
	"crypto/x509"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/portunus-gw/portunus/internal/config"
)

func TestClientAuth(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	serverCA := newCA(t, "server root", false)
	clientCA := newCA(t, "client root", false)
	otherCA := newCA(t, "other root", false)
	pair := serverCA.issue(t, leafOpts{cn: "gw", dns: []string{"gw.test"}}).write(t, dir, "gw")
	caFile := filepath.Join(dir, "clients.pem")
	writeFile(t, caFile, clientCA.pem)
	good := clientCA.issue(t, leafOpts{cn: "alice", client: true}).tlsCert(t)
	bad := otherCA.issue(t, leafOpts{cn: "mallory", client: true}).tlsCert(t)

	roots := x509.NewCertPool()
	roots.AddCert(serverCA.cert)
	addrs := map[string]string{}
	for _, mode := range []string{"none", "request", "require"} {
		c := &config.ListenerTLS{Certificates: []config.Certificate{pair}, ClientAuth: mode}
		if mode != "none" {
			c.ClientCAFile = caFile
		}
		addrs[mode] = handshakeServer(t, newManager(t, c, nil).TLSConfig())
	}
	cases := []struct {
		name   string
		mode   string
		cert   *tls.Certificate
		tls12  bool
		wantOK bool
	}{
		{name: "none: no cert", mode: "none", wantOK: true},
		{name: "none: any cert ignored", mode: "none", cert: &bad, wantOK: true},
		{name: "require: no cert", mode: "require"},
		{name: "require: cert from another CA", mode: "require", cert: &bad},
		{name: "require: good cert", mode: "require", cert: &good, wantOK: true},
		{name: "require: good cert over TLS 1.2", mode: "require", cert: &good, tls12: true, wantOK: true},
		{name: "require: no cert over TLS 1.2", mode: "require", tls12: true},
		{name: "request: no cert", mode: "request", wantOK: true},
		{name: "request: good cert", mode: "request", cert: &good, wantOK: true},
		{name: "request: cert from another CA", mode: "request", cert: &bad},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg := &tls.Config{ServerName: "gw.test", RootCAs: roots}
			if tc.tls12 {
				cfg.MaxVersion = tls.VersionTLS12
			}
			if tc.cert != nil {
				// Send the certificate whatever CAs the server names: Go's
				// client would otherwise hold back one it cannot match.
				cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return tc.cert, nil }
			}
			_, err := dial(addrs[tc.mode], cfg)
			switch {
			case tc.wantOK && err != nil:
				t.Fatalf("got error %v; want accepted", err)
			case !tc.wantOK && err == nil:
				t.Fatal("got accepted; want refused")
			}
		})
	}
}

func TestNewErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ca := newCA(t, "root", false)
	a := ca.issue(t, leafOpts{cn: "a", dns: []string{"a.test"}})
	b := ca.issue(t, leafOpts{cn: "b", dns: []string{"b.test"}})
	pa := a.write(t, dir, "a")
	pb := b.write(t, dir, "b")
	garbage := filepath.Join(dir, "garbage.pem")
	if err := os.WriteFile(garbage, []byte("not pem\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing.pem")
	cases := []struct {
		name    string
		conf    config.ListenerTLS
		wantSub string
	}{
		{"no certificates", config.ListenerTLS{}, "at least one certificate"},
		{"missing cert file", config.ListenerTLS{Certificates: []config.Certificate{{CertFile: missing, KeyFile: pa.KeyFile}}}, missing},
		{"missing key file", config.ListenerTLS{Certificates: []config.Certificate{{CertFile: pa.CertFile, KeyFile: missing}}}, missing},
		{"key of another cert", config.ListenerTLS{Certificates: []config.Certificate{pa, {CertFile: pa.CertFile, KeyFile: pb.KeyFile}}}, pb.KeyFile},
		{"garbage cert", config.ListenerTLS{Certificates: []config.Certificate{{CertFile: garbage, KeyFile: pa.KeyFile}}}, garbage},
		{"CA bundle without certificates", config.ListenerTLS{Certificates: []config.Certificate{pa}, ClientAuth: "require", ClientCAFile: garbage}, garbage},
		{"missing CA bundle", config.ListenerTLS{Certificates: []config.Certificate{pa}, ClientAuth: "request", ClientCAFile: missing}, missing},
		{"require without CA", config.ListenerTLS{Certificates: []config.Certificate{pa}, ClientAuth: "require"}, "client_ca_file"},
		{"bad client_auth", config.ListenerTLS{Certificates: []config.Certificate{pa}, ClientAuth: "maybe"}, "client_auth"},
		{"bad min_version", config.ListenerTLS{Certificates: []config.Certificate{pa}, MinVersion: "1.1"}, "min_version"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			m, err := New(&tc.conf, nil)
			if err == nil {
				_ = m.Close()
				t.Fatal("got no error; want one")
			}
			if !strings.Contains(err.Error(), tc.wantSub) || !strings.HasPrefix(err.Error(), "tlsconf: ") {
				t.Errorf("got error %q; want it prefixed tlsconf: and naming %q", err, tc.wantSub)
			}
		})
	}
}
