// Package httpfield holds what the gateway's own HTTP/1.x parsers and
// writers (the plain listeners' server and the upstream client) share
// about header fields.
package httpfield

import (
	"bufio"

	"golang.org/x/net/http/httpguts"
)

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

// WriteLine writes the field line "name: value\r\n" to bw, with one copy
// into its buffer when the line fits (the usual case) instead of four
// writes. The caller has checked name and value.
func WriteLine(bw *bufio.Writer, name, value string) {
	if bw.Available() >= len(name)+len(value)+4 {
		b := bw.AvailableBuffer()
		b = append(b, name...)
		b = append(b, ':', ' ')
		b = append(b, value...)
		b = append(b, '\r', '\n')
		_, _ = bw.Write(b)
		return
	}
	_, _ = bw.WriteString(name)
	_, _ = bw.WriteString(": ")
	_, _ = bw.WriteString(value)
	_, _ = bw.WriteString("\r\n")
}
