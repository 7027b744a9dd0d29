package router

import (
	"cmp"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strings"
)

// Route is one route's match as configured, plus the value the caller
// gets back when it wins. The zero Route matches every request.
type Route[T any] struct {
	// Hosts are exact names or "*.suffix" wildcards (one or more labels
	// before the suffix, never the suffix itself). Empty: any host.
	Hosts []string
	// Path is an exact path; whole segments written {name} capture a
	// parameter. Empty: not an exact-path route.
	Path string
	// PathPrefix matches whole segments ("/api" matches "/api" and
	// "/api/x", never "/api-internal"); a trailing '/' is ignored. Empty
	// with Path and PathRegex also empty: any path.
	PathPrefix string
	// PathRegex is an RE2 expression searched in the normalized path
	// (anchor it yourself); named groups become Params.
	PathRegex string
	// Methods are upper-case method names. Empty: any method. GET also
	// matches HEAD.
	Methods []string
	// Headers must all be present with exactly these values (any one of a
	// repeated header's values). Names are case-insensitive.
	Headers map[string]string
	// MediaType (lower-case "type/subtype", e.g.
	// "application/vnd.shop.v2+json") must be one of the media ranges the
	// request's Accept header lists, parameters ignored; it counts as one
	// more header constraint. Empty: Accept is not looked at.
	MediaType string
	// Value is returned in Match.Value.
	Value T
}

// BuildError is one problem with one route given to New.
type BuildError struct {
	Index int    // position of the route in the slice given to New
	Field string // path of the field inside the route, e.g. "match.path_regex"
	Msg   string
}

func (e *BuildError) Error() string {
	return fmt.Sprintf("routes[%d].%s: %s", e.Index, e.Field, e.Msg)
}

// Router matches requests to routes. It is immutable after New and safe
// for concurrent use.
type Router[T any] struct {
	exact map[string]*table[T] // normalized host -> routes naming it
	// wild maps a wildcard's suffix with its dot (".example.com") to its
	// routes. Match probes it with each suffix of the host that follows a
	// first label, longest first: as many lookups as the host has dots.
	wild map[string]*table[T]
	any  *table[T] // routes without hosts; nil when none
}

// table holds the routes of one host tier, organized by path kind in
// specificity order. Every candidate list is pre-sorted.
type table[T any] struct {
	exact     map[string][]*route[T]
	trie      *node[T] // nil when no {param} paths
	prefix    map[string][]*route[T]
	maxPrefix int // longest key in prefix
	regex     []*route[T]
}

// node is one segment position of the {param} trie. Walking it depth-first,
// literal child before param child, visits matching routes from the most
// to the least specific.
type node[T any] struct {
	lit    map[string]*node[T]
	param  *node[T]
	routes []*route[T] // routes whose pattern ends here
}

// route is a Route compiled for matching.
type route[T any] struct {
	index        int
	value        T
	anyMethod    bool
	methodMask   methodSet
	otherMethods []string // methods outside the mask
	allowed      []string // sorted, HEAD added where GET is: for Allowed
	headers      []headerMatch
	mediaType    string   // "" = any Accept
	constraints  int      // methods constraint (0/1) + number of headers (+1 for mediaType)
	paramNames   []string // {param} names in path order
	re           *regexp.Regexp
	reGroups     []reGroup
	reRank       int // index of the first route with the same regex
}

type headerMatch struct{ name, value string } // name canonical

type reGroup struct {
	sub  int // submatch number
	name string
}

// methodSet is a bit set of the common methods, so a method check is one
// AND instead of string compares.
type methodSet uint16

const (
	mGET methodSet = 1 << iota
	mHEAD
	mPOST
	mPUT
	mPATCH
	mDELETE
	mOPTIONS
	mTRACE
	mCONNECT
)

