package upstreams

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// TestDiscoveryHTTPSUsesTheName: an https target given by host name and
// resolved by discovery is reached at the resolved address, but TLS (SNI
// and certificate check) and the Host header use the name, for proxied
// requests and for active health checks alike. The upstream's certificate
// names only svc.test, so a connection that named the address would fail.
func TestDiscoveryHTTPSUsesTheName(t *testing.T) {
	t.Parallel()
	caPEM, cert := nameCert(t, "svc.test")
	var mu sync.Mutex
	seen := map[string]int{} // "path host sni"
	up := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen[r.URL.Path+" "+r.Host+" "+r.TLS.ServerName]++
		mu.Unlock()
		io.WriteString(w, "named")
	}))
	up.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	up.StartTLS()
	t.Cleanup(up.Close)
	_, port, _ := net.SplitHostPort(up.Listener.Addr().String())
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, caPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	resolver := startDNS(t, "svc.test.", func() string { return "127.0.0.1" })
	base := startGateway(t, fmt.Sprintf(`
listeners: [{ address: "127.0.0.1:0" }]
observability: { access_log: { path: "off" } }
upstreams:
  - name: svc
    targets: [{ url: "https://svc.test:%s" }]
    tls: { ca_file: %q }
    discovery: { resolver: %q, min_ttl: 50ms }
    health_check: { path: /healthz, interval: 100ms, timeout: 100ms, healthy_threshold: 1, unhealthy_threshold: 1 }
routes:
  - { name: svc, match: { path_prefix: /svc }, upstream: svc }
`, port, caFile, resolver))
	client := &http.Client{Timeout: waitLimit}
	defer client.CloseIdleConnections()
	host := "svc.test:" + port
	poll(t, "a proxied request and two health probes over TLS naming svc.test", func() bool {
		res, err := client.Get(base + "/svc/x")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != 200 || string(b) != "named" {
			return false
		}
		mu.Lock()
		defer mu.Unlock()
		return seen["/svc/x "+host+" svc.test"] > 0 && seen["/healthz "+host+" svc.test"] >= 2
	})
	mu.Lock()
	defer mu.Unlock()
	for k := range seen {
		if k != "/svc/x "+host+" svc.test" && k != "/healthz "+host+" svc.test" {
			t.Errorf("the upstream saw %q; want every request to name svc.test", k)
		}
	}
}

// nameCert makes a CA and a server certificate for name (and no
// address), returning the CA in PEM and the server's key pair.
func nameCert(t *testing.T, name string) ([]byte, tls.Certificate) {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: name}, DNSNames: []string{name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}
