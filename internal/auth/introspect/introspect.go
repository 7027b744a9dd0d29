// Package introspect authenticates opaque OAuth2 bearer tokens by RFC 7662
// token introspection: the token is POSTed to the provider's
// introspection_url with the gateway's client credentials, and an active
// answer becomes the request's identity (consumer from consumer_claim,
// roles from roles_claim, scopes from scope).
//
// Answers are cached by the SHA-256 of the token (never the token), for
// cache_ttl but never beyond the token's exp; inactive answers for a few
// seconds. Concurrent requests with one uncached token make one call.
//
// When the endpoint cannot answer (down, timeout, 5xx, malformed or
// oversized answer) the request is never allowed: it is refused with 503
// problem+json (urn:portunus:problem:upstream-unavailable) and Retry-After,
// carried to the client as an *auth.Denied.
package introspect

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/portunus-gw/portunus/internal/auth"
	"github.com/portunus-gw/portunus/internal/auth/ttlcache"
	"github.com/portunus-gw/portunus/internal/config"
	"github.com/portunus-gw/portunus/internal/pipeline"
)

const (
	// callTimeout bounds one introspection call, connection included.
	callTimeout = 2 * time.Second
	// maxAnswer bounds the introspection answer read.
	maxAnswer = 64 << 10
	// maxToken bounds a presented token; longer is refused unread.
	maxToken = 8 << 10
	// maxEntries bounds the answer cache.
	maxEntries = 10000
	// inactiveTTL is how long an inactive answer is cached: long enough to
	// absorb a client retrying a revoked token, short enough that a token
	// becoming valid (clock skew at the issuer) is seen soon.
	inactiveTTL = 5 * time.Second
)

var (
	errInactive  = errors.New("token is not active")
	errMalformed = errors.New("malformed bearer token")
	errTooLong   = errors.New("bearer token too long")
	errAmbiguous = errors.New("more than one Authorization header")
)

// Provider is one oauth2_providers entry; it implements auth.Method and
// io.Closer.
type Provider struct {
	name          string
	endpoint      string
	authorization string // "Basic ..." client authentication; "" for none
	ttl           time.Duration
	consumerClaim string
	rolesClaim    string

	client *http.Client
	log    *slog.Logger
	now    func() time.Time // the clock; tests replace it

	cache   *ttlcache.Cache[answer]
	flights ttlcache.Group[answer]

	calls    atomic.Int64     // introspection calls made, for tests
	warnings auth.WarnLimiter // at most one unavailability warning a second
}

// answer is a cached introspection result: an identity or errInactive.
type answer struct {
	id  *auth.Identity
	err error
}

