package gateway

import (
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// lsTLSConfig is a gateway with a TLS listener (index 0) and a plain one
// (index 1); hsts is the tls.hsts block or "".
func lsTLSConfig(certFile, keyFile, hsts, upstreamURL string) string {
	if hsts != "" {
		hsts = ", hsts: " + hsts
	}
	return fmt.Sprintf(`
listeners:
  - address: "127.0.0.1:0"
    tls: { certificates: [{ cert_file: %q, key_file: %q }]%s }
  - address: "127.0.0.1:0"
observability: { access_log: { path: "off" } }
upstreams: [{ name: up, targets: [{ url: %q }] }]
routes:
  - name: ping
    match: { path: /ping }
    respond: { status: 200, body: pong }
  - name: up
    match: { path_prefix: /up }
    upstream: up
`, certFile, keyFile, hsts, upstreamURL)
}

func lsGet(t *testing.T, c *http.Client, url string) *http.Response {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp
}

func TestTLSListenerALPNAndHSTS(t *testing.T) {
	t.Parallel()
	ca := lsNewCA(t)
	dir := t.TempDir()
	certFile, keyFile := ca.leaf(t, dir, "server", "localhost", "127.0.0.1")
	lsRequireTLSManager(t, certFile, keyFile)
	// The upstream sets its own HSTS: the listener's value wins.
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Strict-Transport-Security", "max-age=1")
		_, _ = io.WriteString(w, "upstream")
	}))
	t.Cleanup(up.Close)
	g := startGateway(t, lsTLSConfig(certFile, keyFile, "{ max_age: 1h, include_subdomains: true, preload: true }", up.URL))
	tlsURL := "https://" + g.lsAddr("127.0.0.1:0")
	plainURL := "http://" + g.lsAddr("127.0.0.1:0#1")
	const wantHSTS = "max-age=3600; includeSubDomains; preload"

	cases := []struct {
		name     string
		client   *http.Client
		url      string
		status   int
		proto    string
		wantHSTS string
	}{
		{"h2 by ALPN", ca.client(true), tlsURL + "/ping", 200, "HTTP/2.0", wantHSTS},
		{"http/1.1 by ALPN", ca.client(false), tlsURL + "/ping", 200, "HTTP/1.1", wantHSTS},
		{"gateway error carries HSTS", ca.client(true), tlsURL + "/nowhere", 404, "HTTP/2.0", wantHSTS},
		{"upstream answer carries the listener's HSTS", ca.client(true), tlsURL + "/up", 200, "HTTP/2.0", wantHSTS},
		{"plain listener has no HSTS", http.DefaultClient, plainURL + "/ping", 200, "HTTP/1.1", ""},
		{"plain listener never HSTS from the gateway", http.DefaultClient, plainURL + "/nowhere", 404, "HTTP/1.1", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			resp := lsGet(t, tc.client, tc.url)
			if resp.StatusCode != tc.status || resp.Proto != tc.proto {
				t.Errorf("got %d %s; want %d %s", resp.StatusCode, resp.Proto, tc.status, tc.proto)
			}
			if got := resp.Header.Values("Strict-Transport-Security"); strings.Join(got, ",") != tc.wantHSTS {
				t.Errorf("Strict-Transport-Security = %q; want %q", got, tc.wantHSTS)
			}
		})
	}
	t.Run("plain HTTP to the TLS port fails", func(t *testing.T) {
		t.Parallel()
		resp, err := http.Get("http://" + g.lsAddr("127.0.0.1:0") + "/ping")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode != http.StatusBadRequest {
				t.Errorf("plain HTTP to the TLS listener: got %d; want 400 or an error", resp.StatusCode)
			}
		}
	})
}

func TestTLSHSTSDefaultMaxAge(t *testing.T) {
	t.Parallel()
	ca := lsNewCA(t)
	certFile, keyFile := ca.leaf(t, t.TempDir(), "server", "localhost", "127.0.0.1")
	lsRequireTLSManager(t, certFile, keyFile)
	g := startGateway(t, lsTLSConfig(certFile, keyFile, "{}", "http://127.0.0.1:1"))
	resp := lsGet(t, ca.client(true), "https://"+g.lsAddr("127.0.0.1:0")+"/ping")
	if got, want := resp.Header.Get("Strict-Transport-Security"), "max-age=31536000"; got != want {
		t.Errorf("Strict-Transport-Security = %q; want %q", got, want)
	}
}

