package tlsconf

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/portunus-gw/portunus/internal/config"
)

// cipherSuites are the TLS 1.2 suites offered: forward-secret ECDHE key
// exchange with an AEAD only. No RSA key exchange, no CBC, no 3DES, no RC4.
// (TLS 1.3 suites are not configurable in Go and are all AEADs.)
var cipherSuites = []uint16{
	tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
	tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
}

// curves are the key exchange groups, preferred first: the hybrid
// post-quantum X25519MLKEM768 (TLS 1.3 only), then X25519 and P-256.
var curves = []tls.CurveID{tls.X25519MLKEM768, tls.X25519, tls.CurveP256}

// state is what handshakes read; it is replaced whole on reload.
type state struct {
	ix        *certIndex
	clientCAs *x509.CertPool
	caDigest  [32]byte
	// conf is the config handed out by GetConfigForClient when client
	// certificates are verified (so that a reloaded CA bundle is used).
	conf *tls.Config
}

// Manager owns a listener's certificates: SNI selection, reload when the
// files change, OCSP staples. It is safe for concurrent use.
type Manager struct {
	log        *slog.Logger
	clientAuth tls.ClientAuthType
	minVersion uint16
	certs      []config.Certificate
	caFile     string

	cur atomic.Pointer[state]

	// reloadMu serialises reloads (the watcher and tests).
	reloadMu sync.Mutex

	ocspClient *http.Client
	ctx        context.Context
	cancel     context.CancelFunc
	wg         sync.WaitGroup // OCSP refreshers
	watch      *fileWatcher
	closeOnce  sync.Once
}

// New loads the certificates of c (and its client CA bundle) and starts
// watching their files. The error names the file at fault. A nil log
// discards.
func New(c *config.ListenerTLS, log *slog.Logger) (*Manager, error) {
	if c == nil || len(c.Certificates) == 0 {
		return nil, fmt.Errorf("tlsconf: a TLS listener needs at least one certificate")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	m := &Manager{
		log:    log.With("component", "tls"),
		certs:  append([]config.Certificate(nil), c.Certificates...),
		caFile: c.ClientCAFile,
		// An own transport, so Close can drop its idle connections.
		ocspClient: &http.Client{Timeout: ocspTimeout, Transport: http.DefaultTransport.(*http.Transport).Clone()},
	}
	switch c.ClientAuth {
	case "", "none":
		m.clientAuth = tls.NoClientCert
	case "request":
		m.clientAuth = tls.VerifyClientCertIfGiven
	case "require":
		m.clientAuth = tls.RequireAndVerifyClientCert
	default:
		return nil, fmt.Errorf("tlsconf: unknown client_auth %q (want none, request or require)", c.ClientAuth)
	}
	switch c.MinVersion {
	case "", "1.2":
		m.minVersion = tls.VersionTLS12
	case "1.3":
		m.minVersion = tls.VersionTLS13
	default:
		return nil, fmt.Errorf("tlsconf: unknown min_version %q (want 1.2 or 1.3)", c.MinVersion)
	}
	if m.clientAuth != tls.NoClientCert && m.caFile == "" {
		return nil, fmt.Errorf("tlsconf: client_auth %q needs client_ca_file", c.ClientAuth)
	}

	slots := make([]*slot, len(m.certs))
	for i, cf := range m.certs {
		s, err := loadPair(cf)
		if err != nil {
			return nil, fmt.Errorf("tlsconf: %w", err)
		}
		slots[i] = s
	}
	st := &state{ix: newCertIndex(slots)}
	if m.caFile != "" {
		pool, d, err := loadCAPool(m.caFile)
		if err != nil {
			return nil, fmt.Errorf("tlsconf: %w", err)
		}
		st.clientCAs, st.caDigest = pool, d
	}
	m.ctx, m.cancel = context.WithCancel(context.Background())
	m.install(st)
	for _, s := range slots {
		m.log.Info("tls certificate loaded", s.logAttrs()...)
		m.warnExpiry(s)
		m.startOCSP(s, nil)
	}

	w, err := newFileWatcher(m.log, m.files(), m.reload)
	if err != nil {
		// Serving still works; only reload-on-change is lost.
		m.log.Warn("cannot watch certificate files; they will not be reloaded", "error", err)
	}
	m.watch = w
	return m, nil
}

// files lists every file the Manager reads.
func (m *Manager) files() []string {
	var out []string
	for _, c := range m.certs {
		out = append(out, c.CertFile, c.KeyFile)
	}
	if m.caFile != "" {
		out = append(out, m.caFile)
	}
	return out
}

// baseConfig is the policy every handshake uses.
func (m *Manager) baseConfig() *tls.Config {
	return &tls.Config{
		MinVersion:       m.minVersion,
		CipherSuites:     cipherSuites,
		CurvePreferences: curves,
		NextProtos:       []string{"h2", "http/1.1"},
		ClientAuth:       m.clientAuth,
		GetCertificate:   m.getCertificate,
	}
}

// install publishes st, precomputing its handshake config.
func (m *Manager) install(st *state) {
	if st.clientCAs != nil && m.clientAuth != tls.NoClientCert {
		st.conf = m.baseConfig()
		st.conf.ClientCAs = st.clientCAs
	}
	m.cur.Store(st)
}

// TLSConfig is the config to serve with: ALPN h2 and http/1.1, the
// Manager's version and cipher policy, certificates by SNI and client
// certificate verification. Each call returns a new Config the caller may
// adjust; but when client certificates are verified, the handshake runs on
// the Manager's own config (returned by GetConfigForClient, so that a
// reloaded CA bundle takes effect), and changes to the returned Config's
// policy fields do not apply to it.
func (m *Manager) TLSConfig() *tls.Config {
	c := m.baseConfig()
	if m.clientAuth != tls.NoClientCert {
		c.ClientCAs = m.cur.Load().clientCAs
		c.GetConfigForClient = m.getConfigForClient
	}
	return c
}

func (m *Manager) getCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	return m.cur.Load().ix.pick(hello), nil
}

