package upstream

import (
	"crypto/tls"
	"crypto/x509"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/portunus-gw/portunus/internal/config"
)

// TestActiveHealthOverTLS: probes use the pool's TLS settings: the CA
// file verifies the target, server_name is sent as SNI and verified, and
// the client certificate is presented. A wrong server name fails the
// probe.
func TestActiveHealthOverTLS(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	serverCA, clientCA := newTestCA(t, "server-ca"), newTestCA(t, "client-ca")
	srvCert, srvKey := serverCA.issue(t, "backend", []string{"backend.internal"}, x509.ExtKeyUsageServerAuth)
	cliCert, cliKey := clientCA.issue(t, "gateway", nil, x509.ExtKeyUsageClientAuth)
	pair, err := tls.X509KeyPair(srvCert, srvKey)
	if err != nil {
		t.Fatal(err)
	}
	clientPool := x509.NewCertPool()
	clientPool.AddCert(clientCA.cert)
	sni := make(chan string, 100)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if len(r.TLS.PeerCertificates) == 0 || r.TLS.PeerCertificates[0].Subject.CommonName != "gateway" {
			w.WriteHeader(http.StatusForbidden)
			return
		}
		select {
		case sni <- r.TLS.ServerName:
		default:
		}
	}))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{pair}, ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: clientPool}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(srv.URL, "https://"))
	target := "https://127.0.0.1:" + port
	good := config.UpstreamTLS{
		CAFile:     writeFile(t, dir, "server-ca.pem", serverCA.pem),
		CertFile:   writeFile(t, dir, "client.pem", cliCert),
		KeyFile:    writeFile(t, dir, "client-key.pem", cliKey),
		ServerName: "backend.internal",
	}

	p := newTestPool(t, config.Upstream{Targets: []config.Target{{URL: target}}, TLS: good, HealthCheck: fastCheck("/hc", "200")})
	p.Start()
	a := p.Targets()[0]
	waitFor(t, "a passing probe over mTLS", func() bool { return a.Status().Health == HealthHealthy })
	if got := <-sni; got != "backend.internal" {
		t.Errorf("probe SNI %q; want backend.internal", got)
	}

	bad := good
	bad.ServerName = "other.internal"
	q := newTestPool(t, config.Upstream{Targets: []config.Target{{URL: target}}, TLS: bad, HealthCheck: fastCheck("/hc", "200")})
	q.Start()
	b := q.Targets()[0]
	waitFor(t, "a wrong server name to fail the probes", func() bool { return b.Status().Health == HealthUnhealthy })
	if lc := b.Status().LastCheck; !strings.Contains(lc.Error, "certificate") {
		t.Errorf("probe error %q; want a certificate error", lc.Error)
	}
}
