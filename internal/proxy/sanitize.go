package proxy

import (
	"net/http"
	"strings"
)

// hopByHop are the RFC 9110 §7.6.1 connection-specific fields (plus the
// legacy ones still seen in the wild). They describe one connection and
// are never forwarded.
var hopByHop = [...]string{
	"Connection",
	"Keep-Alive",
	"Proxy-Connection",
	"Proxy-Authenticate",
	"Proxy-Authorization",
	"Te",
	"Trailer",
	"Transfer-Encoding",
	"Upgrade",
	// HTTP2-Settings belongs to an h2c upgrade (RFC 7540 §3.2), which
	// the gateway never forwards; a client need not name it in
	// Connection for it to be meaningless upstream.
	"Http2-Settings",
}

// Static header values, shared by every request (never written in place).
var (
	valTrailers  = []string{"trailers"}
	valUpgrade   = []string{"Upgrade"}
	valWebSocket = []string{"websocket"}
)

// spoof classifies the inbound headers a client must not control.
type spoof uint8

const (
	spoofNone spoof = iota
	// spoofAlways: identity and method-override headers, X-Real-IP: always
	// removed (the gateway itself decides these).
	spoofAlways
	// spoofForwarded: Forwarded and X-Forwarded-*: removed unless the
	// peer is a trusted proxy.
	spoofForwarded
	// spoofTwin: the '_' spelling of a header the gateway sets itself
	// (X_Forwarded_For, X_Request_Id): always removed, because CGI-style
	// upstreams read '_' and '-' as the same name, and a trusted proxy
	// never sends these.
	spoofTwin
)

// spoofNames are lower-case with '-' for '_'.
var spoofNames = map[string]spoof{
	"x-consumer-name":        spoofAlways,
	"x-consumer-roles":       spoofAlways,
	"x-consumer-id":          spoofAlways,
	"x-real-ip":              spoofAlways,
	"x-http-method-override": spoofAlways,
	"x-http-method":          spoofAlways,
	"x-method-override":      spoofAlways,
	"forwarded":              spoofForwarded,
	"x-forwarded-for":        spoofForwarded,
	"x-forwarded-proto":      spoofForwarded,
	"x-forwarded-host":       spoofForwarded,
	"x-forwarded-port":       spoofForwarded,
	"x-forwarded-prefix":     spoofForwarded,
	"x-request-id":           spoofTwin,
}

const authenticatedPrefix = "x-authenticated-"

// maxSpoofName is the longest name worth normalizing: longer keys cannot
// be in spoofNames, though they may still carry the X-Authenticated-
// prefix, which is checked separately.
const maxSpoofName = 32

// SanitizeInbound removes what a client must not be able to send upstream.
// The gateway calls it once per request, before routing. peerTrusted says
// the TCP peer is one of trusted_proxies.
//
// Removed: hop-by-hop headers and every header named in Connection, except
// a WebSocket upgrade (Upgrade: websocket with Connection: upgrade), which
// is kept as exactly "Connection: Upgrade" + "Upgrade: websocket" so the
// proxy can forward it; "TE: trailers" is kept (gRPC needs it); identity
// headers (X-Consumer-Name, -Roles, -Id, X-Authenticated-*), X-Real-IP and
// method-override headers, also in their '_' spelling; Forwarded and
// X-Forwarded-For/-Proto/-Host/-Port/-Prefix unless peerTrusted.
func SanitizeInbound(h http.Header, peerTrusted bool) {
	ws := isWebSocketRequest(h)
	te := hasToken(h["Te"], "trailers")
	removeConnectionHeaders(h)
	// A small header (the usual case) loses its hop-by-hop fields in
	// the walk below, by name; a large one by one deletion per name.
	small := len(h) <= len(hopByHop)
	if !small {
		for _, k := range hopByHop {
			delete(h, k)
		}
	}
	for k := range h {
		if small && isHopByHop(k) {
			delete(h, k)
			continue
		}
		if len(k) < len("forwarded") {
			continue
		}
		switch k[0] {
		case 'x', 'X', 'f', 'F':
		default:
			continue
		}
		switch classify(k) {
		case spoofAlways, spoofTwin:
			delete(h, k)
		case spoofForwarded:
			if !peerTrusted {
				delete(h, k)
			}
		}
	}
	if te {
		h["Te"] = valTrailers
	}
	if ws {
		h["Connection"] = valUpgrade
		h["Upgrade"] = valWebSocket
	}
}

