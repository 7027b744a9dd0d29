package h1server

import (
	"bytes"
	"net/http"
	"net/textproto"
	"net/url"
	"strings"

	"github.com/portunus-gw/portunus/internal/httpfield"
	"golang.org/x/net/http/httpguts"
)

// parseHead is the fast path of reading a request head: the common,
// plainly well-formed request, whole in the read buffer, read in place
// with three allocations (the head's text, the field values' backing
// array and the header map) instead of http.ReadRequest's nine or so.
//
// It takes only what it can read exactly as http.ReadRequest would, and
// says no (ok false, nothing consumed or changed) to everything else,
// which http.ReadRequest then reads — with its errors:
//
//   - the whole head is in head (the read buffer), up to its empty
//     line, every line ending in CRLF (no bare LF), no obs-fold;
//   - request line: a token method other than CONNECT, an origin-form
//     target whose path needs no escaping as url.URL.Path (letters,
//     digits and -._~$&+,/:;=@; no %) and whose query is visible ASCII,
//     HTTP/1.1 or HTTP/1.0;
//   - fields: token names, values of visible ASCII, SP, HTAB and
//     obs-text (what httpguts accepts); at most one Host; no
//     Transfer-Encoding, Trailer or Pragma (which ReadRequest rewrites);
//     Content-Length absent, or once and a plain "0" (a body is left to
//     ReadRequest's reader).
//
// The differential fuzz test holds the two to the same result on every
// head the fast path takes. On success req's fields are set as
// ReadRequest sets them (its URL pointing at u), the names of the fields
// in head are rewritten to canonical case, and n is the head's length.
// The strings share one allocation: a handler that keeps one value keeps
// the head's copy (at most the 4 KiB buffer) alive with it.
func parseHead(head []byte, req *http.Request, u *url.URL) (n int, ok bool) {
	end, fields, hosts, ok := scanHead(head)
	if !ok {
		return 0, false
	}
	// Accepted: from here on nothing can fail. Field names take their
	// canonical case in place (the bytes are consumed afterwards), so
	// that every string is a piece of one copy of the head.
	p := head[:end]
	line := indexCRLF(p)
	for i := line + 2; i < len(p); {
		j := i + indexCRLF(p[i:])
		httpfield.CanonicalizeName(p[i : i+bytes.IndexByte(p[i:j], ':')]) // a token: scanHead checked
		i = j + 2
	}
	s := string(p)

	sp1 := strings.IndexByte(s, ' ')
	sp2 := sp1 + 1 + strings.IndexByte(s[sp1+1:line], ' ')
	method, target := s[:sp1], s[sp1+1:sp2]
	req.Method = knownMethod(method)
	req.RequestURI = target
	*u = url.URL{}
	if q := strings.IndexByte(target, '?'); q < 0 {
		u.Path = target
	} else {
		u.Path = target[:q]
		if q == len(target)-1 {
			u.ForceQuery = true
		} else {
			u.RawQuery = target[q+1:]
		}
	}
	req.URL = u
	if s[line-1] == '1' {
		req.Proto, req.ProtoMajor, req.ProtoMinor = "HTTP/1.1", 1, 1
	} else {
		req.Proto, req.ProtoMajor, req.ProtoMinor = "HTTP/1.0", 1, 0
	}

	// ReadRequest moves the Host field to req.Host: it never enters
	// the map (scanHead allows one at most).
	h := make(http.Header, fields-hosts)
	vals := make([]string, fields-hosts)
	k := 0
	for i := line + 2; i < len(s); {
		j := i + indexCRLF(p[i:])
		colon := i + strings.IndexByte(s[i:j], ':')
		name := s[i:colon]
		v := textproto.TrimString(s[colon+1 : j]) // SP and HTAB: the line has no CR or LF
		i = j + 2
		if name == "Host" {
			req.Host = v
			continue
		}
		if vv, dup := h[name]; dup {
			h[name] = append(vv, v)
			continue
		}
		vals[k] = v
		h[name] = vals[k : k+1 : k+1]
		k++
	}
	req.Header = h
	conn := h["Connection"]
	closing := httpguts.HeaderValuesContainsToken(conn, "close")
	if req.ProtoMinor == 0 {
		closing = closing || !httpguts.HeaderValuesContainsToken(conn, "keep-alive")
	}
	req.Close = closing
	req.Body = http.NoBody
	return end + 2, true
}

