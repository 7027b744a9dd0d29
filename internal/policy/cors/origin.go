package cors

import (
	"fmt"
	"net/url"
	"strings"
)

// origin is a parsed serialized origin (scheme "://" host [":" port]).
// Port is "" for the scheme's default port.
type origin struct {
	scheme, host, port string
}

// parseOrigin splits an Origin header value without allocating. It accepts
// only http and https origins with a non-empty host and a numeric port.
func parseOrigin(s string) (origin, bool) {
	i := strings.Index(s, "://")
	if i <= 0 {
		return origin{}, false
	}
	o := origin{scheme: s[:i]}
	if !strings.EqualFold(o.scheme, "http") && !strings.EqualFold(o.scheme, "https") {
		return origin{}, false
	}
	rest := s[i+3:]
	o.host = rest
	if j := strings.LastIndexByte(rest, ':'); j >= 0 && !strings.Contains(rest[j:], "]") {
		o.host, o.port = rest[:j], rest[j+1:]
		if o.port == "" || len(o.port) > 5 || !allDigits(o.port) {
			return origin{}, false
		}
	}
	if o.host == "" || !validHost(o.host) {
		return origin{}, false
	}
	if o.port == defaultPort(o.scheme) {
		o.port = ""
	}
	return o, true
}

func defaultPort(scheme string) string {
	if len(scheme) == 5 { // https, in any case
		return "443"
	}
	return "80"
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// validHost accepts a DNS name, an IPv4 address or a bracketed IPv6
// literal: nothing that could smuggle a path, user info or whitespace.
func validHost(h string) bool {
	if h[0] == '[' {
		if h[len(h)-1] != ']' {
			return false
		}
		for i := 1; i < len(h)-1; i++ {
			c := h[i]
			if !(isAlnum(c) || c == ':' || c == '.') {
				return false
			}
		}
		return len(h) > 2
	}
	for i := 0; i < len(h); i++ {
		c := h[i]
		if !(isAlnum(c) || c == '-' || c == '.') {
			return false
		}
	}
	return true
}

func isAlnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

// validLabels reports whether s is one or more non-empty DNS labels
// separated by dots (the part a wildcard stands for).
func validLabels(s string) bool {
	if s == "" {
		return false
	}
	label := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '.':
			if label == 0 {
				return false
			}
			label = 0
		case isAlnum(c) || c == '-':
			label++
		default:
			return false
		}
	}
	return label > 0
}

// canonical is o as lower-case scheme://host[:port].
func (o origin) canonical() string {
	s := strings.ToLower(o.scheme) + "://" + strings.ToLower(o.host)
	if o.port != "" {
		s += ":" + o.port
	}
	return s
}

// wildcard is a configured "scheme://*.suffix[:port]" origin; suffix keeps
// its leading dot.
type wildcard struct {
	scheme, suffix, port string
}

func (w wildcard) match(o origin) bool {
	if !strings.EqualFold(o.scheme, w.scheme) || o.port != w.port {
		return false
	}
	n := len(o.host) - len(w.suffix)
	if n <= 0 || !strings.EqualFold(o.host[n:], w.suffix) {
		return false
	}
	return validLabels(o.host[:n])
}

// origins is the compiled origins list.
type origins struct {
	any   bool
	exact map[string]struct{} // canonical forms
	wild  []wildcard
}

func compileOrigins(list []string) (origins, error) {
	os := origins{exact: map[string]struct{}{}}
	for _, raw := range list {
		if raw == "*" {
			os.any = true
			continue
		}
		wild := strings.Contains(raw, "://*.")
		u, err := url.Parse(strings.Replace(raw, "://*.", "://wildcard.", 1))
		if err != nil || u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || u.Opaque != "" {
			return origins{}, fmt.Errorf("cors: invalid origin %q: want scheme://host[:port]", raw)
		}
		o, ok := parseOrigin(u.Scheme + "://" + u.Host)
		if !ok {
			return origins{}, fmt.Errorf("cors: invalid origin %q: want http(s)://host[:port]", raw)
		}
		if wild {
			suffix := strings.ToLower(strings.TrimPrefix(o.host, "wildcard"))
			if !validLabels(suffix[1:]) {
				return origins{}, fmt.Errorf("cors: invalid wildcard origin %q", raw)
			}
			os.wild = append(os.wild, wildcard{scheme: strings.ToLower(o.scheme), suffix: suffix, port: o.port})
			continue
		}
		os.exact[o.canonical()] = struct{}{}
	}
	return os, nil
}

// allowed reports whether the Origin header value s is allowed. The common
// case (a browser's canonical, lower-case origin listed exactly) is one map
// lookup and no allocation.
func (os *origins) allowed(s string) bool {
	if os.any {
		return true
	}
	if _, ok := os.exact[s]; ok {
		return true
	}
	o, ok := parseOrigin(s)
	if !ok {
		return false
	}
	for _, w := range os.wild {
		if w.match(o) {
			return true
		}
	}
	if len(os.exact) > 0 && needsCanon(s, o) {
		_, ok := os.exact[o.canonical()]
		return ok
	}
	return false
}

// needsCanon: s is not already in canonical form (upper case, or a
// default port written out), so the map lookup of s proved nothing.
func needsCanon(s string, o origin) bool {
	if o.port == "" && strings.LastIndexByte(s, ':') > len(o.scheme) && !strings.HasSuffix(s, "]") {
		return true
	}
	for i := 0; i < len(s); i++ {
		if s[i] >= 'A' && s[i] <= 'Z' {
			return true
		}
	}
	return false
}