func TestTLSNoHSTSUnlessConfigured(t *testing.T) {
	t.Parallel()
	ca := lsNewCA(t)
	certFile, keyFile := ca.leaf(t, t.TempDir(), "server", "localhost", "127.0.0.1")
	lsRequireTLSManager(t, certFile, keyFile)
	g := startGateway(t, lsTLSConfig(certFile, keyFile, "", "http://127.0.0.1:1"))
	resp := lsGet(t, ca.client(true), "https://"+g.lsAddr("127.0.0.1:0")+"/ping")
	if got := resp.Header.Get("Strict-Transport-Security"); got != "" {
		t.Errorf("Strict-Transport-Security = %q without tls.hsts; want none", got)
	}
	if resp.Proto != "HTTP/2.0" {
		t.Errorf("proto = %s; want HTTP/2.0", resp.Proto)
	}
}

// peerSerial returns the serial of the certificate the TLS listener at
// addr presents.
func peerSerial(t *testing.T, ca *lsCA, addr string) string {
	t.Helper()
	c, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: ca.pool, ServerName: "localhost"})
	if err != nil {
		t.Fatalf("TLS dial %s: %v", addr, err)
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0].SerialNumber.String()
}

func TestTLSBadCertificateFailsReload(t *testing.T) {
	t.Parallel()
	ca := lsNewCA(t)
	dir := t.TempDir()
	certFile, keyFile := ca.leaf(t, dir, "server", "localhost", "127.0.0.1")
	lsRequireTLSManager(t, certFile, keyFile)
	g := startGateway(t, lsTLSConfig(certFile, keyFile, "", "http://127.0.0.1:1"))
	addr := g.lsAddr("127.0.0.1:0")
	before := peerSerial(t, ca, addr)

	garbage := dir + "/garbage.pem"
	if err := lsWriteFile(garbage, "not a certificate"); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, cert, key string
	}{
		{"missing cert file", dir + "/missing.crt", keyFile},
		{"garbage cert file", garbage, keyFile},
		{"key of another certificate", certFile, garbage},
	}
	for _, tc := range cases {
		g.rewrite(lsTLSConfig(tc.cert, tc.key, "", "http://127.0.0.1:1"))
		err := g.lsReload()
		if err == nil {
			t.Fatalf("%s: reload succeeded; want it to fail", tc.name)
		}
		if !strings.Contains(err.Error(), "listeners[0].tls") {
			t.Errorf("%s: error %q; want it at listeners[0].tls", tc.name, err)
		}
		if got := g.lsAddr("127.0.0.1:0"); got != addr {
			t.Errorf("%s: listener moved to %s; want it kept at %s", tc.name, got, addr)
		}
		if got := peerSerial(t, ca, addr); got != before {
			t.Errorf("%s: certificate serial %s; want the old %s", tc.name, got, before)
		}
		resp := lsGet(t, ca.client(true), "https://"+addr+"/ping")
		if resp.StatusCode != 200 {
			t.Errorf("%s: old listener answered %d; want 200", tc.name, resp.StatusCode)
		}
	}
}

func TestTLSBadCertificateFailsStart(t *testing.T) {
	t.Parallel()
	ca := lsNewCA(t)
	dir := t.TempDir()
	certFile, keyFile := ca.leaf(t, dir, "server", "localhost")
	lsRequireTLSManager(t, certFile, keyFile)
	path := dir + "/portunus.yaml"
	if err := lsWriteFile(path, lsTLSConfig(dir+"/missing.crt", keyFile, "", "http://127.0.0.1:1")); err != nil {
		t.Fatal(err)
	}
	rt, err := Start(Options{ConfigPath: path, Log: discardLog()})
	if err == nil {
		rt.Shutdown(t.Context())
		t.Fatal("start with a missing certificate succeeded; want an error")
	}
	if !strings.Contains(err.Error(), "listeners[0].tls") {
		t.Errorf("error %q; want it at listeners[0].tls", err)
	}
}