// scanHead checks a head for parseHead without changing it: end is the
// offset of its last CRLF (the empty line's), fields its field lines,
// hosts its Host fields (0 or 1).
func scanHead(head []byte) (end, fields, hosts int, ok bool) {
	line := indexCRLF(head)
	if line <= 0 || !requestLine(head[:line]) {
		return 0, 0, 0, false
	}
	lengths := 0
	i := line + 2
	for {
		if i+2 > len(head) {
			return 0, 0, 0, false // no empty line in the buffer
		}
		j := indexCRLF(head[i:])
		if j < 0 {
			return 0, 0, 0, false
		}
		if j == 0 {
			return i, fields, hosts, true
		}
		f := head[i : i+j]
		colon := 0
		for colon < len(f) && f[colon] != ':' {
			if !httpguts.IsTokenRune(rune(f[colon])) {
				return 0, 0, 0, false // also a leading SP/HTAB: obs-fold
			}
			colon++
		}
		if colon == 0 || colon == len(f) {
			return 0, 0, 0, false
		}
		for _, b := range f[colon+1:] {
			if !fieldValueByte(b) {
				return 0, 0, 0, false
			}
		}
		switch {
		case nameIs(f[:colon], "host"):
			hosts++
		case nameIs(f[:colon], "content-length"):
			lengths++
			if string(textproto.TrimBytes(f[colon+1:])) != "0" {
				return 0, 0, 0, false
			}
		case nameIs(f[:colon], "transfer-encoding"), nameIs(f[:colon], "trailer"), nameIs(f[:colon], "pragma"):
			return 0, 0, 0, false
		}
		if hosts > 1 || lengths > 1 {
			return 0, 0, 0, false
		}
		fields++
		i += j + 2
	}
}

// requestLine checks "METHOD SP /target SP HTTP/1.x" for parseHead.
func requestLine(l []byte) bool {
	sp := 0
	for sp < len(l) && l[sp] != ' ' {
		if !httpguts.IsTokenRune(rune(l[sp])) {
			return false
		}
		sp++
	}
	if sp == 0 || sp == len(l) || string(l[:sp]) == http.MethodConnect {
		return false
	}
	rest := l[sp+1:]
	if len(rest) < len(" HTTP/1.1")+1 || rest[0] != '/' {
		return false
	}
	proto := rest[len(rest)-len(" HTTP/1.1"):]
	if string(proto) != " HTTP/1.1" && string(proto) != " HTTP/1.0" {
		return false
	}
	target := rest[:len(rest)-len(proto)]
	q := len(target)
	for i, b := range target {
		if b == '?' {
			q = i
			break
		}
		if !pathByte(b) {
			return false
		}
	}
	for _, b := range target[min(q+1, len(target)):] {
		if b <= ' ' || b >= 0x7f {
			return false
		}
	}
	return true
}

// pathByte: the bytes url.URL keeps in Path unchanged, with no RawPath
// (url.shouldEscape in path mode says no), and not %.
func pathByte(b byte) bool {
	switch {
	case 'a' <= b && b <= 'z', 'A' <= b && b <= 'Z', '0' <= b && b <= '9':
		return true
	}
	switch b {
	case '-', '_', '.', '~', '$', '&', '+', ',', '/', ':', ';', '=', '@':
		return true
	}
	return false
}

// fieldValueByte: what httpguts.ValidHeaderFieldValue accepts in a
// value (HTAB, SP, visible ASCII, obs-text).
func fieldValueByte(b byte) bool {
	return b == '\t' || (b >= ' ' && b != 0x7f)
}

// nameIs compares a field name with a lower-case name, ignoring case.
func nameIs(name []byte, lower string) bool {
	if len(name) != len(lower) {
		return false
	}
	for i, b := range name {
		if b|0x20 != lower[i] {
			return false
		}
	}
	return true
}

// knownMethods are the methods whose constant knownMethod returns.
var knownMethods = [...]string{
	http.MethodGet, http.MethodPost, http.MethodHead, http.MethodPut,
	http.MethodDelete, http.MethodOptions, http.MethodPatch,
}

// knownMethod returns the constant for a common method (its string
// outlives the head's copy for free), else m.
func knownMethod(m string) string {
	for _, k := range knownMethods {
		if m == k {
			return k
		}
	}
	return m
}

// indexCRLF is the offset of the CRLF ending b's first line, or -1
// when b holds no whole line or the line ends in a bare LF. A CR alone
// inside the line is left to the callers' byte checks, which refuse it.
func indexCRLF(b []byte) int {
	i := bytes.IndexByte(b, '\n')
	if i < 1 || b[i-1] != '\r' {
		return -1
	}
	return i - 1
}
