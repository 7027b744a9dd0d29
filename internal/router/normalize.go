package router

import (
	"errors"
	"strings"
)

// Errors returned by Normalize. The gateway answers all of them with 400.
var (
	ErrPathNotAbsolute = errors.New("router: path must start with '/'")
	ErrPathEscape      = errors.New("router: invalid percent-encoding in path")
	ErrPathControl     = errors.New("router: control character in path")
	// ErrPathDotParams refuses "..;x" and ".;x" segments: RFC 3986 keeps
	// them as ordinary segments, but servlet containers strip the
	// parameters and then resolve the dots, so "/public/..;/admin" would
	// reach "/admin" behind a route that only matched "/public".
	ErrPathDotParams = errors.New("router: dot segment with parameters (\"..;\") in path")
)

// Byte classes, built once. A table lookup is cheaper than a switch on the
// per-request scan.
var (
	isUnreserved [256]bool // RFC 3986 unreserved: ALPHA DIGIT - . _ ~
	isPathByte   [256]bool // may stay raw in a normalized path: pchar minus '%', plus '/'
)

func init() {
	for c := 'A'; c <= 'Z'; c++ {
		isUnreserved[c] = true
		isUnreserved[c+'a'-'A'] = true
	}
	for c := '0'; c <= '9'; c++ {
		isUnreserved[c] = true
	}
	for _, c := range "-._~" {
		isUnreserved[c] = true
	}
	isPathByte = isUnreserved
	for _, c := range "!$&'()*+,;=:@/" { // sub-delims, ':' and '@' (pchar), '/'
		isPathByte[c] = true
	}
}

const upperHex = "0123456789ABCDEF"

// Normalize cleans a raw request path (the request-target's path part,
// before '?', as received) and returns it in escaped form, the form matched
// against routes, seen by policies and sent upstream:
//
//   - it must start with '/';
//   - percent-encodings of unreserved characters are decoded, all others are
//     kept with upper-case hex; an invalid escape is an error;
//   - raw bytes outside the RFC 3986 path set are percent-encoded; raw
//     control bytes are an error;
//   - dot segments (also %2E-encoded ones) are resolved per RFC 3986 5.2.4,
//     never climbing above "/";
//   - runs of '/' are merged (before dot segments are resolved, so
//     "/a//../b" is "/b");
//   - encodedSep reports %2F, %5C or %00 in the result: they are not
//     separators and are not decoded. A raw '\' becomes %5C and counts too,
//     because some upstreams treat it as '/'.
//
// When raw is already normal it is returned as is, without allocating.
func Normalize(raw string) (path string, encodedSep bool, err error) {
	if raw == "" || raw[0] != '/' {
		return "", false, ErrPathNotAbsolute
	}
	if ok, sep := scanNormal(raw); ok {
		if hasDotParams(raw) {
			return "", false, ErrPathDotParams
		}
		return raw, sep, nil
	}
	p, sep, err := normalizeSlow(raw)
	if err == nil && hasDotParams(p) {
		return "", false, ErrPathDotParams
	}
	return p, sep, err
}

// hasDotParams reports a segment that is "." or ".." followed by ';'.
func hasDotParams(p string) bool {
	if strings.IndexByte(p, ';') < 0 {
		return false
	}
	for i := 0; i+1 < len(p); i++ {
		if p[i] != '/' || p[i+1] != '.' {
			continue
		}
		rest := p[i+2:]
		if strings.HasPrefix(rest, ";") || strings.HasPrefix(rest, ".;") {
			return true
		}
	}
	return false
}

// scanNormal reports whether raw (starting with '/') is already in normal
// form, and whether it holds an encoded separator. Any doubt sends the
// caller to the slow path, which also produces the errors.
func scanNormal(raw string) (ok, sep bool) {
	segStart := 1
	for i := 1; i < len(raw); i++ {
		c := raw[i]
		switch {
		case c == '/':
			if i == segStart || isDotSegment(raw[segStart:i]) {
				return false, false
			}
			segStart = i + 1
		case c == '%':
			if i+2 >= len(raw) {
				return false, false
			}
			hi, lo := raw[i+1], raw[i+2]
			if !isUpperHexDigit(hi) || !isUpperHexDigit(lo) {
				return false, false
			}
			v := unhex(hi)<<4 | unhex(lo)
			if isUnreserved[v] {
				return false, false
			}
			if isEncodedSep(v) {
				sep = true
			}
			i += 2
		case isPathByte[c]:
		default:
			return false, false
		}
	}
	if isDotSegment(raw[segStart:]) {
		return false, false
	}
	return true, sep
}

