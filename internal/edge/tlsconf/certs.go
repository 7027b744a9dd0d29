package tlsconf

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/portunus-gw/portunus/internal/config"
)

// maxPEMBytes bounds what is read from one certificate, key or CA file. A
// real chain or bundle is a few tens of KiB; this stops a wrong path (a log
// file, a device) from being slurped whole.
const maxPEMBytes = 4 << 20

// slot is one configured certificate/key pair as currently loaded. The
// served *tls.Certificate is swapped whole (never mutated) when its OCSP
// staple changes, so handshakes read it without locks.
type slot struct {
	files  config.Certificate
	digest [32]byte // of the cert and key file contents, to skip no-op reloads
	cert   atomic.Pointer[tls.Certificate]
	leaf   *x509.Certificate
	// issuer is the leaf's issuer when the chain carries it; OCSP needs it.
	issuer  *x509.Certificate
	ocspURL string
	// stop ends this slot's OCSP refresher (nil when there is none).
	stop func()
}

// readPEM reads a PEM file, refusing absurdly large ones.
func readPEM(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxPEMBytes+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if len(b) > maxPEMBytes {
		return nil, fmt.Errorf("%s is larger than %d bytes; not a PEM file", path, maxPEMBytes)
	}
	return b, nil
}

// readPair reads the files of one pair and the digest of their contents.
func readPair(c config.Certificate) (certPEM, keyPEM []byte, digest [32]byte, err error) {
	if certPEM, err = readPEM(c.CertFile); err != nil {
		return nil, nil, digest, err
	}
	if keyPEM, err = readPEM(c.KeyFile); err != nil {
		return nil, nil, digest, err
	}
	h := sha256.New()
	h.Write(certPEM)
	h.Write([]byte{0})
	h.Write(keyPEM)
	copy(digest[:], h.Sum(nil))
	return certPEM, keyPEM, digest, nil
}

// parsePair builds a slot from PEM bytes: the chain must parse and the key
// must match the leaf (tls.X509KeyPair checks both).
func parsePair(c config.Certificate, certPEM, keyPEM []byte, digest [32]byte) (*slot, error) {
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("certificate %s with key %s: %w", c.CertFile, c.KeyFile, err)
	}
	leaf := pair.Leaf
	if leaf == nil {
		if leaf, err = x509.ParseCertificate(pair.Certificate[0]); err != nil {
			return nil, fmt.Errorf("certificate %s: %w", c.CertFile, err)
		}
		pair.Leaf = leaf
	}
	s := &slot{files: c, digest: digest, leaf: leaf}
	if len(pair.Certificate) > 1 {
		if iss, err := x509.ParseCertificate(pair.Certificate[1]); err == nil && leaf.CheckSignatureFrom(iss) == nil {
			s.issuer = iss
		}
	}
	if len(leaf.OCSPServer) > 0 {
		s.ocspURL = leaf.OCSPServer[0]
	}
	s.cert.Store(&pair)
	return s, nil
}

// loadPair reads and parses one pair; errors name the file at fault.
func loadPair(c config.Certificate) (*slot, error) {
	certPEM, keyPEM, digest, err := readPair(c)
	if err != nil {
		return nil, err
	}
	return parsePair(c, certPEM, keyPEM, digest)
}

// loadCAPool reads a PEM bundle of CA certificates.
func loadCAPool(path string) (*x509.CertPool, [32]byte, error) {
	b, err := readPEM(path)
	if err != nil {
		return nil, [32]byte{}, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, [32]byte{}, fmt.Errorf("client_ca_file %s: no PEM certificate found", path)
	}
	return pool, sha256.Sum256(b), nil
}

// certIndex chooses a certificate for a ClientHello. It is built once per
// (re)load and never changed, so lookups need no lock.
type certIndex struct {
	slots []*slot // config order; slots[0] is the default
	exact map[string][]*slot
	// wild maps "example.com" to the slots holding "*.example.com".
	wild map[string][]*slot
}

func newCertIndex(slots []*slot) *certIndex {
	ix := &certIndex{slots: slots, exact: map[string][]*slot{}, wild: map[string][]*slot{}}
	for _, s := range slots {
		for _, n := range s.leaf.DNSNames {
			n = strings.TrimSuffix(strings.ToLower(n), ".")
			if rest, ok := strings.CutPrefix(n, "*."); ok {
				if rest != "" && !strings.Contains(rest, "*") {
					ix.wild[rest] = appendOnce(ix.wild[rest], s)
				}
				continue
			}
			if n != "" && !strings.Contains(n, "*") {
				ix.exact[n] = appendOnce(ix.exact[n], s)
			}
		}
	}
	return ix
}

func appendOnce(list []*slot, s *slot) []*slot {
	for _, x := range list {
		if x == s {
			return list
		}
	}
	return append(list, s)
}

// pick returns the certificate for hello: an exact DNS name match, then a
// wildcard match of the first label, else the first certificate. When
// several certificates hold the name (an RSA and an ECDSA one, say), the
// first one the client supports wins.
func (ix *certIndex) pick(hello *tls.ClientHelloInfo) *tls.Certificate {
	name := normalizeServerName(hello.ServerName)
	if name != "" {
		if list, ok := ix.exact[name]; ok {
			return choose(list, hello)
		}
		if i := strings.IndexByte(name, '.'); i > 0 {
			if list, ok := ix.wild[name[i+1:]]; ok {
				return choose(list, hello)
			}
		}
	}
	return ix.slots[0].cert.Load()
}

func choose(list []*slot, hello *tls.ClientHelloInfo) *tls.Certificate {
	if len(list) > 1 {
		for _, s := range list {
			if c := s.cert.Load(); hello.SupportsCertificate(c) == nil {
				return c
			}
		}
	}
	return list[0].cert.Load()
}

// normalizeServerName lower-cases an SNI name and drops a trailing dot,
// allocating only when the name has upper-case letters.
func normalizeServerName(n string) string {
	n = strings.TrimSuffix(n, ".")
	for i := 0; i < len(n); i++ {
		if c := n[i]; 'A' <= c && c <= 'Z' {
			return strings.ToLower(n)
		}
	}
	return n
}

// logAttrs summarises a loaded pair for the log.
func (s *slot) logAttrs() []any {
	return []any{
		"cert_file", s.files.CertFile,
		"names", s.leaf.DNSNames,
		"not_after", s.leaf.NotAfter.UTC().Format(time.RFC3339),
		"ocsp", s.ocspURL != "" && s.issuer != nil,
	}
}
