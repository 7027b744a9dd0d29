// Package headers compiles the header rules and value templates of a route
// (request_headers, response_headers, rewrite.path) once, at snapshot
// compile time, so that applying them per request is a walk over
// precomputed segments with no parsing and, for static values, no
// allocation.
//
// A template is a string with placeholders:
//
//	{consumer}        authenticated consumer name ("" when anonymous)
//	{roles}           consumer roles, comma-joined
//	{route}           matched route name
//	{request_id}      the request id
//	{client_ip}       the real client address
//	{host}            the Host the client asked for
//	{method}          the request method
//	{path}            the normalized path, escaped form
//	{param.NAME}      a path parameter, escaped form; {NAME} also works
//	                  when NAME is one of the route's parameter names
//	{header.NAME}     the first value of an inbound request header
//	{query.NAME}      the first value of a query parameter, decoded
//
// "{{" is a literal "{". An unknown placeholder or an unclosed "{" is an
// error at Compile.
//
// Example rules (config):
//
//	request_headers:
//	  set:    { X-User: "{consumer}", X-Env: prod }
//	  add:    { Via: "1.1 portunus" }
//	  remove: [Cookie]
package headers

import (
	"fmt"
	"net/http"
	"net/textproto"
	"strings"

	"github.com/portunus-gw/portunus/internal/pipeline"
)

// kind says what one template segment renders.
type kind uint8

const (
	kLiteral kind = iota
	kConsumer
	kRoles
	kRoute
	kRequestID
	kClientIP
	kHost
	kMethod
	kPath
	kParam
	kHeader
	kQuery
)

// sink says where a rendered value goes, which decides how dynamic
// values are made safe.
type sink uint8

const (
	// ctxHeader: a header value. Control characters (other than tab) are
	// dropped so a client-supplied value can never split a header.
	ctxHeader sink = iota
	// ctxPath: an escaped URL path. Values already in escaped path form
	// (params, {path}) are inserted as they are; every other value is
	// percent-escaped as one path segment, so it can add no '/', '?' or
	// '#' of its own.
	ctxPath
)

type segment struct {
	kind kind
	// text is the literal text (kLiteral) or the parameter / query name,
	// or the canonical header name (kHeader).
	text string
}

// Template is a compiled value with placeholders. It is immutable and safe
// for concurrent use.
type Template struct {
	src  string
	segs []segment
	ctx  sink
}

var simpleKinds = map[string]kind{
	"consumer":   kConsumer,
	"roles":      kRoles,
	"route":      kRoute,
	"request_id": kRequestID,
	"client_ip":  kClientIP,
	"host":       kHost,
	"method":     kMethod,
	"path":       kPath,
}

// Compile compiles s for use as a header value. paramNames are the route's
// path parameter names, which may be written as {NAME}.
func Compile(s string, paramNames []string) (*Template, error) {
	return compile(s, paramNames, ctxHeader)
}

// CompilePath compiles s as an upstream path (rewrite.path). It must start
// with '/' and hold no '?' or '#'. Parameters and {path} are inserted in
// their escaped form; any other value is escaped as a single path segment.
func CompilePath(s string, paramNames []string) (*Template, error) {
	if !strings.HasPrefix(s, "/") {
		return nil, fmt.Errorf("headers: path template %q must start with '/'", s)
	}
	if strings.ContainsAny(s, "?#") {
		return nil, fmt.Errorf("headers: path template %q must not contain '?' or '#'", s)
	}
	return compile(s, paramNames, ctxPath)
}

