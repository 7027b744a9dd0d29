package auth

import (
	"errors"
	"net/http"

	"github.com/portunus-gw/portunus/internal/consumers"
	"github.com/portunus-gw/portunus/internal/pipeline"
)

var (
	errCertUnverified = errors.New("client certificate not verified")
	errCertUnknown    = errors.New("client certificate names no consumer")
)

// mtls is the mtls method: the TLS listener (client_auth request or
// require, client_ca_file) verified the certificate; this maps it to a
// consumer.
type mtls struct {
	dir *consumers.Directory
	ids identities
}

// NewMTLS is the mtls method: the verified client certificate's subject
// or SAN names a consumer of dir.
func NewMTLS(dir *consumers.Directory) Method {
	if dir == nil {
		return nil
	}
	return &mtls{dir: dir, ids: newIdentities(dir)}
}

func (m *mtls) Name() string      { return "mtls" }
func (m *mtls) Challenge() string { return "" }

func (m *mtls) Authenticate(r *http.Request, _ *pipeline.State) (*Identity, error) {
	if r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
		return nil, ErrNoCredentials
	}
	// Only a chain the listener verified counts: a certificate presented
	// to a listener without client_ca_file proves nothing.
	if len(r.TLS.VerifiedChains) == 0 || len(r.TLS.VerifiedChains[0]) == 0 {
		return nil, errCertUnverified
	}
	c := m.dir.ByCertificate(r.TLS.VerifiedChains[0][0])
	if c == nil {
		return nil, errCertUnknown
	}
	return m.ids.of(c), nil
}

// Hide does nothing: the certificate is not forwarded.
func (m *mtls) Hide(*http.Request) {}
