package upstream

import (
	"crypto/x509"
	"encoding/pem"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/portunus-gw/portunus/internal/config"
)

// protoServer answers with the protocol the request arrived over, and a
// trailer, so a test sees both the negotiated protocol and that trailers
// survive the transport.
func protoServer(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Trailer", "X-Proto")
	_, _ = io.WriteString(w, r.Proto)
	w.Header().Set("X-Proto", r.Proto)
	w.Header().Set(http.TrailerPrefix+"X-Undeclared", "late")
}

// startH2C serves protoServer over plain TCP with HTTP/1.1 and HTTP/2
// prior knowledge.
func startH2C(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var protos http.Protocols
	protos.SetHTTP1(true)
	protos.SetUnencryptedHTTP2(true)
	srv := &http.Server{Handler: http.HandlerFunc(protoServer), Protocols: &protos}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return "http://" + ln.Addr().String()
}

// startTLS serves protoServer over TLS offering h2 and http/1.1, and
// writes its certificate to a CA file for the pool.
func startTLS(t *testing.T) (url, caFile string) {
	t.Helper()
	srv := httptest.NewUnstartedServer(http.HandlerFunc(protoServer))
	srv.EnableHTTP2 = true
	srv.StartTLS()
	t.Cleanup(srv.Close)
	caFile = filepath.Join(t.TempDir(), "ca.pem")
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	if err := os.WriteFile(caFile, pemBytes, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := x509.ParseCertificate(srv.Certificate().Raw); err != nil {
		t.Fatal(err)
	}
	return srv.URL, caFile
}

func TestUpstreamProtocols(t *testing.T) {
	t.Parallel()
	h2cURL := startH2C(t)
	tlsURL, ca := startTLS(t)
	cases := []struct {
		name     string
		protocol string
		url      string
		want     string // the protocol the upstream saw; "" = the request fails
	}{
		{"auto plain is HTTP/1.1", "auto", h2cURL, "HTTP/1.1"},
		{"default plain is HTTP/1.1", "", h2cURL, "HTTP/1.1"},
		{"auto TLS negotiates h2", "auto", tlsURL, "HTTP/2.0"},
		{"http1 plain", "http1", h2cURL, "HTTP/1.1"},
		{"http1 TLS stays HTTP/1.1", "http1", tlsURL, "HTTP/1.1"},
		{"h2c prior knowledge", "h2c", h2cURL, "HTTP/2.0"},
		{"h2c over TLS is h2", "h2c", tlsURL, "HTTP/2.0"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p, err := NewPool(config.Upstream{Name: "p", Protocol: tc.protocol,
				Targets: []config.Target{{URL: tc.url}}, TLS: config.UpstreamTLS{CAFile: ca}})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = p.Close() })
			req, _ := http.NewRequest("GET", tc.url+"/", nil)
			res, err := p.RoundTripper().RoundTrip(req)
			if err != nil {
				t.Fatalf("round trip: %v", err)
			}
			defer res.Body.Close()
			body, err := io.ReadAll(res.Body)
			if err != nil {
				t.Fatal(err)
			}
			if string(body) != tc.want {
				t.Errorf("upstream saw %q; want %q", body, tc.want)
			}
			if got := res.Trailer.Get("X-Proto"); got != tc.want {
				t.Errorf("declared trailer X-Proto: got %q; want %q", got, tc.want)
			}
			if got := res.Trailer.Get("X-Undeclared"); got != "late" {
				t.Errorf("undeclared trailer: got %q; want %q", got, "late")
			}
		})
	}
}

func TestUpstreamProtocolInvalid(t *testing.T) {
	t.Parallel()
	_, err := NewPool(config.Upstream{Name: "p", Protocol: "spdy"})
	if err == nil || !strings.Contains(err.Error(), "protocol") {
		t.Errorf("NewPool(protocol spdy): got %v; want a protocol error", err)
	}
}
