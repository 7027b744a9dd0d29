package gateway

import (
	"crypto/rand"
	"encoding/hex"
	"strconv"
	"sync/atomic"
)

// requestIDs makes request ids: a random per-process prefix and a counter.
// Ids need to be unique, not secret, so no randomness is spent per request.
type requestIDs struct {
	prefix string
	n      atomic.Uint64
}

func newRequestIDs() *requestIDs {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return &requestIDs{prefix: hex.EncodeToString(b[:]) + "-"}
}

// maxRequestIDLen bounds a client-sent X-Request-Id we are willing to keep.
const maxRequestIDLen = 128

// fromRequest returns the client's X-Request-Id when it is a single value
// of at most 128 characters of [A-Za-z0-9._:-], otherwise a new id.
func (g *requestIDs) fromRequest(vals []string, buf []byte) string {
	if len(vals) == 1 && validRequestID(vals[0]) {
		return vals[0]
	}
	buf = append(buf, g.prefix...)
	buf = strconv.AppendUint(buf, g.n.Add(1), 36)
	return string(buf)
}

func validRequestID(v string) bool {
	if v == "" || len(v) > maxRequestIDLen {
		return false
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case c == '.' || c == '_' || c == ':' || c == '-':
		default:
			return false
		}
	}
	return true
}
