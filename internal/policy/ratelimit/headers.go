package ratelimit

import (
	"net/http"
	"strconv"
	"unsafe"
)

// headerAlloc holds the four header values and the bytes they view: a
// typical RateLimit field ("name";r=N;t=N for one or two limits) and the
// numbers fit in buf.
type headerAlloc struct {
	vals [4]string
	buf  [160]byte
}

// writeHeaders sets RateLimit-Policy, RateLimit and the RateLimit-Limit,
// -Remaining and -Reset trio for the limit closest to refusing (the
// refusing one when refused; else the fewest remaining, ties to the
// longest reset).
// t and RateLimit-Reset are the seconds until the bucket is full again.
func writeHeaders(h http.Header, set *limitSet, decs []decision, refused int) {
	h[hdrPolicy] = set.policy
	closest := refused
	var buf [256]byte
	b := buf[:0]
	first := true
	for i := range set.limits {
		dc := &decs[i]
		if !dc.known {
			continue
		}
		if !first {
			b = append(b, ", "...)
		}
		first = false
		b = append(b, '"')
		b = append(b, set.limits[i].name...)
		b = append(b, `";r=`...)
		b = strconv.AppendInt(b, int64(dc.d.Remaining), 10)
		b = append(b, ";t="...)
		b = strconv.AppendInt(b, resetSeconds(dc), 10)
		if refused < 0 && (closest < 0 || closer(dc, &decs[closest])) {
			closest = i
		}
	}
	if closest < 0 {
		return
	}
	// One string holds RateLimit, -Remaining and -Reset; one slice the
	// four values.
	rlEnd := len(b)
	b = strconv.AppendInt(b, int64(decs[closest].d.Remaining), 10)
	remEnd := len(b)
	b = strconv.AppendInt(b, resetSeconds(&decs[closest]), 10)
	a := &headerAlloc{}
	var all string
	if len(b) <= len(a.buf) {
		// The bytes are copied once into the allocation that also holds
		// the value slice, and never written again: strings may view
		// them. One allocation per request instead of two.
		n := copy(a.buf[:], b)
		all = unsafe.String(&a.buf[0], n)
	} else {
		all = string(b)
	}
	vals := a.vals[:]
	vals[0] = all[:rlEnd]
	vals[1] = set.limits[closest].quotaStr
	vals[2] = all[rlEnd:remEnd]
	vals[3] = all[remEnd:]
	h[hdrRateLimit] = vals[0:1:1]
	h[hdrLimit] = vals[1:2:2]
	h[hdrRemaining] = vals[2:3:3]
	h[hdrReset] = vals[3:4:4]
}

// closer reports whether a is closer to refusing than b.
func closer(a, b *decision) bool {
	if a.d.Remaining != b.d.Remaining {
		return a.d.Remaining < b.d.Remaining
	}
	return a.d.ResetAfter > b.d.ResetAfter
}

// resetSeconds is the whole seconds until the bucket is full, rounded
// up; 0 when it is full.
func resetSeconds(dc *decision) int64 {
	if dc.d.ResetAfter <= 0 {
		return 0
	}
	return ceilSeconds(dc.d.ResetAfter)
}