func compile(s string, paramNames []string, ctx sink) (*Template, error) {
	t := &Template{src: s, ctx: ctx}
	var lit strings.Builder
	flush := func() {
		if lit.Len() > 0 {
			t.segs = append(t.segs, segment{kind: kLiteral, text: lit.String()})
			lit.Reset()
		}
	}
	for i := 0; i < len(s); {
		c := s[i]
		if isCtl(c) {
			// Never a valid header value or path byte; refusing it here
			// keeps rendered output free of control bytes.
			return nil, fmt.Errorf("headers: template %q: control character at offset %d", s, i)
		}
		if c != '{' {
			lit.WriteByte(c)
			i++
			continue
		}
		if i+1 < len(s) && s[i+1] == '{' {
			lit.WriteByte('{')
			i += 2
			continue
		}
		end := strings.IndexByte(s[i+1:], '}')
		if end < 0 {
			return nil, fmt.Errorf("headers: template %q: unclosed '{' at offset %d", s, i)
		}
		name := s[i+1 : i+1+end]
		seg, err := placeholder(name, paramNames)
		if err != nil {
			return nil, fmt.Errorf("headers: template %q: %w", s, err)
		}
		flush()
		t.segs = append(t.segs, seg)
		i += end + 2
	}
	flush()
	return t, nil
}

func placeholder(name string, paramNames []string) (segment, error) {
	if k, ok := simpleKinds[name]; ok {
		return segment{kind: k}, nil
	}
	prefix, arg, dotted := strings.Cut(name, ".")
	if dotted {
		if arg == "" {
			return segment{}, fmt.Errorf("placeholder {%s} needs a name after '.'", name)
		}
		switch prefix {
		case "param":
			return segment{kind: kParam, text: arg}, nil
		case "header":
			if !validToken(arg) {
				return segment{}, fmt.Errorf("placeholder {%s}: %q is not a header name", name, arg)
			}
			return segment{kind: kHeader, text: textproto.CanonicalMIMEHeaderKey(arg)}, nil
		case "query":
			return segment{kind: kQuery, text: arg}, nil
		}
	}
	for _, p := range paramNames {
		if p == name {
			return segment{kind: kParam, text: name}, nil
		}
	}
	return segment{}, fmt.Errorf("unknown placeholder {%s}", name)
}

// IsStatic reports whether t has no placeholders.
func (t *Template) IsStatic() bool {
	for _, sg := range t.segs {
		if sg.kind != kLiteral {
			return false
		}
	}
	return true
}

// String returns the source text of t.
func (t *Template) String() string { return t.src }

// static returns the literal value of a static template.
func (t *Template) static() string {
	if len(t.segs) == 0 {
		return ""
	}
	return t.segs[0].text
}

// Render appends t rendered for r and s to dst. It allocates only when dst
// must grow.
func (t *Template) Render(dst []byte, r *http.Request, s *pipeline.State) []byte {
	for i := range t.segs {
		sg := &t.segs[i]
		switch sg.kind {
		case kLiteral:
			dst = append(dst, sg.text...)
		case kRoles:
			for j, role := range s.Roles {
				if j > 0 {
					dst = t.appendValue(dst, ",", false)
				}
				dst = t.appendValue(dst, role, false)
			}
		case kClientIP:
			if s.ClientIP.IsValid() {
				// An address is always safe in both contexts except for
				// IPv6 zones, which never come from the network.
				dst = s.ClientIP.AppendTo(dst)
			}
		case kQuery:
			dst = t.appendQuery(dst, r.URL.RawQuery, sg.text)
		default:
			v, escaped := t.value(sg, r, s)
			dst = t.appendValue(dst, v, escaped)
		}
	}
	return dst
}

// value returns a single-string placeholder's value and whether it is
// already in escaped path form.
func (t *Template) value(sg *segment, r *http.Request, s *pipeline.State) (string, bool) {
	switch sg.kind {
	case kConsumer:
		return s.Consumer, false
	case kRoute:
		return s.RouteName, false
	case kRequestID:
		return s.RequestID, false
	case kHost:
		return r.Host, false
	case kMethod:
		return r.Method, false
	case kPath:
		return s.Path, true
	case kParam:
		v, _ := s.Params.Get(sg.text)
		return v, true
	case kHeader:
		if vv := r.Header[sg.text]; len(vv) > 0 {
			return vv[0], false
		}
	}
	return "", false
}

// renderString renders t as a string, without copying when t is a single
// placeholder whose value needs no change.
func (t *Template) renderString(r *http.Request, s *pipeline.State) string {
	if len(t.segs) == 1 {
		sg := &t.segs[0]
		switch sg.kind {
		case kLiteral:
			return sg.text
		case kConsumer, kRoute, kRequestID, kHost, kMethod, kPath, kParam, kHeader:
			v, escaped := t.value(sg, r, s)
			if t.safeAsIs(v, escaped) {
				return v
			}
		}
	}
	var buf [128]byte
	return string(t.Render(buf[:0], r, s))
}

