package hygiene

import (
	"encoding/base64"
	"net/http"
	"strings"
)

// CheckUpgrade validates a WebSocket opening handshake (RFC 6455 §4.1).
// It returns "" when r is no WebSocket upgrade (Connection: upgrade with
// Upgrade: websocket) or a valid one, and otherwise why it is refused
// (the caller answers 400 without reaching an upstream). It must run
// before proxy.SanitizeInbound, which rewrites the upgrade headers.
//
// Other Upgrade values are not refused: SanitizeInbound removes them and
// the request is served as a plain one.
func CheckUpgrade(r *http.Request) string {
	h := r.Header
	up, conn := h["Upgrade"], h["Connection"]
	if len(up) == 0 || len(conn) == 0 || !hasToken(up, "websocket") || !hasToken(conn, "upgrade") {
		return ""
	}
	if r.ProtoMajor != 1 || r.ProtoMinor != 1 {
		return "a WebSocket upgrade must use HTTP/1.1"
	}
	if r.Method != http.MethodGet {
		return "a WebSocket upgrade must use GET"
	}
	if keys := h["Sec-Websocket-Key"]; len(keys) != 1 || !ValidWebSocketKey(keys[0]) {
		return "a WebSocket upgrade needs one Sec-WebSocket-Key of 16 base64-encoded bytes"
	}
	if v := h["Sec-Websocket-Version"]; len(v) != 1 || strings.Trim(v[0], " \t") != "13" {
		// RFC 6455 §4.4 would answer 426 with the supported version;
		// the contract asks for 400, and Sec-WebSocket-Version still
		// tells the client which one to use.
		return "a WebSocket upgrade needs Sec-WebSocket-Version: 13"
	}
	return ""
}

// ValidWebSocketKey reports whether k is the base64 (standard alphabet,
// padded) encoding of exactly 16 bytes, as RFC 6455 §4.1 requires.
func ValidWebSocketKey(k string) bool {
	k = strings.Trim(k, " \t") // header OWS
	if len(k) != 24 {
		return false
	}
	var buf [18]byte
	n, err := base64.StdEncoding.Strict().Decode(buf[:], []byte(k))
	return err == nil && n == 16
}

// hasToken reports whether a comma-separated header holds token
// (case-insensitive).
func hasToken(values []string, token string) bool {
	for _, v := range values {
		for v != "" {
			var tok string
			tok, v, _ = strings.Cut(v, ",")
			if strings.EqualFold(strings.TrimSpace(tok), token) {
				return true
			}
		}
	}
	return false
}
