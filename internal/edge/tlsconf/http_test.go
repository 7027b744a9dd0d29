package tlsconf

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/portunus-gw/portunus/internal/config"
)

// httpsServer serves 200 "ok" with m's TLS config.
func httpsServer(t *testing.T, m *Manager) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{
		Handler:           http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok") }),
		ReadHeaderTimeout: 10 * time.Second,
	}
	// As the gateway serves: ServeTLS with the Manager's config and no
	// certificate files.
	srv.TLSConfig = m.TLSConfig()
	go func() { _ = srv.ServeTLS(ln, "", "") }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	})
	return ln.Addr().String()
}

// TestHTTP2ThroughServer: an http.Server on tls.NewListener(TLSConfig())
// serves HTTP/2 and HTTP/1.1, with and without client certificates (the
// latter runs on the config GetConfigForClient returns).
func TestHTTP2ThroughServer(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ca := newCA(t, "root", false)
	pair := ca.issue(t, leafOpts{cn: "gw", dns: []string{"gw.test"}}).write(t, dir, "gw")
	caFile := filepath.Join(dir, "clients.pem")
	writeFile(t, caFile, ca.pem)
	clientCert := ca.issue(t, leafOpts{cn: "alice", client: true}).tlsCert(t)
	roots := x509.NewCertPool()
	roots.AddCert(ca.cert)
	cases := []struct {
		name       string
		clientAuth string
		h2         bool
		wantMajor  int
	}{
		{"h2", "none", true, 2},
		{"http/1.1", "none", false, 1},
		{"h2 with mTLS", "require", true, 2},
		{"http/1.1 with mTLS", "require", false, 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := &config.ListenerTLS{Certificates: []config.Certificate{pair}, ClientAuth: tc.clientAuth}
			if tc.clientAuth != "none" {
				c.ClientCAFile = caFile
			}
			url := "https://" + httpsServer(t, newManager(t, c, nil)) + "/"
			tr := &http.Transport{
				TLSClientConfig:   &tls.Config{ServerName: "gw.test", RootCAs: roots, Certificates: []tls.Certificate{clientCert}},
				ForceAttemptHTTP2: tc.h2,
			}
			if !tc.h2 {
				tr.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
			}
			defer tr.CloseIdleConnections()
			resp, err := (&http.Client{Transport: tr, Timeout: 20 * time.Second}).Get(url)
			if err != nil {
				t.Fatalf("GET: %v", err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != http.StatusOK || resp.ProtoMajor != tc.wantMajor {
				t.Errorf("got %d over HTTP/%d; want 200 over HTTP/%d", resp.StatusCode, resp.ProtoMajor, tc.wantMajor)
			}
		})
	}
}