func methodBit(m string) methodSet {
	switch m {
	case http.MethodGet:
		return mGET
	case http.MethodHead:
		return mHEAD
	case http.MethodPost:
		return mPOST
	case http.MethodPut:
		return mPUT
	case http.MethodPatch:
		return mPATCH
	case http.MethodDelete:
		return mDELETE
	case http.MethodOptions:
		return mOPTIONS
	case http.MethodTrace:
		return mTRACE
	case http.MethodConnect:
		return mCONNECT
	}
	return 0
}

// New compiles routes. Every problem is reported: the error is errors.Join
// of one *BuildError per problem.
func New[T any](routes []Route[T]) (*Router[T], error) {
	rt := &Router[T]{exact: map[string]*table[T]{}, wild: map[string]*table[T]{}}
	var errs []error
	fail := func(i int, field, format string, args ...any) {
		errs = append(errs, &BuildError{Index: i, Field: field, Msg: fmt.Sprintf(format, args...)})
	}
	regexRank := map[string]int{}

	for i := range routes {
		rc := &routes[i]
		r, k, bad := compileRoute(i, rc, regexRank, fail)
		hosts, hostsOK := compileHosts(i, rc.Hosts, fail)
		if bad || !hostsOK {
			continue
		}
		if len(rc.Hosts) == 0 {
			if rt.any == nil {
				rt.any = newTable[T]()
			}
			rt.any.add(r, k)
		}
		for _, h := range hosts {
			var t *table[T]
			if suffix, ok := strings.CutPrefix(h, "*"); ok {
				if t = rt.wild[suffix]; t == nil {
					t = newTable[T]()
					rt.wild[suffix] = t
				}
			} else if t = rt.exact[h]; t == nil {
				t = newTable[T]()
				rt.exact[h] = t
			}
			t.add(r, k)
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}

	for _, t := range rt.exact {
		t.finish()
	}
	for _, t := range rt.wild {
		t.finish()
	}
	if rt.any != nil {
		rt.any.finish()
	}
	return rt, nil
}

// pathKind is how a route matches the path; it selects the table part.
type pathKind struct {
	exact  string   // exact path
	params []string // {param} pattern segments, paramMarker marks a param
	prefix string
	regex  bool
}

// compileRoute validates one route and compiles everything but its hosts.
// bad reports that fail was called.
func compileRoute[T any](i int, rc *Route[T], regexRank map[string]int, fail func(int, string, string, ...any)) (r *route[T], k pathKind, bad bool) {
	r = &route[T]{index: i, value: rc.Value}
	failed := false
	failf := func(field, format string, args ...any) {
		failed = true
		fail(i, field, format, args...)
	}

	set := 0
	for _, s := range []string{rc.Path, rc.PathPrefix, rc.PathRegex} {
		if s != "" {
			set++
		}
	}
	switch {
	case set > 1:
		failf("match", "only one of path, path_prefix and path_regex may be set")
	case rc.Path != "":
		k.exact, k.params, r.paramNames = compilePath(rc.Path, func(msg string) { failf("match.path", "%s", msg) })
	case rc.PathPrefix != "":
		k.prefix = compilePrefix(rc.PathPrefix, func(msg string) { failf("match.path_prefix", "%s", msg) })
	case rc.PathRegex != "":
		re, err := regexp.Compile(rc.PathRegex)
		if err != nil {
			failf("match.path_regex", "%v", err)
			break
		}
		k.regex = true
		r.re = re
		for sub, name := range re.SubexpNames() {
			if name != "" {
				r.reGroups = append(r.reGroups, reGroup{sub: sub, name: name})
			}
		}
		rank, seen := regexRank[rc.PathRegex]
		if !seen {
			rank = i
			regexRank[rc.PathRegex] = i
		}
		r.reRank = rank
	default:
		k.prefix = "/"
	}

	if len(rc.Methods) == 0 {
		r.anyMethod = true
	} else {
		r.constraints++
		for j, m := range rc.Methods {
			if !isToken(m) || strings.ToUpper(m) != m {
				failf(fmt.Sprintf("match.methods[%d]", j), "%q is not an upper-case method name", m)
				continue
			}
			if b := methodBit(m); b != 0 {
				r.methodMask |= b
			} else if !slices.Contains(r.otherMethods, m) {
				r.otherMethods = append(r.otherMethods, m)
			}
			r.allowed = append(r.allowed, m)
		}
		if r.methodMask&mGET != 0 {
			r.methodMask |= mHEAD
			r.allowed = append(r.allowed, http.MethodHead)
		}
		slices.Sort(r.allowed)
		r.allowed = slices.Compact(r.allowed)
	}

	for name, value := range rc.Headers {
		if !isToken(name) {
			failf("match.headers."+name, "%q is not a valid header name", name)
			continue
		}
		r.headers = append(r.headers, headerMatch{name: http.CanonicalHeaderKey(name), value: value})
	}
	slices.SortFunc(r.headers, func(a, b headerMatch) int { return strings.Compare(a.name, b.name) })
	for j := 1; j < len(r.headers); j++ {
		if r.headers[j].name == r.headers[j-1].name {
			failf("match.headers", "header %q is listed twice (names are case-insensitive)", r.headers[j].name)
		}
	}
	r.constraints += len(r.headers)
	if rc.MediaType != "" {
		r.mediaType = strings.ToLower(rc.MediaType)
		r.constraints++
	}
	return r, k, failed
}

// paramMarker stands for a {param} in a compiled pattern; a normalized
// literal segment never contains a raw brace.
const paramMarker = "{}"

// compilePath normalizes a route path. A path without {param} segments is
// exact; otherwise it returns the pattern segments and param names.
func compilePath(p string, fail func(string)) (exact string, pattern, names []string) {
	if !strings.ContainsAny(p, "{}") {
		norm, _, err := Normalize(p)
		if err != nil {
			fail(err.Error())
		}
		return norm, nil, nil
	}
	lower := strings.ToLower(p)
	if strings.Contains(lower, "%7b") || strings.Contains(lower, "%7d") {
		fail("a path with {params} cannot also contain encoded braces")
		return "", nil, nil
	}
	if p == "" || p[0] != '/' {
		fail(ErrPathNotAbsolute.Error())
		return "", nil, nil
	}
	for _, seg := range strings.Split(p[1:], "/") {
		if !strings.ContainsAny(seg, "{}") {
			continue
		}
		name, ok := strings.CutPrefix(seg, "{")
		if ok {
			name, ok = strings.CutSuffix(name, "}")
		}
		if !ok || !isParamName(name) {
			fail(fmt.Sprintf("segment %q: a parameter is a whole segment {name}, name of letters, digits and '_'", seg))
			return "", nil, nil
		}
		if slices.Contains(names, name) {
			fail(fmt.Sprintf("parameter {%s} appears twice", name))
			return "", nil, nil
		}
		names = append(names, name)
	}
	// Normalization encodes braces, so a param segment becomes %7Bname%7D
	// and keeps its place through dot-segment resolution.
	norm, _, err := Normalize(p)
	if err != nil {
		fail(err.Error())
		return "", nil, nil
	}
	names = nil // re-read in normalized order
	for _, seg := range strings.Split(norm[1:], "/") {
		if inner, ok := strings.CutPrefix(seg, "%7B"); ok {
			if name, ok := strings.CutSuffix(inner, "%7D"); ok {
				pattern = append(pattern, paramMarker)
				names = append(names, name)
				continue
			}
		}
		pattern = append(pattern, seg)
	}
	if len(names) == 0 { // dot segments removed every param
		return norm, nil, nil
	}
	return "", pattern, names
}

// compilePrefix normalizes a path_prefix and drops a trailing '/'.
func compilePrefix(p string, fail func(string)) string {
	if strings.ContainsAny(p, "{}") {
		fail("path_prefix cannot contain {params}")
		return ""
	}
	norm, _, err := Normalize(p)
	if err != nil {
		fail(err.Error())
		return ""
	}
	if len(norm) > 1 {
		norm = strings.TrimSuffix(norm, "/")
	}
	return norm
}

// compileHosts normalizes a route's hosts; wildcards keep their '*'.
// Duplicates are dropped so a route sits once in each table.
func compileHosts(i int, hosts []string, fail func(int, string, string, ...any)) ([]string, bool) {
	ok := true
	var out []string
	for j, h := range hosts {
		raw := h
		field := fmt.Sprintf("match.hosts[%d]", j)
		wildcard := strings.HasPrefix(h, "*.")
		if wildcard {
			h = h[1:] // keep the dot: ".example.com"
		}
		switch {
		case h == "" || h == "." || h == "*":
			fail(i, field, "%q is not a host name (leave hosts empty to match any host)", raw)
			ok = false
			continue
		case strings.ContainsAny(h, "*/ \t@?#\\"):
			fail(i, field, "%q is not a host name or a \"*.suffix\" wildcard", raw)
			ok = false
			continue
		case !strings.HasPrefix(h, "[") && strings.Count(h, ":") == 1:
			fail(i, field, "%q: hosts match any port; remove the port", raw)
			ok = false
			continue
		}
		n := NormalizeHost(h)
		if wildcard {
			if len(n) < 2 { // "*.." and the like
				fail(i, field, "%q is not a valid wildcard", raw)
				ok = false
				continue
			}
			n = "*" + n
		}
		if !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	return out, ok
}

func isParamName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

// isToken reports whether s is an RFC 9110 token (method and header names).
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !isUnreserved[c] && strings.IndexByte("!#$%&'*+^`|", c) < 0 {
			return false
		}
	}
	return true
}