func (t *Template) safeAsIs(v string, escaped bool) bool {
	if t.ctx == ctxPath && !escaped {
		for i := 0; i < len(v); i++ {
			if shouldEscapeSegment(v[i]) {
				return false
			}
		}
		return true
	}
	for i := 0; i < len(v); i++ {
		if isCtl(v[i]) {
			return false
		}
	}
	return true
}

func (t *Template) appendValue(dst []byte, v string, escaped bool) []byte {
	if t.ctx == ctxPath && !escaped {
		return appendPathSegment(dst, v)
	}
	for i := 0; i < len(v); i++ {
		if c := v[i]; !isCtl(c) {
			dst = append(dst, c)
		}
	}
	return dst
}

// appendQuery appends the decoded first value of query parameter name
// found in raw, scanning in place so nothing is allocated.
func (t *Template) appendQuery(dst []byte, raw, name string) []byte {
	for raw != "" {
		var pair string
		pair, raw, _ = strings.Cut(raw, "&")
		k, v, _ := strings.Cut(pair, "=")
		if !queryKeyEquals(k, name) {
			continue
		}
		return t.appendDecoded(dst, v)
	}
	return dst
}

// appendDecoded appends the query-decoded v (with '+' as space), made safe
// for the template's context. Invalid escapes are kept literally.
func (t *Template) appendDecoded(dst []byte, v string) []byte {
	for i := 0; i < len(v); i++ {
		c := v[i]
		switch {
		case c == '+':
			c = ' '
		case c == '%' && i+2 < len(v) && isHex(v[i+1]) && isHex(v[i+2]):
			c = unhex(v[i+1])<<4 | unhex(v[i+2])
			i += 2
		}
		if t.ctx == ctxPath {
			dst = appendPathByte(dst, c)
		} else if !isCtl(c) {
			dst = append(dst, c)
		}
	}
	return dst
}

// queryKeyEquals compares a raw (possibly escaped) query key with name.
func queryKeyEquals(raw, name string) bool {
	if strings.IndexByte(raw, '%') < 0 && strings.IndexByte(raw, '+') < 0 {
		return raw == name
	}
	j := 0
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		switch {
		case c == '+':
			c = ' '
		case c == '%' && i+2 < len(raw) && isHex(raw[i+1]) && isHex(raw[i+2]):
			c = unhex(raw[i+1])<<4 | unhex(raw[i+2])
			i += 2
		}
		if j >= len(name) || name[j] != c {
			return false
		}
		j++
	}
	return j == len(name)
}

// isCtl reports bytes that must never appear in a header value.
func isCtl(c byte) bool { return (c < 0x20 && c != '\t') || c == 0x7f }

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case '0' <= c && c <= '9':
		return c - '0'
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10
	default:
		return c - 'A' + 10
	}
}

const upperHex = "0123456789ABCDEF"

// shouldEscapeSegment reports bytes that cannot appear unescaped in one
// path segment: everything but RFC 3986 unreserved characters and the
// sub-delims and ':' '@' that pchar allows.
func shouldEscapeSegment(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return false
	}
	switch c {
	case '-', '.', '_', '~', '!', '$', '&', '\'', '(', ')', '*', '+', ',', ';', '=', ':', '@':
		return false
	}
	return true
}

func appendPathByte(dst []byte, c byte) []byte {
	if shouldEscapeSegment(c) {
		return append(dst, '%', upperHex[c>>4], upperHex[c&15])
	}
	return append(dst, c)
}

func appendPathSegment(dst []byte, v string) []byte {
	for i := 0; i < len(v); i++ {
		dst = appendPathByte(dst, v[i])
	}
	return dst
}

// validToken reports whether s is an RFC 9110 token (a valid header name).
func validToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
			continue
		}
		if !strings.ContainsRune("!#$%&'*+-.^_`|~", rune(c)) {
			return false
		}
	}
	return true
}
