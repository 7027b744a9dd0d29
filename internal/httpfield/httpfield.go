// Package httpfield holds what the gateway's own HTTP/1.x parsers (the
// plain listeners' server and the upstream client) share about field
// names.
package httpfield

import "golang.org/x/net/http/httpguts"

// CanonicalizeName rewrites a field name in place as
// textproto.CanonicalMIMEHeaderKey would (upper case first and after each
// hyphen, lower case elsewhere), reporting false for an empty name or one
// with a byte that is not a token character.
func CanonicalizeName(name []byte) bool {
	if len(name) == 0 {
		return false
	}
	upper := true
	for i, c := range name {
		if !httpguts.IsTokenRune(rune(c)) {
			return false
		}
		if upper && 'a' <= c && c <= 'z' {
			c -= 'a' - 'A'
		} else if !upper && 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		name[i] = c
		upper = c == '-'
	}
	return true
}