func newTable[T any]() *table[T] {
	return &table[T]{exact: map[string][]*route[T]{}, prefix: map[string][]*route[T]{}}
}

func (t *table[T]) add(r *route[T], k pathKind) {
	switch {
	case k.params != nil:
		if t.trie == nil {
			t.trie = &node[T]{}
		}
		n := t.trie
		for _, seg := range k.params {
			if seg == paramMarker {
				if n.param == nil {
					n.param = &node[T]{}
				}
				n = n.param
				continue
			}
			if n.lit == nil {
				n.lit = map[string]*node[T]{}
			}
			c := n.lit[seg]
			if c == nil {
				c = &node[T]{}
				n.lit[seg] = c
			}
			n = c
		}
		n.routes = append(n.routes, r)
	case k.regex:
		t.regex = append(t.regex, r)
	case k.prefix != "":
		t.prefix[k.prefix] = append(t.prefix[k.prefix], r)
		t.maxPrefix = max(t.maxPrefix, len(k.prefix))
	default:
		t.exact[k.exact] = append(t.exact[k.exact], r)
	}
}

// bySpecificity orders equally specific routes: more constraints first,
// then file order.
func bySpecificity[T any](a, b *route[T]) int {
	return cmp.Or(cmp.Compare(b.constraints, a.constraints), cmp.Compare(a.index, b.index))
}

// finish sorts every candidate list once, so Match only walks them.
func (t *table[T]) finish() {
	for _, rs := range t.exact {
		slices.SortFunc(rs, bySpecificity[T])
	}
	for _, rs := range t.prefix {
		slices.SortFunc(rs, bySpecificity[T])
	}
	if t.trie != nil {
		t.trie.finish()
	}
	// Different regexes keep file order (by their first appearance);
	// routes sharing one regex are equally specific.
	slices.SortFunc(t.regex, func(a, b *route[T]) int {
		return cmp.Or(cmp.Compare(a.reRank, b.reRank), bySpecificity(a, b))
	})
}

func (n *node[T]) finish() {
	slices.SortFunc(n.routes, bySpecificity[T])
	for _, c := range n.lit {
		c.finish()
	}
	if n.param != nil {
		n.param.finish()
	}
}