// normalizeSlow does the work when raw is not already normal: a first pass
// fixes the encoding, a second resolves segments in place.
func normalizeSlow(raw string) (string, bool, error) {
	// Work in a stack buffer when the path is short (most are): the
	// returned string is then the only allocation. append moves a longer
	// path to the heap by itself.
	var stack [256]byte
	b := stack[:0]
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		switch {
		case c == '%':
			if i+2 >= len(raw) {
				return "", false, ErrPathEscape
			}
			hi, ok1 := unhexOK(raw[i+1])
			lo, ok2 := unhexOK(raw[i+2])
			if !ok1 || !ok2 {
				return "", false, ErrPathEscape
			}
			v := hi<<4 | lo
			if isUnreserved[v] {
				b = append(b, v)
			} else {
				b = append(b, '%', upperHex[v>>4], upperHex[v&15])
			}
			i += 2
		case c < 0x20 || c == 0x7f:
			return "", false, ErrPathControl
		case isPathByte[c]:
			b = append(b, c)
		default: // includes '\', which hasEncodedSep then reports
			b = append(b, '%', upperHex[c>>4], upperHex[c&15])
		}
	}
	b = resolveSegments(b)
	return string(b), hasEncodedSep(b), nil
}

// resolveSegments merges runs of '/' and removes dot segments from b
// (which starts with '/'), in place. Writing never overtakes reading:
// every kept segment was preceded by at least one '/' in the input.
func resolveSegments(b []byte) []byte {
	w, r, n := 0, 0, len(b)
	trailing := false
	for r < n {
		for r < n && b[r] == '/' {
			r++
		}
		start := r
		for r < n && b[r] != '/' {
			r++
		}
		seg := b[start:r]
		switch {
		case len(seg) == 0: // only possible at the end: a trailing '/'
			trailing = true
		case len(seg) == 1 && seg[0] == '.':
			trailing = r >= n
		case len(seg) == 2 && seg[0] == '.' && seg[1] == '.':
			if w > 0 {
				w = lastSlash(b[:w])
			}
			trailing = r >= n
		default:
			b[w] = '/'
			w++
			w += copy(b[w:], seg)
			trailing = false
		}
	}
	if trailing || w == 0 {
		b[w] = '/'
		w++
	}
	return b[:w]
}

func lastSlash(b []byte) int {
	for i := len(b) - 1; i >= 0; i-- {
		if b[i] == '/' {
			return i
		}
	}
	return 0
}

func isDotSegment(s string) bool { return s == "." || s == ".." }

func isEncodedSep(v byte) bool { return v == '/' || v == '\\' || v == 0 }

// hasEncodedSep scans a normalized path (upper-case hex) for %2F, %5C, %00.
func hasEncodedSep[S string | []byte](p S) bool {
	for i := 0; i+2 < len(p); i++ {
		if p[i] != '%' {
			continue
		}
		if (p[i+1] == '2' && p[i+2] == 'F') || (p[i+1] == '5' && p[i+2] == 'C') || (p[i+1] == '0' && p[i+2] == '0') {
			return true
		}
		i += 2
	}
	return false
}

func isUpperHexDigit(c byte) bool { return '0' <= c && c <= '9' || 'A' <= c && c <= 'F' }

// unhex decodes a digit already known to be upper-case hex.
func unhex(c byte) byte {
	if c <= '9' {
		return c - '0'
	}
	return c - 'A' + 10
}

func unhexOK(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// NormalizeHost lower-cases a Host header value (ASCII only: hosts on the
// wire are ASCII or punycode), strips a port and one trailing dot, and
// strips the brackets of an IPv6 literal ("[::1]:80" is "::1"). It does not
// allocate when host is already normal.
func NormalizeHost(host string) string {
	h := trimHost(host)
	if !hasUpper(h) {
		return h
	}
	var sb strings.Builder
	sb.Grow(len(h))
	for i := 0; i < len(h); i++ {
		sb.WriteByte(lowerASCII(h[i]))
	}
	return sb.String()
}

// trimHost strips the port, IPv6 brackets and one trailing dot, without
// changing case.
func trimHost(host string) string {
	if len(host) > 0 && host[0] == '[' {
		if i := strings.IndexByte(host, ']'); i > 0 {
			return host[1:i]
		}
		return host
	}
	if i := strings.LastIndexByte(host, ':'); i >= 0 && strings.IndexByte(host, ':') == i {
		host = host[:i] // exactly one colon: a port; more is a bare IPv6 address
	}
	if n := len(host); n > 0 && host[n-1] == '.' {
		host = host[:n-1]
	}
	return host
}

func hasUpper(s string) bool {
	for i := 0; i < len(s); i++ {
		if 'A' <= s[i] && s[i] <= 'Z' {
			return true
		}
	}
	return false
}

func lowerASCII(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}