// New builds the provider. Defaults (cache_ttl, consumer_claim,
// roles_claim) are expected to be applied by config loading.
func New(p config.OAuth2Provider, log *slog.Logger) (*Provider, error) {
	u, err := url.Parse(p.IntrospectionURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("introspect: introspection_url %q is not an http(s) URL", p.IntrospectionURL)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	pr := &Provider{
		name:          "oauth2:" + p.Name,
		endpoint:      u.String(),
		ttl:           time.Duration(p.CacheTTL),
		consumerClaim: orDefault(p.ConsumerClaim, "sub"),
		rolesClaim:    orDefault(p.RolesClaim, "scope"),
		client:        auth.NewServiceClient(callTimeout, 64),
		log:           log.With("auth", "oauth2:"+p.Name),
		now:           time.Now,
		cache:         ttlcache.New[answer](maxEntries),
	}
	if p.ClientID != "" {
		// RFC 6749 §2.3.1: client_id and client_secret are
		// form-urlencoded before they are joined for HTTP Basic.
		raw := url.QueryEscape(p.ClientID) + ":" + url.QueryEscape(p.ClientSecret)
		pr.authorization = "Basic " + base64.StdEncoding.EncodeToString([]byte(raw))
	}
	return pr, nil
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func (p *Provider) Name() string      { return p.name }
func (p *Provider) Challenge() string { return `Bearer realm="portunus"` }

// Hide removes the Authorization header that carried the token.
func (p *Provider) Hide(r *http.Request) { r.Header.Del("Authorization") }

// Close releases idle connections to the endpoint. Calls in flight finish.
func (p *Provider) Close() error {
	p.client.CloseIdleConnections()
	return nil
}

// Authenticate introspects the bearer token of r. A request without a
// Bearer Authorization has no credential for this method.
func (p *Provider) Authenticate(r *http.Request, s *pipeline.State) (*auth.Identity, error) {
	token, err := bearerToken(r.Header)
	if err != nil {
		return nil, err
	}
	key := tokenKey(token)
	if a, ok := p.cache.Get(key, p.now()); ok {
		return a.id, a.err
	}
	ctx := r.Context()
	a, err, _ := p.flights.Do(key, ctx.Done(), ctx.Err, func() (answer, error) {
		return p.introspect(token, key)
	})
	if err != nil {
		if ctx.Err() != nil {
			return nil, errors.New("request ended while introspecting")
		}
		p.warn(err)
		return nil, unavailable()
	}
	return a.id, a.err
}

// introspect calls the endpoint and caches its answer. Its error is an
// unavailable endpoint; an inactive token is an answer. It runs detached
// from any one request's context: other requests may be waiting on it.
func (p *Provider) introspect(token string, key ttlcache.Key) (answer, error) {
	// Another caller may have filled the cache while this one queued.
	if a, ok := p.cache.Get(key, p.now()); ok {
		return a, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
	defer cancel()
	form := "token=" + url.QueryEscape(token) + "&token_type_hint=access_token"
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.endpoint, strings.NewReader(form))
	if err != nil {
		return answer{}, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	if p.authorization != "" {
		req.Header.Set("Authorization", p.authorization)
	}
	p.calls.Add(1)
	resp, err := p.client.Do(req)
	if err != nil {
		return answer{}, fmt.Errorf("introspection call failed: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer+1))
	if err != nil {
		return answer{}, fmt.Errorf("reading introspection answer: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return answer{}, fmt.Errorf("introspection endpoint answered %d", resp.StatusCode)
	}
	if len(body) > maxAnswer {
		return answer{}, fmt.Errorf("introspection answer larger than %d bytes", maxAnswer)
	}
	now := p.now()
	res, err := parseAnswer(bytes.TrimSpace(body), p.consumerClaim, p.rolesClaim, now)
	if err != nil {
		return answer{}, err
	}
	if !res.active {
		a := answer{err: errInactive}
		p.cache.Put(key, a, now.Add(min(inactiveTTL, max(p.ttl, time.Second))), now)
		return a, nil
	}
	a := answer{id: res.id}
	exp := now.Add(p.ttl)
	if res.hasExp && res.exp.Before(exp) {
		exp = res.exp
	}
	p.cache.Put(key, a, exp, now)
	return a, nil
}

// tokenKey is the SHA-256 of the token, hashed from a stack buffer so
// that ordinary tokens cost no allocation.
func tokenKey(token string) ttlcache.Key {
	var buf [1024]byte
	if len(token) <= len(buf) {
		n := copy(buf[:], token)
		return sha256.Sum256(buf[:n])
	}
	return sha256.Sum256([]byte(token))
}

// unavailable refuses the request with 503: the service cannot decide,
// and a request it cannot decide on is never allowed.
func unavailable() *auth.Unavailable {
	return &auth.Unavailable{Reason: "the token introspection endpoint is unavailable"}
}

// warn logs an unavailable service at most once a second.
func (p *Provider) warn(err error) {
	if p.warnings.Allow() {
		p.log.Warn("token introspection unavailable; refusing requests with 503", "error", err)
	}
}

// bearerToken reads the token of an "Authorization: Bearer" header.
// Another scheme, or no header, is ErrNoCredentials.
func bearerToken(h http.Header) (string, error) {
	vs := h["Authorization"]
	switch {
	case len(vs) == 0:
		return "", auth.ErrNoCredentials
	case len(vs) > 1:
		return "", errAmbiguous
	}
	v := strings.TrimLeft(vs[0], " \t")
	const scheme = "bearer"
	if len(v) < len(scheme) || !strings.EqualFold(v[:len(scheme)], scheme) {
		return "", auth.ErrNoCredentials
	}
	rest := v[len(scheme):]
	if rest == "" {
		return "", errMalformed
	}
	if rest[0] != ' ' && rest[0] != '\t' {
		return "", auth.ErrNoCredentials // "Bearerfoo": not this scheme
	}
	tok := strings.Trim(rest, " \t")
	if len(tok) > maxToken {
		return "", errTooLong
	}
	if !isB64Token(tok) {
		return "", errMalformed
	}
	return tok, nil
}

// isB64Token reports whether s is an RFC 6750 b64token:
// 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"=".
func isB64Token(s string) bool {
	if s == "" {
		return false
	}
	i := 0
	for ; i < len(s); i++ {
		c := s[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
			c == '-' || c == '.' || c == '_' || c == '~' || c == '+' || c == '/' {
			continue
		}
		break
	}
	if i == 0 {
		return false
	}
	for ; i < len(s); i++ {
		if s[i] != '=' {
			return false
		}
	}
	return true
}
