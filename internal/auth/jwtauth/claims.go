package jwtauth

import (
	"strconv"
	"strings"
)

// maxHeaderValue bounds a claim copied to an upstream header; longer
// values are not sent.
const maxHeaderValue = 1024

// claimPath is a claim name split on dots, for nested claims such as
// realm_access.roles. A claim whose literal name contains dots is found
// too: the full name is tried first.
type claimPath struct {
	full  string
	parts []string
}

func newClaimPath(s string) claimPath {
	return claimPath{full: s, parts: strings.Split(s, ".")}
}

func (p claimPath) lookup(claims map[string]any) (any, bool) {
	if v, ok := claims[p.full]; ok {
		return v, true
	}
	if len(p.parts) < 2 {
		return nil, false
	}
	var cur any = claims
	for _, part := range p.parts {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		if cur, ok = m[part]; !ok {
			return nil, false
		}
	}
	return cur, true
}

// stringList reads a claim that is an array of strings or a
// space-separated string (the OAuth2 "scope" form). Non-string array
// items are ignored. The result is a fresh slice.
func stringList(v any) []string {
	switch t := v.(type) {
	case string:
		return strings.Fields(t)
	case []any:
		out := make([]string, 0, len(t))
		for _, item := range t {
			if s, ok := item.(string); ok && s != "" {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}

// scalarString renders a claim as a header value: strings as is, numbers
// and booleans in JSON form, arrays of those joined by commas. Objects
// and nulls give "".
func scalarString(v any) string {
	switch t := v.(type) {
	case string:
		return t
	case float64:
		return strconv.FormatFloat(t, 'f', -1, 64)
	case bool:
		return strconv.FormatBool(t)
	case []any:
		var b strings.Builder
		for _, item := range t {
			s := scalarString(item)
			if s == "" {
				continue
			}
			if _, nested := item.([]any); nested {
				continue
			}
			if b.Len() > 0 {
				b.WriteByte(',')
			}
			b.WriteString(s)
		}
		return b.String()
	}
	return ""
}

// safeHeaderValue says v may be sent as a header value: bounded, and no
// control characters (CR/LF would split headers; NUL and others are
// refused by servers).
func safeHeaderValue(v string) bool {
	if v == "" || len(v) > maxHeaderValue {
		return false
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		if (c < 0x20 && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
}
