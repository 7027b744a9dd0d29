package gateway

import (
	"crypto/rand"
	"encoding/hex"
	"strconv"
	"sync/atomic"
	"unsafe"
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
// of at most 128 characters of [A-Za-z0-9._:-], otherwise a new id; and
// the id as a header value (a clipped one-element slice, shared: callers
// replace it, never write into it).
func (g *requestIDs) fromRequest(vals []string) (string, []string) {
	if len(vals) == 1 && validRequestID(vals[0]) {
		return vals[0], vals[:1:1]
	}
	// One allocation holds the id's bytes and its header value. The
	// bytes are never written again once the string views them.
	a := &generatedID{}
	b := append(a.buf[:0], g.prefix...)
	b = strconv.AppendUint(b, g.n.Add(1), 36)
	id := unsafe.String(unsafe.SliceData(b), len(b))
	a.val[0] = id
	return id, a.val[:1:1]
}

// generatedID backs a generated id: 13 bytes of prefix and at most 13
// base-36 digits of the counter fit buf (a longer one would move to the
// heap on its own, correct if not as cheap).
type generatedID struct {
	val [1]string
	buf [32]byte
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