// TestTLSCertificatePathChange: a new certificate path is a config change
// that re-creates the listener with the new certificate.
func TestTLSCertificatePathChange(t *testing.T) {
	t.Parallel()
	ca := lsNewCA(t)
	dir := t.TempDir()
	cert1, key1 := ca.leaf(t, dir, "one", "localhost", "127.0.0.1")
	cert2, key2 := ca.leaf(t, dir, "two", "localhost", "127.0.0.1")
	lsRequireTLSManager(t, cert1, key1)
	g := startGateway(t, lsTLSConfig(cert1, key1, "", "http://127.0.0.1:1"))
	before := peerSerial(t, ca, g.lsAddr("127.0.0.1:0"))
	plainBefore := g.lsAddr("127.0.0.1:0#1")

	g.rewrite(lsTLSConfig(cert2, key2, "", "http://127.0.0.1:1"))
	if err := g.lsReload(); err != nil {
		t.Fatalf("reload: %v", err)
	}
	after := peerSerial(t, ca, g.lsAddr("127.0.0.1:0"))
	if after == before {
		t.Errorf("certificate serial unchanged (%s) after the cert path changed", after)
	}
	if got := g.lsAddr("127.0.0.1:0#1"); got != plainBefore {
		t.Errorf("unchanged plain listener moved from %s to %s; want it kept", plainBefore, got)
	}
	resp := lsGet(t, ca.client(true), "https://"+g.lsAddr("127.0.0.1:0")+"/ping")
	if resp.StatusCode != 200 || resp.Proto != "HTTP/2.0" {
		t.Errorf("after reload: got %d %s; want 200 HTTP/2.0", resp.StatusCode, resp.Proto)
	}
}

// TestTLSRotationThroughGateway: after a reload that leaves the TLS
// listener unchanged (same socket, same certificate manager), replacing
// the certificate files switches new handshakes to the new certificate
// while clients keep making requests, none of which fails.
func TestTLSRotationThroughGateway(t *testing.T) {
	t.Parallel()
	ca := lsNewCA(t)
	dir := t.TempDir()
	certFile, keyFile := ca.leaf(t, dir, "server", "localhost", "127.0.0.1")
	newCert, newKey := ca.leaf(t, dir, "next", "localhost", "127.0.0.1")
	lsRequireTLSManager(t, certFile, keyFile)
	cfg := lsTLSConfig(certFile, keyFile, "", "http://127.0.0.1:1")
	g := startGateway(t, cfg)
	addr := g.lsAddr("127.0.0.1:0")
	oldSerial := peerSerial(t, ca, addr)

	// An unrelated change: the listener (and its manager) must be kept.
	g.rewrite(cfg + "  - name: extra\n    match: { path: /extra }\n    respond: { status: 204 }\n")
	if err := g.lsReload(); err != nil {
		t.Fatalf("reload: %v", err)
	}
	if got := g.lsAddr("127.0.0.1:0"); got != addr {
		t.Fatalf("TLS listener moved from %s to %s on an unrelated reload; want it kept", addr, got)
	}

	var (
		stop             atomic.Bool
		requests, failed atomic.Int64
		firstErr         atomic.Value
		wg               sync.WaitGroup
	)
	for range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := ca.client(true)
			c.Transport.(*http.Transport).DisableKeepAlives = true
			for !stop.Load() {
				resp, err := c.Get("https://" + addr + "/ping")
				requests.Add(1)
				if err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, resp.Status)
				}
			}
		}()
	}
	lsEventually(t, "requests before the rotation", func() bool { return requests.Load() >= 10 })
	for _, mv := range [][2]string{{newCert, certFile}, {newKey, keyFile}} {
		if err := os.Rename(mv[0], mv[1]); err != nil {
			t.Fatal(err)
		}
	}
	lsEventually(t, "the new certificate", func() bool { return peerSerial(t, ca, addr) != oldSerial })
	before := requests.Load()
	lsEventually(t, "requests after the rotation", func() bool { return requests.Load() >= before+10 })
	stop.Store(true)
	wg.Wait()
	if n := failed.Load(); n != 0 {
		t.Errorf("%d of %d requests failed during rotation (first: %v); want none", n, requests.Load(), firstErr.Load())
	}
}

// lsEventually polls cond for up to 20 seconds.
func lsEventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
