package tlsconf

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net/http"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/portunus-gw/portunus/internal/config"
)

// get makes one request and returns the serial of the certificate seen.
func get(client *http.Client, url string) (*big.Int, error) {
	resp, err := client.Get(url)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK || string(b) != "ok" {
		return nil, fmt.Errorf("got %d %q; want 200 ok", resp.StatusCode, b)
	}
	return resp.TLS.PeerCertificates[0].SerialNumber, nil
}

// TestRotationUnderLoad rewrites the certificate and key (atomic renames)
// while clients handshake continuously: no request fails, new handshakes
// end up on the new certificate, and a connection made before the swap
// keeps working.
func TestRotationUnderLoad(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ca := newCA(t, "root", false)
	v1 := ca.issue(t, leafOpts{cn: "v1", dns: []string{"rot.test"}})
	v2 := ca.issue(t, leafOpts{cn: "v2", dns: []string{"rot.test"}})
	pair := v1.write(t, dir, "rot")
	sink := &logSink{}
	m := newManager(t, &config.ListenerTLS{Certificates: []config.Certificate{pair}}, slog.New(sink))
	url := "https://" + httpsServer(t, m) + "/"

	roots := x509.NewCertPool()
	roots.AddCert(ca.cert)
	tlsConf := &tls.Config{ServerName: "rot.test", RootCAs: roots}
	// A kept-alive connection made before the swap.
	kept := &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{TLSClientConfig: tlsConf, MaxConnsPerHost: 1}}
	defer kept.CloseIdleConnections()
	if s, err := get(kept, url); err != nil || s.Cmp(v1.cert.SerialNumber) != 0 {
		t.Fatalf("before rotation: got serial %v, error %v; want %v", s, err, v1.cert.SerialNumber)
	}

	var (
		stop             atomic.Bool
		requests, failed atomic.Int64
		sawNew           atomic.Bool
		wg               sync.WaitGroup
		firstErr         atomic.Value
	)
	for range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// A fresh handshake per request.
			c := &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{TLSClientConfig: tlsConf, DisableKeepAlives: true}}
			for !stop.Load() {
				s, err := get(c, url)
				requests.Add(1)
				if err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
					continue
				}
				if s.Cmp(v2.cert.SerialNumber) == 0 {
					sawNew.Store(true)
				}
			}
		}()
	}
	eventually(t, "requests before the rotation", func() bool { return requests.Load() >= 20 })
	// Certificate first, key second: a reload in between sees a mismatched
	// pair and must keep serving v1.
	writeFile(t, pair.CertFile, v2.chainPEM)
	writeFile(t, pair.KeyFile, v2.keyPEM)
	eventually(t, "a handshake with the new certificate", sawNew.Load)
	before := requests.Load()
	eventually(t, "requests after the rotation", func() bool { return requests.Load() >= before+20 })
	stop.Store(true)
	wg.Wait()

	if n := failed.Load(); n != 0 {
		t.Errorf("got %d failed requests of %d (first: %v); want none", n, requests.Load(), firstErr.Load())
	}
	if got := m.cur.Load().ix.slots[0].leaf.SerialNumber; got.Cmp(v2.cert.SerialNumber) != 0 {
		t.Errorf("got serving serial %v; want %v", got, v2.cert.SerialNumber)
	}
	if s, err := get(kept, url); err != nil || s.Cmp(v1.cert.SerialNumber) != 0 {
		t.Errorf("kept-alive connection after rotation: got serial %v, error %v; want %v on the same connection", s, err, v1.cert.SerialNumber)
	}
	if sink.count("tls certificate reloaded") == 0 {
		t.Error("got no reload log line; want one")
	}
}

// TestBrokenFileKeepsOld: a garbage certificate, then a certificate whose
// key does not match, are both refused and the old pair is served on.
func TestBrokenFileKeepsOld(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ca := newCA(t, "root", false)
	v1 := ca.issue(t, leafOpts{cn: "v1", dns: []string{"keep.test"}})
	other := ca.issue(t, leafOpts{cn: "other", dns: []string{"keep.test"}})
	pair := v1.write(t, dir, "keep")
	sink := &logSink{}
	m := newManager(t, &config.ListenerTLS{Certificates: []config.Certificate{pair}}, slog.New(sink))
	addr := handshakeServer(t, m.TLSConfig())

	steps := []struct {
		name string
		file string
		data []byte
	}{
		{"garbage certificate", pair.CertFile, []byte("-----BEGIN CERTIFICATE-----\nnope\n-----END CERTIFICATE-----\n")},
		{"certificate of another key", pair.CertFile, other.chainPEM},
	}
	for i, st := range steps {
		writeFile(t, st.file, st.data)
		eventually(t, st.name+" to be refused", func() bool { return sink.count("reload failed") >= i+1 })
		cs, err := dial(addr, &tls.Config{ServerName: "keep.test", InsecureSkipVerify: true})
		if err != nil {
			t.Fatalf("%s: handshake: %v", st.name, err)
		}
		if got := cs.PeerCertificates[0]; !got.Equal(v1.cert) {
			t.Errorf("%s: got certificate %q; want the old %q", st.name, got.Subject.CommonName, "v1")
		}
	}
}

// TestClientCAReload: a client certificate from a new CA is accepted once
// the CA bundle file is replaced.
func TestClientCAReload(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	serverCA := newCA(t, "server root", false)
	oldCA := newCA(t, "old client root", false)
	nextCA := newCA(t, "new client root", false)
	pair := serverCA.issue(t, leafOpts{cn: "gw", dns: []string{"gw.test"}}).write(t, dir, "gw")
	caFile := filepath.Join(dir, "clients.pem")
	writeFile(t, caFile, oldCA.pem)
	m := newManager(t, &config.ListenerTLS{Certificates: []config.Certificate{pair}, ClientAuth: "require", ClientCAFile: caFile}, nil)
	addr := handshakeServer(t, m.TLSConfig())
	cert := nextCA.issue(t, leafOpts{cn: "bob", client: true}).tlsCert(t)
	client := &tls.Config{ServerName: "gw.test", InsecureSkipVerify: true,
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &cert, nil }}
	if _, err := dial(addr, client); err == nil {
		t.Fatal("before the CA reload: got accepted; want refused")
	}
	writeFile(t, caFile, nextCA.pem)
	eventually(t, "the new CA to be trusted", func() bool {
		_, err := dial(addr, client)
		return err == nil
	})
}
