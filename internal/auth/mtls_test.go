package auth

import (
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"net/http/httptest"
	"testing"

	"github.com/portunus-gw/portunus/internal/config"
	"github.com/portunus-gw/portunus/internal/consumers"
)

// The TLS handshake itself is tested through a real listener in
// test/authz; this pins the mapping from connection state to outcome.
func TestMTLSState(t *testing.T) {
	t.Parallel()
	dir, err := consumers.New([]config.Consumer{{Name: "dev", Roles: []string{"device"}, Certificates: []config.CertificateMatch{{Subject: "CN=dev-1"}}}})
	if err != nil {
		t.Fatal(err)
	}
	known := &x509.Certificate{Subject: pkix.Name{CommonName: "dev-1"}}
	other := &x509.Certificate{Subject: pkix.Name{CommonName: "dev-2"}}
	cases := []struct {
		name     string
		state    *tls.ConnectionState
		status   int
		authErr  string
		consumer string
	}{
		{"plain HTTP", nil, 401, "no credentials", ""},
		{"TLS without a certificate", &tls.ConnectionState{}, 401, "no credentials", ""},
		{"certificate not verified", &tls.ConnectionState{PeerCertificates: []*x509.Certificate{known}}, 401, "mtls: client certificate not verified", ""},
		{"verified, unknown", &tls.ConnectionState{PeerCertificates: []*x509.Certificate{other}, VerifiedChains: [][]*x509.Certificate{{other}}}, 401, "mtls: client certificate names no consumer", ""},
		{"verified, known", &tls.ConnectionState{PeerCertificates: []*x509.Certificate{known}, VerifiedChains: [][]*x509.Certificate{{known}}}, 204, "", "dev"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := httptest.NewRequest("GET", "/", nil)
			r.TLS = tc.state
			w, _, s := run(New(Options{Methods: []Method{NewMTLS(dir)}, Consumers: dir}), r)
			if w.Code != tc.status || s.AuthError != tc.authErr || s.Consumer != tc.consumer {
				t.Errorf("got %d %q %q; want %d %q %q", w.Code, s.AuthError, s.Consumer, tc.status, tc.authErr, tc.consumer)
			}
			if tc.status == 401 && w.Header().Get("WWW-Authenticate") != "" {
				t.Errorf("mtls alone has no challenge; got %q", w.Header().Get("WWW-Authenticate"))
			}
		})
	}
}