func (m *Manager) getConfigForClient(*tls.ClientHelloInfo) (*tls.Config, error) {
	return m.cur.Load().conf, nil
}

// Close stops watching files and refreshing staples. The TLS config keeps
// serving the last loaded certificates.
func (m *Manager) Close() error {
	m.closeOnce.Do(func() {
		if m.watch != nil {
			m.watch.close()
		}
		m.cancel()
		m.wg.Wait()
		m.ocspClient.CloseIdleConnections()
	})
	return nil
}

// reload re-reads every file. A pair whose files did not change keeps its
// slot (and its staple); a pair that fails to load keeps the previous one
// and is logged; the same goes for the CA bundle. Connections already up
// are not touched.
func (m *Manager) reload() {
	m.reloadMu.Lock()
	defer m.reloadMu.Unlock()
	old := m.cur.Load()
	slots := make([]*slot, len(old.ix.slots))
	copy(slots, old.ix.slots)
	changed := false
	for i, cf := range m.certs {
		certPEM, keyPEM, digest, err := readPair(cf)
		if err == nil && digest == slots[i].digest {
			continue
		}
		var s *slot
		if err == nil {
			s, err = parsePair(cf, certPEM, keyPEM, digest)
		}
		if err != nil {
			m.log.Error("tls certificate reload failed; keeping the previous certificate",
				"cert_file", cf.CertFile, "key_file", cf.KeyFile, "error", err)
			continue
		}
		m.log.Info("tls certificate reloaded", s.logAttrs()...)
		m.warnExpiry(s)
		m.startOCSP(s, slots[i])
		slots[i] = s
		changed = true
	}
	st := &state{ix: old.ix, clientCAs: old.clientCAs, caDigest: old.caDigest}
	if m.caFile != "" {
		pool, d, err := loadCAPool(m.caFile)
		switch {
		case err != nil:
			m.log.Error("tls client CA reload failed; keeping the previous bundle", "client_ca_file", m.caFile, "error", err)
		case d != old.caDigest:
			st.clientCAs, st.caDigest = pool, d
			changed = true
			m.log.Info("tls client CA bundle reloaded", "client_ca_file", m.caFile)
		}
	}
	if !changed {
		return
	}
	st.ix = newCertIndex(slots)
	m.install(st)
	for i, s := range old.ix.slots {
		if slots[i] != s && s.stop != nil {
			s.stop()
		}
	}
}

// expiryWarning is how early a certificate's coming expiry is logged.
const expiryWarning = 14 * 24 * time.Hour

func (m *Manager) warnExpiry(s *slot) {
	left := time.Until(s.leaf.NotAfter)
	switch {
	case left <= 0:
		m.log.Error("tls certificate has expired", "cert_file", s.files.CertFile, "not_after", s.leaf.NotAfter.UTC().Format(time.RFC3339))
	case left < expiryWarning:
		m.log.Warn("tls certificate expires soon", "cert_file", s.files.CertFile, "not_after", s.leaf.NotAfter.UTC().Format(time.RFC3339))
	}
}
