// Package jwtauth authenticates JWT bearer tokens of one provider
// (jwt_providers entry): signature checked with static keys (PEM public
// keys, HMAC secrets) and/or a JWKS URL, algorithm restricted by an
// explicit allow-list and by each key's type, iss/aud/exp/nbf/iat checked
// with clock skew, and claims mapped to the consumer, roles, scopes and
// upstream headers.
//
// Which bearer tokens are ours: a token of three dot-separated base64url
// segments whose first decodes to a JSON object is a JWS, and this method
// decides on it (any flaw is a 401). Anything else (an opaque token, a
// five-segment JWE) is "no credential" for this method, so a route may
// list jwt:NAME and oauth2:NAME together and each handles its own tokens.
package jwtauth

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/portunus-gw/portunus/internal/auth"
	"github.com/portunus-gw/portunus/internal/config"
	"github.com/portunus-gw/portunus/internal/pipeline"
)

// maxTokenBytes bounds a bearer token; larger ones are refused before any
// decoding.
const maxTokenBytes = 16 << 10

// maxKIDBytes bounds the kid header; real kids are short.
const maxKIDBytes = 256

// Errors are fixed values: they are logged (never the token or the kid an
// attacker chose) and cost nothing to return. The middleware prefixes
// them with the method name.
var (
	errTooLarge       = errors.New("token too large")
	errMalformed      = errors.New("malformed token")
	errAlgNotAllowed  = errors.New("algorithm not allowed")
	errBadKID         = errors.New("invalid kid header")
	errCrit           = errors.New("unsupported critical header")
	errUnknownKey     = errors.New("no key for this kid and algorithm")
	errSignature      = errors.New("invalid signature")
	errExpired        = errors.New("token expired")
	errNotYetValid    = errors.New("token not valid yet")
	errIssuedInFuture = errors.New("token issued in the future")
	errIssuer         = errors.New("wrong issuer")
	errAudience       = errors.New("wrong audience")
	errMissingClaim   = errors.New("required claim missing (exp, or iss/aud when configured)")
	errClaims         = errors.New("invalid claims")
	errNoConsumer     = errors.New("token has no consumer claim")
)

// Provider is one jwt_providers entry; it implements auth.Method and
// io.Closer (its JWKS refresher stops on Close).
type Provider struct {
	name    string
	algs    algSet // allow-list plus the algorithms of static keys
	static  *keySet
	jwks    *jwks // nil without jwks_url
	parser  *jwt.Parser
	now     func() time.Time
	log     *slog.Logger
	sub     claimPath
	roles   claimPath
	headers []claimHeader
	// verified skips the signature check of a token seen before
	// (verified.go).
	verified *verifiedCache
}

type claimHeader struct {
	name  string // canonical header name
	claim claimPath
}

// New builds the provider (loading static keys; starting JWKS refresh).
// A JWKS that cannot be fetched now is not an error: it is retried in the
// background and tokens needing it are refused meanwhile.
func New(p config.JWTProvider, log *slog.Logger) (*Provider, error) {
	return newProvider(p, log, time.Now)
}

