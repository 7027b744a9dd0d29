package router

import (
	"net/http"
	"slices"
	"strings"
)

// Request is what Match looks at.
type Request struct {
	Host   string // raw Host header value; Match normalizes it
	Path   string // output of Normalize
	Method string // for a CORS preflight: Access-Control-Request-Method
	Header http.Header
}

// Result says how Match ended.
type Result uint8

const (
	NotFound         Result = iota // no route matches host and path (and headers)
	Matched                        // a route matched; see Match
	MethodNotAllowed               // routes match host, path and headers, none the method
)

func (r Result) String() string {
	switch r {
	case NotFound:
		return "not found"
	case Matched:
		return "matched"
	case MethodNotAllowed:
		return "method not allowed"
	}
	return "unknown"
}

// Match is the outcome of a successful match. Keep one per request (for
// instance in pooled state) so Params keeps its capacity.
type Match[T any] struct {
	Value  T
	Index  int    // index of the route in the slice given to New; -1 when none
	Params Params // reset by Match
}

// hostBufLen bounds the host Match lower-cases on the stack; a longer one
// (no valid DNS name is) can only match routes without hosts.
const hostBufLen = 256

// Match finds the route for req and fills m. It does not allocate, except
// for regex routes with named groups (one allocation when one wins).
func (rt *Router[T]) Match(req *Request, m *Match[T]) Result {
	m.Params.Reset()
	s := search[T]{req: req, m: m, method: methodBit(req.Method)}
	if p := req.Path; p != "" && p[0] == '/' && rt.each(&s) {
		return Matched
	}
	var zero T
	m.Value, m.Index = zero, -1
	if s.mismatch {
		return MethodNotAllowed
	}
	return NotFound
}

// Allowed lists, sorted, the methods accepted by the routes whose host,
// path and headers match req: the Allow header of a 405. HEAD is included
// where GET is. It allocates; it is for the error path.
func (rt *Router[T]) Allowed(req *Request) []string {
	var m Match[T]
	s := search[T]{req: req, m: &m, collect: true}
	if p := req.Path; p != "" && p[0] == '/' {
		rt.each(&s)
	}
	slices.Sort(s.allowed)
	return slices.Compact(s.allowed)
}

// each searches the host tiers from the most specific down and stops at
// the first full match.
func (rt *Router[T]) each(s *search[T]) bool {
	h := trimHost(s.req.Host)
	if len(h) <= hostBufLen && (len(rt.exact) > 0 || len(rt.wild) > 0) {
		var buf [hostBufLen]byte
		key := buf[:len(h)]
		for i := 0; i < len(h); i++ {
			key[i] = lowerASCII(h[i])
		}
		if t := rt.exact[string(key)]; t != nil && s.table(t) {
			return true
		}
		if len(rt.wild) > 0 {
			// Suffixes start at a dot after at least one label, so a
			// wildcard never matches its own apex.
			for i := 1; i < len(key); i++ {
				if key[i] != '.' {
					continue
				}
				if t := rt.wild[string(key[i:])]; t != nil && s.table(t) {
					return true
				}
			}
		}
	}
	return rt.any != nil && s.table(rt.any)
}

// search is the state of one Match or Allowed call. It lives on the
// caller's stack.
type search[T any] struct {
	req      *Request
	m        *Match[T]
	method   methodSet
	mismatch bool // some candidate failed only on the method
	collect  bool // Allowed: gather methods, never stop
	allowed  []string
}

// table tries one host tier's candidates in specificity order.
func (s *search[T]) table(t *table[T]) bool {
	p := s.req.Path
	if rs := t.exact[p]; len(rs) > 0 && s.try(rs) {
		return true
	}
	if t.trie != nil && s.walk(t.trie, p, 1) {
		return true
	}
	if len(t.prefix) > 0 && s.prefix(t, p) {
		return true
	}
	for _, r := range t.regex {
		if r.re.MatchString(p) && s.accept(r) {
			s.captureRegex(r, p)
			return true
		}
	}
	return false
}

