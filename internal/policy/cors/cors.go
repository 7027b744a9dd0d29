package cors

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"github.com/portunus-gw/portunus/internal/config"
	"github.com/portunus-gw/portunus/internal/pipeline"
	"github.com/portunus-gw/portunus/internal/problem"
)

// Header names in canonical form, for direct map access.
const (
	hOrigin           = "Origin"
	hVary             = "Vary"
	hReqMethod        = "Access-Control-Request-Method"
	hAllowOrigin      = "Access-Control-Allow-Origin"
	hAllowCredentials = "Access-Control-Allow-Credentials"
	hAllowMethods     = "Access-Control-Allow-Methods"
	hAllowHeaders     = "Access-Control-Allow-Headers"
	hMaxAge           = "Access-Control-Max-Age"
)

// Shared header values. Each has len == cap, so a later Add appends to a
// copy and the shared array is never written.
var (
	valStar        = []string{"*"}
	valTrue        = []string{"true"}
	valVaryOrigin  = []string{"Origin"}
	valVaryPreflit = []string{"Origin, Access-Control-Request-Method, Access-Control-Request-Headers"}
)

// policy is a compiled config.CORS.
type policy struct {
	origins     origins
	credentials bool      // send Allow-Credentials (never with "*")
	methods     []string  // Allow-Methods value; nil: echo the requested method
	headers     []string  // Allow-Headers value; nil: none
	maxAge      []string  // Max-Age value; nil: none
	pool        sync.Pool // *writer
}

// New returns the middleware for c.
func New(c config.CORS) (pipeline.Middleware, error) {
	p, err := compile(c)
	if err != nil {
		return nil, err
	}
	return func(next pipeline.Handler) pipeline.Handler {
		return func(w http.ResponseWriter, r *http.Request, s *pipeline.State) {
			p.serve(w, r, s, next)
		}
	}, nil
}

func compile(c config.CORS) (*policy, error) {
	os, err := compileOrigins(c.Origins)
	if err != nil {
		return nil, err
	}
	if os.any && c.Credentials {
		return nil, fmt.Errorf("cors: origin \"*\" cannot be combined with credentials: true")
	}
	p := &policy{origins: os, credentials: c.Credentials}
	if len(c.Methods) > 0 {
		ms := make([]string, len(c.Methods))
		for i, m := range c.Methods {
			ms[i] = strings.ToUpper(strings.TrimSpace(m))
		}
		p.methods = []string{strings.Join(ms, ", ")}
	}
	if len(c.Headers) > 0 {
		hs := make([]string, len(c.Headers))
		for i, h := range c.Headers {
			hs[i] = http.CanonicalHeaderKey(strings.TrimSpace(h))
		}
		p.headers = []string{strings.Join(hs, ", ")}
	}
	if secs := int64(c.MaxAge.D().Seconds()); secs > 0 {
		p.maxAge = []string{strconv.FormatInt(secs, 10)}
	}
	p.pool.New = func() any { return &writer{p: p} }
	return p, nil
}

// allowOrigin is the Access-Control-Allow-Origin value for the request's
// Origin header values, or nil when the origin is not allowed.
func (p *policy) allowOrigin(vals []string) []string {
	if len(vals) != 1 || !p.origins.allowed(vals[0]) {
		return nil
	}
	if p.origins.any {
		return valStar
	}
	// The browser compares the answer with its origin byte for byte, so
	// it gets back exactly what it sent. The request's own one-element
	// slice is reused: it is not written to after this.
	return vals
}

func (p *policy) serve(w http.ResponseWriter, r *http.Request, s *pipeline.State, next pipeline.Handler) {
	origin := r.Header[hOrigin]
	if r.Method == http.MethodOptions && len(origin) > 0 && len(r.Header[hReqMethod]) > 0 {
		p.preflight(w, r, s, origin)
		return
	}
	cw := p.pool.Get().(*writer)
	cw.reset(w, p.allowOrigin(origin))
	next(cw, r, s)
	cw.finish()
	p.pool.Put(cw)
}

// preflight answers a CORS preflight; the upstream never sees it.
func (p *policy) preflight(w http.ResponseWriter, r *http.Request, s *pipeline.State, origin []string) {
	h := w.Header()
	h[hVary] = valVaryPreflit
	allow := p.allowOrigin(origin)
	if allow == nil {
		s.ErrorCode = string(problem.Forbidden)
		problem.Write(w, r, problem.Problem{Code: problem.Forbidden, Detail: "CORS preflight from an origin this route does not allow", RequestID: s.RequestID})
		return
	}
	h[hAllowOrigin] = allow
	if p.credentials {
		h[hAllowCredentials] = valTrue
	}
	switch {
	case p.methods != nil:
		h[hAllowMethods] = p.methods
	default:
		// No list: the route's own methods decide, and the router has
		// matched the route with the requested method, so it is allowed.
		if m := r.Header[hReqMethod]; len(m) == 1 && isToken(m[0]) {
			h[hAllowMethods] = m
		}
	}
	if p.headers != nil {
		h[hAllowHeaders] = p.headers
	}
	if p.maxAge != nil {
		h[hMaxAge] = p.maxAge
	}
	w.WriteHeader(http.StatusNoContent)
}

// isToken: an RFC 9110 token, so an echoed method is a valid field value.
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !isAlnum(c) && !strings.ContainsRune("!#$%&'*+-.^_`|~", rune(c)) {
			return false
		}
	}
	return true
}