func newProvider(c config.JWTProvider, log *slog.Logger, now func() time.Time) (*Provider, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("component", "jwt", "provider", c.Name)
	var allowed algSet
	for _, a := range c.Algorithms {
		b := algBit(a)
		if b == 0 {
			return nil, fmt.Errorf("jwt: unsupported algorithm %q", a)
		}
		allowed |= b
	}
	keys, err := loadStaticKeys(c.Keys)
	if err != nil {
		return nil, fmt.Errorf("jwt: %w", err)
	}
	algs := allowed
	for _, k := range keys {
		algs |= k.algs // a static key's declared algorithm is allowed for it alone
	}
	if c.JWKSURL == "" && len(keys) == 0 {
		return nil, errors.New("jwt: a provider needs jwks_url or keys")
	}
	if c.JWKSURL != "" && allowed == 0 {
		return nil, errors.New("jwt: jwks_url needs an algorithms allow-list")
	}
	p := &Provider{
		name:   "jwt:" + c.Name,
		algs:   algs,
		static: newKeySet(keys),
		now:    now,
		log:    log,
		sub:    newClaimPath(orDefault(c.ConsumerClaim, "sub")),
		roles:  newClaimPath(orDefault(c.RolesClaim, "roles")),
	}
	p.verified = newVerifiedCache()
	for h, claim := range c.ClaimsToHeaders {
		p.headers = append(p.headers, claimHeader{name: http.CanonicalHeaderKey(h), claim: newClaimPath(claim)})
	}
	opts := []jwt.ParserOption{
		jwt.WithLeeway(time.Duration(c.ClockSkew)),
		jwt.WithIssuedAt(),
		jwt.WithExpirationRequired(),
		jwt.WithTimeFunc(func() time.Time { return p.now() }),
	}
	if c.Issuer != "" {
		opts = append(opts, jwt.WithIssuer(c.Issuer))
	}
	if len(c.Audiences) > 0 {
		opts = append(opts, jwt.WithAudience(c.Audiences...))
	}
	p.parser = jwt.NewParser(opts...)
	if c.JWKSURL != "" {
		cooldown := time.Duration(c.JWKSRefetchCooldown)
		if cooldown <= 0 {
			cooldown = 5 * time.Second
		}
		p.jwks = newJWKS(c.JWKSURL, allowed, cooldown, log, now)
	}
	return p, nil
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}

// Name is "jwt:NAME", as routes list it.
func (p *Provider) Name() string { return p.name }

// Challenge is the RFC 6750 challenge.
func (p *Provider) Challenge() string { return `Bearer realm="portunus"` }

// Hide removes the Authorization header that carried the token.
func (p *Provider) Hide(r *http.Request) { r.Header.Del("Authorization") }

// Close stops the JWKS refresher; verification keeps working with the
// keys already loaded.
func (p *Provider) Close() error {
	if p.jwks != nil {
		p.jwks.close()
	}
	return nil
}

// Authenticate verifies the bearer token and maps its claims.
func (p *Provider) Authenticate(r *http.Request, _ *pipeline.State) (*auth.Identity, error) {
	tok, ok := bearerToken(r.Header.Get("Authorization"))
	if !ok {
		return nil, auth.ErrNoCredentials
	}
	if len(tok) > maxTokenBytes {
		return nil, errTooLarge
	}
	if !looksLikeJWS(tok) {
		return nil, auth.ErrNoCredentials
	}
	sum, keys := tokenDigest(tok), p.currentKeys()
	if id, ok := p.verified.get(sum, p.now(), keys); ok {
		return id, nil
	}
	claims := jwt.MapClaims{}
	ctx := r.Context()
	if _, err := p.parser.ParseWithClaims(tok, claims, func(t *jwt.Token) (any, error) { return p.keyFor(ctx, t) }); err != nil {
		return nil, classify(err)
	}
	id, err := p.identity(claims)
	if err == nil {
		p.verified.put(sum, claims, id, p.now(), keys)
	}
	return id, err
}

// keyFor picks the keys that may verify t: its algorithm must be allowed,
// and each candidate key must allow that algorithm (so an HMAC secret
// never checks an RS token and vice versa). An unknown kid triggers a
// JWKS refetch, at most one per cooldown.
func (p *Provider) keyFor(ctx context.Context, t *jwt.Token) (any, error) {
	alg := t.Method.Alg()
	if !p.algs.has(alg) {
		return nil, errAlgNotAllowed
	}
	if _, ok := t.Header["crit"]; ok {
		return nil, errCrit
	}
	var kid string
	if v, ok := t.Header["kid"]; ok {
		s, isString := v.(string)
		if !isString || s == "" || len(s) > maxKIDBytes {
			return nil, errBadKID
		}
		kid = s
	}
	var buf [4]any
	cands, found := p.candidates(buf[:0], kid, alg)
	if p.jwks != nil && ((kid != "" && !found) || len(cands) == 0) {
		p.jwks.refetch(ctx)
		cands, _ = p.candidates(buf[:0], kid, alg)
	}
	switch len(cands) {
	case 0:
		return nil, errUnknownKey
	case 1:
		return cands[0], nil
	}
	ks := make([]jwt.VerificationKey, len(cands))
	for i, c := range cands {
		ks[i] = c
	}
	return jwt.VerificationKeySet{Keys: ks}, nil
}

