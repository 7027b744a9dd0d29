// Package forwardauth asks an external service whether a request may pass
// (forward_auth, auth: ["forward:NAME"]), in the manner of nginx
// auth_request and Traefik's ForwardAuth.
//
// For every request the gateway sends the service a GET to its url with
// the request's headers (hop-by-hop headers, the body and its framing
// left out) and X-Forwarded-Method, -Proto, -Host, -Uri and -For saying
// what the request is. Then:
//
//   - 2xx allows it. The copy_headers of the answer are set on the
//     upstream request, replacing any the client sent (a listed header the
//     answer lacks is removed, so a client cannot supply it). The answer's
//     X-Auth-Consumer names the consumer and X-Auth-Roles (comma- or
//     space-separated) gives roles, for allow: and the access log.
//   - 4xx is relayed to the client as it is: status, headers (minus
//     hop-by-hop) and body (at most 64 KiB). A 3xx (a login redirect) is
//     relayed the same way, Location included.
//   - no answer within 2s, a 5xx, or a body over 64 KiB: the request is
//     never allowed; it is refused with 503 problem+json
//     (urn:portunus:problem:upstream-unavailable) and Retry-After.
//
// Decisions are cached for one second, keyed by the SHA-256 of what the
// decision may depend on: method, host, URI, client address,
// Authorization and Cookie. A service that decides on another header
// sees repeats of a request within that second only once.
package forwardauth

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/textproto"
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
	// callTimeout bounds one call to the service, connection included.
	callTimeout = 2 * time.Second
	// maxBody bounds the deny answer relayed to the client.
	maxBody = 64 << 10
	// maxCachedBody bounds the deny answers kept in the cache, so the
	// cache's memory stays bounded by maxEntries × maxCachedBody.
	maxCachedBody = 4 << 10
	// maxEntries bounds the decision cache.
	maxEntries = 4096
	// decisionTTL is how long a decision is reused.
	decisionTTL = time.Second
	// maxIdentity bounds X-Auth-Consumer and X-Auth-Roles.
	maxIdentity = 1024

	consumerHeader = "X-Auth-Consumer"
	rolesHeader    = "X-Auth-Roles"
)

// Service is one forward_auth entry; it implements auth.Method and
// io.Closer.
type Service struct {
	name        string
	url         string
	copyHeaders []string // canonical

	client *http.Client
	log    *slog.Logger
	now    func() time.Time // the clock; tests replace it

	cache   *ttlcache.Cache[decision]
	flights ttlcache.Group[decision]

	calls    atomic.Int64     // calls made, for tests
	warnings auth.WarnLimiter // at most one unavailability warning a second
}

// decision is the service's answer: an identity (allow) or a deny.
type decision struct {
	id   *auth.Identity
	deny *auth.Denied
}

