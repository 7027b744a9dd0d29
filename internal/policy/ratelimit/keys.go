package ratelimit

import (
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/netip"
	"strconv"
	"unsafe"

	"github.com/portunus-gw/portunus/internal/pipeline"
)

// Keys look like
//
//	rl:<len(route)>:<route>:<len(consumer)>:<consumer>:<limit>:<value>
//
// where consumer is "" except for a consumer's override, and value is
// "i:<address>" (ip, and consumer/header fallbacks), "c:<consumer>",
// "r" (route) or "h:<hex>" (header). Route and consumer names are length
// prefixed, so no pair of names can produce another pair's key; limit
// names are unique within a set. The store adds its own prefix (Redis:
// store.redis.key_prefix).

// keyPrefix is the part of a limit's keys that is fixed at compile time.
func keyPrefix(route, consumer, name string) string {
	return "rl:" + strconv.Itoa(len(route)) + ":" + route + ":" +
		strconv.Itoa(len(consumer)) + ":" + consumer + ":" + name + ":"
}

// headerHashBytes is how much of the SHA-256 of a header value is kept:
// 128 bits, so a key stays short whatever the client sends and two
// values meet in one bucket only by a SHA-256 collision on 128 bits.
const headerHashBytes = 16

// appendKey appends the request's key for lm to buf.
func (lm *limit) appendKey(buf []byte, r *http.Request, s *pipeline.State) []byte {
	buf = append(buf, lm.prefix...)
	switch lm.by {
	case byRoute:
		return append(buf, 'r')
	case byConsumer:
		if s.Consumer != "" {
			buf = append(buf, "c:"...)
			return append(buf, s.Consumer...)
		}
	case byHeader:
		if v := r.Header[lm.header]; len(v) > 0 {
			// Hashed where it lies: Sum256 only reads its input, and a
			// []byte copy of a long value would allocate.
			sum := sha256.Sum256(unsafe.Slice(unsafe.StringData(v[0]), len(v[0])))
			buf = append(buf, "h:"...)
			return hex.AppendEncode(buf, sum[:headerHashBytes])
		}
	}
	return appendClientKey(buf, s.ClientIP)
}

// appendClientKey appends "i:" and the client address; an IPv6 address is
// cut to its /64, the block one host or customer usually holds.
func appendClientKey(buf []byte, ip netip.Addr) []byte {
	buf = append(buf, "i:"...)
	if !ip.IsValid() {
		return append(buf, "unknown"...)
	}
	ip = ip.Unmap()
	if ip.Is6() {
		p, _ := ip.WithZone("").Prefix(64)
		return p.AppendTo(buf)
	}
	return ip.AppendTo(buf)
}
