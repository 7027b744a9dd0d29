package tracing

import (
	"encoding/binary"
	"math/rand/v2"

	"go.opentelemetry.io/otel/trace"
)

// parseTraceparent reads a W3C traceparent value the way the OpenTelemetry
// TraceContext propagator does (so that a header this accepts is one the
// propagator extracts): version 00..fe in lower-case hex; for version 00
// four fields (a trailing "-" tolerated) and no reserved flag bits; for later versions extra
// fields after the flags are ignored; trace and parent ids not all zero.
// It does not allocate.
func parseTraceparent(h string) (tid trace.TraceID, sid trace.SpanID, flags byte, ok bool) {
	// version "-" trace-id "-" parent-id "-" flags [ "-" ... ]: every
	// field has a fixed width, so the separators have fixed places.
	if len(h) < 55 || h[2] != '-' || h[35] != '-' || h[52] != '-' || (len(h) > 55 && h[55] != '-') {
		return tid, sid, 0, false
	}
	var ver, fl [1]byte
	if !decodeHex(ver[:], h[0:2]) || ver[0] == 0xff || !decodeHex(tid[:], h[3:35]) ||
		!decodeHex(sid[:], h[36:52]) || !decodeHex(fl[:], h[53:55]) {
		return tid, sid, 0, false
	}
	// Version 00 has no further fields (a lone trailing '-' passes, as
	// the propagator lets it) and no reserved flag bits.
	if ver[0] == 0 && (len(h) > 56 || fl[0] > 3) {
		return tid, sid, 0, false
	}
	if !tid.IsValid() || !sid.IsValid() {
		return tid, sid, 0, false
	}
	return tid, sid, fl[0] & 3, true
}

// decodeHex decodes lower-case hex s into dst (len(s) == 2*len(dst)).
func decodeHex(dst []byte, s string) bool {
	for i := range dst {
		hi, lo := unhex(s[2*i]), unhex(s[2*i+1])
		if hi > 15 || lo > 15 {
			return false
		}
		dst[i] = hi<<4 | lo
	}
	return true
}

func unhex(c byte) byte {
	switch {
	case c >= '0' && c <= '9':
		return c - '0'
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10
	}
	return 0xff
}

const hexDigits = "0123456789abcdef"

// formatTraceparent writes a version-00 traceparent.
func formatTraceparent(tid trace.TraceID, sid trace.SpanID, flags byte) string {
	var b [55]byte
	b[0], b[1], b[2] = '0', '0', '-'
	n := 3
	for _, c := range tid {
		b[n], b[n+1] = hexDigits[c>>4], hexDigits[c&15]
		n += 2
	}
	b[n] = '-'
	n++
	for _, c := range sid {
		b[n], b[n+1] = hexDigits[c>>4], hexDigits[c&15]
		n += 2
	}
	b[n], b[n+1], b[n+2] = '-', hexDigits[flags>>4], hexDigits[flags&15]
	return string(b[:])
}

// newTraceID returns a random, valid trace id. math/rand/v2's global
// functions draw from a per-thread generator: no lock, no allocation (the
// SDK's own generator serializes on a mutex). Trace ids need to be unique
// and uniformly distributed for ratio sampling, not secret.
func newTraceID() trace.TraceID {
	var t trace.TraceID
	for !t.IsValid() {
		binary.BigEndian.PutUint64(t[:8], rand.Uint64())
		binary.BigEndian.PutUint64(t[8:], rand.Uint64())
	}
	return t
}

func newSpanID() trace.SpanID {
	var s trace.SpanID
	for !s.IsValid() {
		binary.BigEndian.PutUint64(s[:], rand.Uint64())
	}
	return s
}