func (p *Provider) candidates(dst []any, kid, alg string) ([]any, bool) {
	dst, found := p.static.collect(dst, kid, alg)
	if p.jwks != nil {
		var jf bool
		dst, jf = p.jwks.keys.Load().collect(dst, kid, alg)
		found = found || jf
	}
	return dst, found
}

// identity maps verified claims to the consumer, roles, scopes and headers.
func (p *Provider) identity(claims map[string]any) (*auth.Identity, error) {
	v, _ := p.sub.lookup(claims)
	name, _ := v.(string)
	if name == "" {
		return nil, errNoConsumer
	}
	id := &auth.Identity{Consumer: name}
	if v, ok := p.roles.lookup(claims); ok {
		id.Roles = stringList(v)
	}
	if v, ok := claims["scope"]; ok {
		id.Scopes = stringList(v)
	} else if v, ok := claims["scp"]; ok {
		id.Scopes = stringList(v)
	}
	for _, h := range p.headers {
		v, ok := h.claim.lookup(claims)
		if !ok {
			continue
		}
		s := scalarString(v)
		if !safeHeaderValue(s) {
			continue
		}
		if id.Header == nil {
			id.Header = make(http.Header, len(p.headers))
		}
		id.Header[h.name] = []string{s}
	}
	return id, nil
}

// bearerToken returns the token of an "Authorization: Bearer" header
// (scheme case-insensitive, RFC 7235).
func bearerToken(h string) (string, bool) {
	const scheme = "bearer "
	if len(h) < len(scheme) || !strings.EqualFold(h[:len(scheme)], scheme) {
		return "", false
	}
	tok := strings.Trim(h[len(scheme):], " \t")
	return tok, tok != ""
}

// Byte classes of a compact JWS: base64url, the segment dot, anything
// else. A table lookup per byte instead of a chain of range tests: a
// token is checked on every request and is several hundred bytes long.
const (
	jwsOther = iota
	jwsB64
	jwsDot
)

var jwsByte = func() (t [256]uint8) {
	for c := 'A'; c <= 'Z'; c++ {
		t[c] = jwsB64
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c] = jwsB64
	}
	for c := '0'; c <= '9'; c++ {
		t[c] = jwsB64
	}
	t['-'], t['_'], t['.'] = jwsB64, jwsB64, jwsDot
	return t
}()

// looksLikeJWS reports a compact JWS: three base64url segments (the last,
// the signature, may be empty as in alg "none", which is then refused),
// the first decoding to a JSON object.
func looksLikeJWS(tok string) bool {
	dots := 0
	first := -1
	for i := 0; i < len(tok); i++ {
		switch jwsByte[tok[i]] {
		case jwsDot:
			dots++
			if first < 0 {
				first = i
			}
		case jwsB64:
		default:
			return false
		}
	}
	if dots != 2 || first < 2 || tok[first+1] == '.' {
		return false
	}
	// Decode just enough of the header to see its first non-space byte
	// (base64 is not strict about a prefix's trailing bits).
	n := min(first, 8)
	if n%4 == 1 {
		n--
	}
	var out [6]byte
	n, _ = base64.RawURLEncoding.Decode(out[:], []byte(tok[:n]))
	for _, b := range out[:n] {
		switch b {
		case ' ', '\t', '\r', '\n':
			continue
		case '{':
			return true
		}
		return false
	}
	return false
}

// classify turns a library error into one of our fixed errors.
func classify(err error) error {
	for _, e := range []error{errAlgNotAllowed, errBadKID, errCrit, errUnknownKey} {
		if errors.Is(err, e) {
			return e
		}
	}
	switch {
	case errors.Is(err, jwt.ErrTokenMalformed):
		return errMalformed
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		return errSignature
	case errors.Is(err, jwt.ErrTokenExpired):
		return errExpired
	case errors.Is(err, jwt.ErrTokenNotValidYet):
		return errNotYetValid
	case errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		return errIssuedInFuture
	case errors.Is(err, jwt.ErrTokenInvalidIssuer):
		return errIssuer
	case errors.Is(err, jwt.ErrTokenInvalidAudience):
		return errAudience
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		return errMissingClaim
	case errors.Is(err, jwt.ErrTokenUnverifiable):
		return errAlgNotAllowed // an alg the library does not know
	}
	return errClaims
}