// New builds the service client.
func New(f config.ForwardAuth, log *slog.Logger) (*Service, error) {
	u, err := url.Parse(f.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("forwardauth: url %q is not an http(s) URL", f.URL)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Service{
		name:   "forward:" + f.Name,
		url:    u.String(),
		client: auth.NewServiceClient(callTimeout, 128),
		log:    log.With("auth", "forward:"+f.Name),
		now:    time.Now,
		cache:  ttlcache.New[decision](maxEntries),
	}
	for _, h := range f.CopyHeaders {
		s.copyHeaders = append(s.copyHeaders, textproto.CanonicalMIMEHeaderKey(h))
	}
	return s, nil
}

func (s *Service) Name() string      { return s.name }
func (s *Service) Challenge() string { return "" }

// Hide does nothing: forward auth has no credential of its own; the
// service reads whatever the request carries, and the route decides what
// reaches the upstream.
func (s *Service) Hide(*http.Request) {}

// Close releases idle connections to the service. Calls in flight finish.
func (s *Service) Close() error {
	s.client.CloseIdleConnections()
	return nil
}

// Authenticate asks the service about r. It always applies: it never
// returns auth.ErrNoCredentials.
func (s *Service) Authenticate(r *http.Request, st *pipeline.State) (*auth.Identity, error) {
	key := s.key(r, st)
	if d, ok := s.cache.Get(key, s.now()); ok {
		return d.result()
	}
	ctx := r.Context()
	out := s.outgoing(r, st)
	d, err, _ := s.flights.Do(key, ctx.Done(), ctx.Err, func() (decision, error) {
		return s.ask(out, key)
	})
	if err != nil {
		if ctx.Err() != nil {
			return nil, errors.New("request ended while asking the auth service")
		}
		s.warn(err)
		return nil, unavailable()
	}
	return d.result()
}

func (d decision) result() (*auth.Identity, error) {
	if d.deny != nil {
		return nil, d.deny
	}
	return d.id, nil
}

// key digests what a decision may depend on. Fields are length-prefixed
// so that no two different requests give the same input. The input is
// assembled in a stack buffer: no allocation for ordinary requests.
func (s *Service) key(r *http.Request, st *pipeline.State) ttlcache.Key {
	var buf [1024]byte
	b := buf[:0]
	field := func(b []byte, v string) []byte {
		b = binary.BigEndian.AppendUint32(b, uint32(len(v)))
		return append(b, v...)
	}
	b = field(b, r.Method)
	b = field(b, r.Host)
	if st != nil && st.Path != "" {
		b = field(b, st.Path)
	} else if r.URL != nil {
		b = field(b, r.URL.EscapedPath())
	}
	if r.URL != nil {
		b = field(b, r.URL.RawQuery)
	}
	if st != nil && st.ClientIP.IsValid() {
		b = st.ClientIP.AppendTo(append(b, 'i'))
	}
	b = append(b, 0)
	for _, name := range [...]string{"Authorization", "Cookie"} {
		vs := r.Header[name]
		b = binary.BigEndian.AppendUint32(b, uint32(len(vs)))
		for _, v := range vs {
			b = field(b, v)
		}
	}
	return sha256.Sum256(b)
}

// requestURI is the normalized path (what the route matched) and query.
func requestURI(r *http.Request, st *pipeline.State) string {
	p := ""
	if st != nil {
		p = st.Path
	}
	if p == "" && r.URL != nil {
		p = r.URL.EscapedPath()
	}
	if r.URL != nil && r.URL.RawQuery != "" {
		return p + "?" + r.URL.RawQuery
	}
	return p
}

// outgoing builds the request to the service. It is built before any
// waiting, from the caller's request, and runs detached from its context.
func (s *Service) outgoing(r *http.Request, st *pipeline.State) *http.Request {
	out, _ := http.NewRequest(http.MethodGet, s.url, nil) // url checked by New
	out.Header = forwardHeaders(r.Header)
	h := out.Header
	h.Set("X-Forwarded-Method", r.Method)
	proto := "http"
	if r.TLS != nil {
		proto = "https"
	}
	h.Set("X-Forwarded-Proto", proto)
	h.Set("X-Forwarded-Host", r.Host)
	h.Set("X-Forwarded-Uri", requestURI(r, st))
	if st != nil && st.ClientIP.IsValid() {
		h.Set("X-Forwarded-For", st.ClientIP.String())
	} else {
		h.Del("X-Forwarded-For")
	}
	return out
}

// ask calls the service and caches its decision. Its error is a service
// that could not decide.
func (s *Service) ask(out *http.Request, key ttlcache.Key) (decision, error) {
	if d, ok := s.cache.Get(key, s.now()); ok {
		return d, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
	defer cancel()
	s.calls.Add(1)
	resp, err := s.client.Do(out.WithContext(ctx))
	if err != nil {
		return decision{}, fmt.Errorf("auth service call failed: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 500 {
		return decision{}, fmt.Errorf("auth service answered %d", resp.StatusCode)
	}
	var d decision
	cacheable := true
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		d.id = s.identity(resp.Header)
	} else {
		body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody+1))
		if err != nil {
			return decision{}, fmt.Errorf("reading auth service answer: %w", err)
		}
		if len(body) > maxBody {
			return decision{}, fmt.Errorf("auth service answer larger than %d bytes", maxBody)
		}
		d.deny = &auth.Denied{Status: resp.StatusCode, Header: relayHeaders(resp.Header), Body: body}
		cacheable = len(body) <= maxCachedBody
	}
	if cacheable {
		now := s.now()
		s.cache.Put(key, d, now.Add(decisionTTL), now)
	}
	return d, nil
}

// identity is the allow answer's identity: every copy_header (absent ones
// with no value, so the middleware removes the client's copies), and the
// consumer and roles the service named.
func (s *Service) identity(h http.Header) *auth.Identity {
	id := &auth.Identity{}
	if len(s.copyHeaders) > 0 {
		id.Header = make(http.Header, len(s.copyHeaders))
		for _, k := range s.copyHeaders {
			if vs := h[k]; len(vs) > 0 {
				id.Header[k] = append([]string(nil), vs...)
			} else {
				id.Header[k] = nil
			}
		}
	}
	if v := h.Get(consumerHeader); len(v) <= maxIdentity {
		id.Consumer = strings.TrimSpace(v)
	}
	if v := h.Get(rolesHeader); len(v) <= maxIdentity {
		id.Roles = strings.FieldsFunc(v, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' })
	}
	return id
}

// unavailable refuses the request with 503: the service cannot decide,
// and a request it cannot decide on is never allowed.
func unavailable() *auth.Unavailable {
	return &auth.Unavailable{Reason: "the authorization service is unavailable"}
}

// warn logs an unavailable service at most once a second.
func (s *Service) warn(err error) {
	if s.warnings.Allow() {
		s.log.Warn("forward auth service unavailable; refusing requests with 503", "error", err)
	}
}
