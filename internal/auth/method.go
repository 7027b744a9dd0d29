// Package auth authenticates requests: the Method interface every
// credential type implements, and the middleware that tries a route's
// methods in turn, and the config-backed methods: api_key, basic and mtls.
package auth

import (
	"errors"
	"net/http"

	"github.com/portunus-gw/portunus/internal/consumers"
	"github.com/portunus-gw/portunus/internal/pipeline"
)

// Identity is who a request was authenticated as.
type Identity struct {
	// Consumer is the consumer name (from config, a claim, or a service).
	Consumer string
	// Roles and Scopes come from the credential (claims, introspection);
	// the middleware adds the roles of a configured consumer of the same name.
	Roles  []string
	Scopes []string
	// Header is extra headers to send upstream (claims_to_headers,
	// forward auth copy_headers); nil for none.
	Header http.Header

	// rolesOf is the directory whose consumer of this name gave Roles
	// (a config consumer's prebuilt identity): the middleware has nothing
	// to merge from it. Nil for any other identity.
	rolesOf *consumers.Directory
}

// ErrNoCredentials means the request carries no credential for this
// method: the next method is tried.
var ErrNoCredentials = errors.New("auth: no credentials for this method")

// Denied is an answer a method wants relayed to the client as is (forward
// auth's deny answer). Other errors become 401.
type Denied struct {
	Status int
	Header http.Header
	Body   []byte
}

func (d *Denied) Error() string { return "auth: denied with status " + http.StatusText(d.Status) }

// Unavailable means the service a method depends on could not decide
// (down, timed out, answered nonsense). The request is never allowed: the
// middleware answers 503 with Retry-After, rendered by package problem
// (problem+json, or a gRPC status for gRPC requests).
type Unavailable struct {
	// Reason says which service, for the client and the access log (never
	// a credential).
	Reason string
}

func (u *Unavailable) Error() string { return u.Reason }

// Method is one way to authenticate.
type Method interface {
	// Name is the method as written in a route's auth list: "api_key",
	// "basic", "mtls", "jwt:NAME", "oauth2:NAME", "forward:NAME".
	Name() string
	// Challenge is the WWW-Authenticate challenge of this method ("" for
	// none, e.g. mtls and forward auth).
	Challenge() string
	// Authenticate returns ErrNoCredentials when the request has no
	// credential of this kind; any other error means a credential was
	// present but is invalid (401 even if another method would succeed).
	// Its message is logged, so it must never contain the credential.
	Authenticate(r *http.Request, s *pipeline.State) (*Identity, error)
	// Hide removes the credential this method used from the request
	// (hide_credentials).
	Hide(r *http.Request)
}
