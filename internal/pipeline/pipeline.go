// Package pipeline defines the shape every request stage shares: the
// per-request State, the Handler that receives it, and the Middleware that
// wraps one Handler in another. The gateway composes a route's policies and
// its action into one Handler when a snapshot is compiled, so nothing about
// the chain is decided per request.
package pipeline

import (
	"net/http"
	"net/netip"
	"time"

	"github.com/portunus-gw/portunus/internal/router"
)

// Handler serves one request with its State. It is http.Handler plus the
// state the gateway established before the route's policies run.
type Handler func(w http.ResponseWriter, r *http.Request, s *State)

// Middleware wraps a Handler; a policy is a constructor returning one.
type Middleware func(next Handler) Handler

// Chain applies mws around h so that mws[0] runs first.
func Chain(h Handler, mws ...Middleware) Handler {
	for i := len(mws) - 1; i >= 0; i-- {
		h = mws[i](h)
	}
	return h
}

// State is what the gateway knows about one request. It is pooled and reset
// between requests: a Handler must not keep it after returning.
type State struct {
	// RequestID is the client's valid X-Request-Id or a new one.
	RequestID string
	// Start is when the gateway began handling the request.
	Start time.Time
	// ClientIP is the real client address: the peer, or the right-most
	// untrusted X-Forwarded-For hop when the peer is a trusted proxy.
	ClientIP netip.Addr
	// PeerTrusted says the TCP peer is one of trusted_proxies.
	PeerTrusted bool
	// Path is the normalized path in escaped form: what policies see and
	// what is sent upstream (before rewrites).
	Path string
	// Params are the route's captured path parameters.
	Params router.Params
	// RouteName is the matched route's name ("" before matching).
	RouteName string
	// Consumer and Roles are the authenticated identity ("" when anonymous).
	Consumer string
	Roles    []string
	// Scopes are the OAuth2/JWT scopes of the credential, for allow.scopes.
	Scopes []string
	// AuthMethod is the auth method that authenticated the request
	// ("api_key", "basic", "mtls", "jwt:NAME", ...; "" when anonymous).
	AuthMethod string
	// AuthError says why authentication failed, for the access log (never
	// a secret); "" otherwise.
	AuthError string
	// Upstream and Target are the upstream name and target URL used.
	Upstream string
	Target   string
	// UpstreamDuration is the time the upstream took to answer (headers).
	UpstreamDuration time.Duration
	// ErrorCode is the problem code when the gateway itself answered
	// with an error ("" otherwise).
	ErrorCode string
	// CacheStatus and RateLimit are the access log's cache_status and
	// rate_limit fields: the response cache and the rate limiter record
	// their outcome here ("" until those features exist, or when they
	// did not apply to the request).
	CacheStatus string
	RateLimit   string
}

// Reset clears s for reuse.
// Roles and Scopes are dropped, not truncated: they may alias a
// consumer's configured slice, which must never be appended to.
func (s *State) Reset() { *s = State{} }