// classify returns what kind of spoofable header k is, comparing
// case-insensitively with '_' read as '-'. Allocation-free: the key is
// normalized into a stack buffer.
func classify(k string) spoof {
	var buf [maxSpoofName]byte
	n := min(len(k), len(buf))
	twin := false
	for i := 0; i < n; i++ {
		c := k[i]
		switch {
		case 'A' <= c && c <= 'Z':
			c += 'a' - 'A'
		case c == '_':
			c = '-'
			twin = true
		}
		buf[i] = c
	}
	if n >= len(authenticatedPrefix) && string(buf[:len(authenticatedPrefix)]) == authenticatedPrefix {
		return spoofAlways
	}
	if len(k) > len(buf) {
		return spoofNone
	}
	kind := spoofNames[string(buf[:n])]
	if kind == spoofTwin && !twin {
		return spoofNone // the real X-Request-Id: the gateway reads it
	}
	if kind == spoofForwarded && twin {
		return spoofTwin
	}
	return kind
}

// removeConnectionHeaders deletes the headers named in Connection (RFC
// 9110 §7.6.1). The Connection header itself is deleted by the caller.
func removeConnectionHeaders(h http.Header) {
	for _, v := range h["Connection"] {
		for v != "" {
			var tok string
			tok, v, _ = strings.Cut(v, ",")
			tok = strings.TrimSpace(tok)
			if tok == "" || strings.EqualFold(tok, "close") || strings.EqualFold(tok, "keep-alive") {
				// The common tokens: not header names, or (Keep-Alive) a
				// hop-by-hop header removed anyway.
				continue
			}
			// Deleting by canonical key first avoids allocating in the
			// common case; the loop catches non-canonical spellings.
			if _, ok := h[tok]; ok {
				delete(h, tok)
				continue
			}
			for k := range h {
				if strings.EqualFold(k, tok) {
					delete(h, k)
				}
			}
		}
	}
}

// hasToken reports whether a comma-separated header holds token
// (case-insensitive).
func hasToken(values []string, token string) bool {
	for _, v := range values {
		for v != "" {
			var tok string
			tok, v, _ = strings.Cut(v, ",")
			if tok = strings.TrimSpace(tok); strings.EqualFold(tok, token) {
				return true
			}
			// "TE: trailers;q=1" style parameters.
			if i := strings.IndexByte(tok, ';'); i >= 0 && strings.EqualFold(strings.TrimSpace(tok[:i]), token) {
				return true
			}
		}
	}
	return false
}

// isWebSocketRequest reports a WebSocket upgrade request.
func isWebSocketRequest(h http.Header) bool {
	return hasToken(h["Connection"], "upgrade") && hasToken(h["Upgrade"], "websocket")
}

// removeHopByHop strips connection-specific headers from a response. A
// small header (the usual case) is walked once, which costs less than
// one map deletion per hop-by-hop name.
func removeHopByHop(h http.Header) {
	removeConnectionHeaders(h)
	if len(h) > len(hopByHop) {
		for _, k := range hopByHop {
			delete(h, k)
		}
		return
	}
	for k := range h {
		if isHopByHop(k) {
			delete(h, k)
		}
	}
}

// isHopByHop reports whether k is one of hopByHop.
func isHopByHop(k string) bool {
	switch k {
	case "Connection", "Keep-Alive", "Proxy-Connection", "Proxy-Authenticate", "Proxy-Authorization",
		"Te", "Trailer", "Transfer-Encoding", "Upgrade", "Http2-Settings":
		return true
	}
	return false
}
