package gateway

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/portunus-gw/portunus/internal/config"
	"github.com/portunus-gw/portunus/internal/edge/tlsconf"
)

// lsCA is a throwaway certificate authority for TLS listener tests.
type lsCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pool *x509.CertPool
}

func lsNewCA(t *testing.T) *lsCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "portunus test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &lsCA{cert: cert, key: key, pool: pool}
}

// leaf writes a server certificate for names (DNS names or IPs) and its
// key into dir, returning the two paths.
func (ca *lsCA) leaf(t *testing.T, dir, base string, names ...string) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: names[0]},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, n := range names {
		if ip := net.ParseIP(n); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, n)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile = filepath.Join(dir, base+".crt")
	keyFile = filepath.Join(dir, base+".key")
	lsWritePEM(t, certFile, "CERTIFICATE", der)
	lsWritePEM(t, keyFile, "EC PRIVATE KEY", kder)
	return certFile, keyFile
}

func lsWritePEM(t *testing.T, path, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

// client returns an HTTPS client trusting ca; h2 selects whether it
// offers HTTP/2 in ALPN.
func (ca *lsCA) client(h2 bool) *http.Client {
	tr := &http.Transport{
		TLSClientConfig:   &tls.Config{RootCAs: ca.pool, ServerName: "localhost"},
		ForceAttemptHTTP2: h2,
	}
	if !h2 {
		tr.TLSClientConfig.NextProtos = []string{"http/1.1"}
		tr.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
	}
	return &http.Client{Transport: tr, Timeout: 20 * time.Second}
}

// lsRequireTLSManager skips TLS tests while internal/edge/tlsconf is still
// the skeleton whose New always fails.
func lsRequireTLSManager(t *testing.T, certFile, keyFile string) {
	t.Helper()
	m, err := tlsconf.New(&config.ListenerTLS{
		Certificates: []config.Certificate{{CertFile: certFile, KeyFile: keyFile}},
		ClientAuth:   "none", MinVersion: "1.2",
	}, discardLog())
	if err != nil {
		if strings.Contains(err.Error(), "not implemented") {
			t.Skipf("tlsconf.Manager is not implemented yet: %v", err)
		}
		t.Fatalf("tlsconf.New with a valid certificate: %v", err)
	}
	_ = m.Close()
}

// listenerAddr returns the bound address of the listener with key (its
// configured address, or "address#index" for a repeated port-0 address).
func (g *testGateway) lsAddr(key string) string {
	g.t.Helper()
	a, ok := g.rt.ListenerAddrs()[key]
	if !ok {
		g.t.Fatalf("no listener %q in %v", key, g.rt.ListenerAddrs())
	}
	return a
}

// reload reloads the runtime from its (rewritten) config file.
func (g *testGateway) lsReload() error {
	err := g.rt.Reload("test")
	var el config.ErrorList
	if err != nil && !errors.As(err, &el) {
		g.t.Logf("reload error of type %T", err)
	}
	return err
}

func lsWriteFile(path, content string) error { return os.WriteFile(path, []byte(content), 0o600) }
