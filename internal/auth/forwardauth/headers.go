package forwardauth

import (
	"net/http"
	"net/textproto"
	"strings"
)

// hopByHop are the headers of one connection (RFC 9110 §7.6.1), plus the
// body's framing: neither the service's request nor the client's relayed
// answer may carry them.
var hopByHop = map[string]bool{
	"Connection":          true,
	"Keep-Alive":          true,
	"Proxy-Connection":    true,
	"Proxy-Authenticate":  true,
	"Proxy-Authorization": true,
	"Te":                  true,
	"Trailer":             true,
	"Transfer-Encoding":   true,
	"Upgrade":             true,
	"Content-Length":      true,
	"Expect":              true,
	"Http2-Settings":      true,
}

// forwardHeaders copies the request headers for the service: everything
// but hop-by-hop headers and those Connection names. No body is sent, so
// no body framing either.
func forwardHeaders(in http.Header) http.Header {
	out := make(http.Header, len(in)+5)
	named := connectionNamed(in)
	for k, vs := range in {
		if hopByHop[k] || named[k] {
			continue
		}
		out[k] = append([]string(nil), vs...)
	}
	out.Del("Content-Type")
	return out
}

// relayHeaders copies a deny answer's headers for the client. Content-
// Length is recomputed when the body is written.
func relayHeaders(in http.Header) http.Header {
	out := make(http.Header, len(in))
	named := connectionNamed(in)
	for k, vs := range in {
		if hopByHop[k] || named[k] {
			continue
		}
		out[k] = append([]string(nil), vs...)
	}
	return out
}

// connectionNamed is the set of headers a Connection header names.
func connectionNamed(h http.Header) map[string]bool {
	vs := h["Connection"]
	if len(vs) == 0 {
		return nil
	}
	named := map[string]bool{}
	for _, v := range vs {
		for f := range strings.SplitSeq(v, ",") {
			if f = strings.TrimSpace(f); f != "" {
				named[textproto.CanonicalMIMEHeaderKey(f)] = true
			}
		}
	}
	return named
}