// walk matches the segment starting at p[start:] against n's children,
// literal first, and recurses; past the last segment it tries n's routes.
func (s *search[T]) walk(n *node[T], p string, start int) bool {
	if start > len(p) {
		return len(n.routes) > 0 && s.try(n.routes)
	}
	end := len(p)
	if i := strings.IndexByte(p[start:], '/'); i >= 0 {
		end = start + i
	}
	seg := p[start:end]
	if c := n.lit[seg]; c != nil && s.walk(c, p, end+1) {
		return true
	}
	if n.param != nil && seg != "" {
		mark := s.m.Params.Len()
		s.m.Params.Add("", seg)
		if s.walk(n.param, p, end+1) {
			return true
		}
		s.m.Params.Truncate(mark)
	}
	return false
}

// prefix probes the prefix map from the longest segment boundary of p
// (bounded by the longest configured prefix) down to "/". Every probe key
// is a substring of p.
func (s *search[T]) prefix(t *table[T], p string) bool {
	q := p
	if len(q) > 1 && q[len(q)-1] == '/' {
		q = q[:len(q)-1]
	}
	if len(q) > t.maxPrefix {
		q = q[:strings.LastIndexByte(q[:t.maxPrefix+1], '/')]
	}
	for {
		if q == "" {
			q = "/"
		}
		if rs := t.prefix[q]; len(rs) > 0 && s.try(rs) {
			return true
		}
		if q == "/" {
			return false
		}
		q = q[:strings.LastIndexByte(q, '/')]
	}
}

// try tries equally specific candidates in their pre-sorted order.
func (s *search[T]) try(rs []*route[T]) bool {
	for _, r := range rs {
		if s.accept(r) {
			return true
		}
	}
	return false
}

// accept checks headers then method for a candidate whose host and path
// matched, and on success records it in s.m.
func (s *search[T]) accept(r *route[T]) bool {
	for i := range r.headers {
		if !hasValue(s.req.Header[r.headers[i].name], r.headers[i].value) {
			return false
		}
	}
	if r.mediaType != "" && !acceptsMediaType(s.req.Header["Accept"], r.mediaType) {
		return false
	}
	if s.collect {
		s.allowed = append(s.allowed, r.allowed...)
		return false
	}
	if !s.methodOK(r) {
		s.mismatch = true
		return false
	}
	s.m.Value, s.m.Index = r.value, r.index
	for i, name := range r.paramNames {
		s.m.Params.setName(i, name)
	}
	return true
}

func (s *search[T]) methodOK(r *route[T]) bool {
	if r.anyMethod {
		return true
	}
	if s.method != 0 {
		return r.methodMask&s.method != 0
	}
	return slices.Contains(r.otherMethods, s.req.Method)
}

// captureRegex stores a winning regex route's named groups as Params.
func (s *search[T]) captureRegex(r *route[T], p string) {
	if len(r.reGroups) == 0 {
		return
	}
	idx := r.re.FindStringSubmatchIndex(p)
	for _, g := range r.reGroups {
		if lo, hi := idx[2*g.sub], idx[2*g.sub+1]; lo >= 0 {
			s.m.Params.Add(g.name, p[lo:hi])
		}
	}
}

func hasValue(vals []string, want string) bool {
	for _, v := range vals {
		if v == want {
			return true
		}
	}
	return false
}

// acceptsMediaType reports whether one of the media ranges in the Accept
// values is want (lower-case type/subtype), ignoring parameters, spaces and
// case. It scans in place: no allocation.
func acceptsMediaType(vals []string, want string) bool {
	for _, v := range vals {
		for v != "" {
			item := v
			if i := strings.IndexByte(v, ','); i >= 0 {
				item, v = v[:i], v[i+1:]
			} else {
				v = ""
			}
			if i := strings.IndexByte(item, ';'); i >= 0 {
				item = item[:i]
			}
			if strings.EqualFold(strings.TrimSpace(item), want) {
				return true
			}
		}
	}
	return false
}
