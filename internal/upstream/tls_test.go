package upstream

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/portunus-gw/portunus/internal/config"
)

// testCA is a throwaway certificate authority.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

func newTestCA(t *testing.T, name string) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return &testCA{cert: cert, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

// issue returns a leaf certificate and key (PEM) for dns names.
func (ca *testCA) issue(t *testing.T, cn string, dns []string, usage x509.ExtKeyUsage) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn},
		DNSNames: dns, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})
}

func writeFile(t *testing.T, dir, name string, b []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestUpstreamTLS checks the pool's TLS settings against an https target
// that requires a client certificate: the CA file verifies the target,
// server_name is the name verified, and the client certificate is sent.
func TestUpstreamTLS(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	serverCA, clientCA, otherCA := newTestCA(t, "server-ca"), newTestCA(t, "client-ca"), newTestCA(t, "other-ca")
	srvCert, srvKey := serverCA.issue(t, "backend", []string{"backend.internal"}, x509.ExtKeyUsageServerAuth)
	cliCert, cliKey := clientCA.issue(t, "gateway", nil, x509.ExtKeyUsageClientAuth)

	pair, err := tls.X509KeyPair(srvCert, srvKey)
	if err != nil {
		t.Fatal(err)
	}
	clientPool := x509.NewCertPool()
	clientPool.AddCert(clientCA.cert)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cn := ""
		if len(r.TLS.PeerCertificates) > 0 {
			cn = r.TLS.PeerCertificates[0].Subject.CommonName
		}
		_, _ = io.WriteString(w, "client="+cn+" proto="+r.Proto)
	}))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{pair}, ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: clientPool, NextProtos: []string{"h2", "http/1.1"}}
	srv.StartTLS()
	t.Cleanup(srv.Close) // the subtests run in parallel, after this function returns
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(srv.URL, "https://"))
	target := "https://127.0.0.1:" + port

	good := config.UpstreamTLS{
		CAFile:     writeFile(t, dir, "server-ca.pem", serverCA.pem),
		CertFile:   writeFile(t, dir, "client.pem", cliCert),
		KeyFile:    writeFile(t, dir, "client-key.pem", cliKey),
		ServerName: "backend.internal",
	}
	cases := []struct {
		desc    string
		tls     config.UpstreamTLS
		wantErr string // substring of the transport error; "" = success
	}{
		{"CA, client certificate and server name", good, ""},
		{"wrong server name", func() config.UpstreamTLS { c := good; c.ServerName = "other.internal"; return c }(), "certificate"},
		{"CA that did not sign the target", func() config.UpstreamTLS {
			c := good
			c.CAFile = writeFile(t, dir, "other-ca.pem", otherCA.pem)
			return c
		}(), "certificate"},
		// With TLS 1.3 the server refuses the missing certificate after
		// the client's handshake finished, so over HTTP/2 the alert can
		// surface as the connection failing before the request.
		// The client may also be writing the request when the server's
		// alert closes the connection: then its write fails first.
		{"no client certificate", func() config.UpstreamTLS { c := good; c.CertFile, c.KeyFile = "", ""; return c }(), "certificate|client conn could not be established|broken pipe|connection reset"},
		{"insecure_skip_verify still sends the client certificate", func() config.UpstreamTLS {
			c := good
			c.CAFile, c.ServerName, c.InsecureSkipVerify = "", "", true
			return c
		}(), ""},
	}
	for _, tc := range cases {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			pool, err := NewPool(config.Upstream{Name: "tls", Targets: []config.Target{{URL: target, Weight: 1}}, TLS: tc.tls})
			if err != nil {
				t.Fatalf("NewPool: %v", err)
			}
			defer pool.Close()
			req, _ := http.NewRequest("GET", target+"/", nil)
			resp, err := pool.RoundTripper().RoundTrip(req)
			if tc.wantErr != "" {
				if err == nil {
					resp.Body.Close()
					t.Fatalf("request succeeded; want an error containing %q", tc.wantErr)
				}
				if !containsAny(err.Error(), strings.Split(tc.wantErr, "|")) {
					t.Fatalf("error %q; want it to mention %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("RoundTrip: %v", err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if got := string(b); got != "client=gateway proto=HTTP/2.0" {
				t.Errorf("target saw %q; want client=gateway over HTTP/2 (ALPN)", got)
			}
		})
	}
}

func TestUpstreamTLSFileErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cases := []struct {
		desc string
		tls  config.UpstreamTLS
	}{
		{"missing CA file", config.UpstreamTLS{CAFile: filepath.Join(dir, "nope.pem")}},
		{"CA file without certificates", config.UpstreamTLS{CAFile: writeFile(t, dir, "empty.pem", []byte("not pem"))}},
		{"key without certificate", config.UpstreamTLS{KeyFile: writeFile(t, dir, "k.pem", []byte("x"))}},
	}
	for _, tc := range cases {
		if _, err := NewPool(config.Upstream{Name: "x", Targets: []config.Target{{URL: "https://127.0.0.1:1", Weight: 1}}, TLS: tc.tls}); err == nil {
			t.Errorf("%s: NewPool succeeded; want an error", tc.desc)
		}
	}
}

func containsAny(s string, subs []string) bool {
	for _, sub := range subs {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}
