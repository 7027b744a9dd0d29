package ratelimit

import (
	"net/http"
	"strconv"
	"time"
	"unsafe"

	"github.com/portunus-gw/portunus/internal/store"
)

// headerAlloc holds the four header values and the bytes they view: a
// typical RateLimit field ("name";r=N;t=N for one or two limits) and the
// numbers fit in buf.
type headerAlloc struct {
	vals [4]string
	buf  [160]byte
}

// restHeaders are a set's header values for the request that finds every
// bucket at rest (full): each limit reports its burst less one remaining
// and one emission interval to reset. That is what a limit far from being
// reached reports on almost every request, so those requests share these
// values instead of formatting and allocating their own.
type restHeaders struct {
	remaining []int   // per limit, config order
	reset     []int64 // per limit: whole seconds, as resetSeconds
	vals      []string
}

// newRestHeaders formats set's values for buckets at rest. The store's
// GCRA (store/gcra.go) gives, for a full bucket taking one: remaining
// burst-1, reset after one interval Period/Rate (at least 1ns).
func newRestHeaders(set *limitSet) *restHeaders {
	rh := &restHeaders{remaining: make([]int, len(set.limits)), reset: make([]int64, len(set.limits))}
	decs := make([]decision, len(set.limits))
	for i := range set.limits {
		sl := set.limits[i].sl
		burst := sl.Burst
		if burst == 0 {
			burst = sl.Rate
		}
		interval := sl.Period / time.Duration(sl.Rate)
		if interval <= 0 {
			interval = 1
		}
		decs[i] = decision{known: true, d: store.Decision{Allowed: true, Limit: burst, Remaining: burst - 1, ResetAfter: interval}}
		rh.remaining[i] = burst - 1
		rh.reset[i] = resetSeconds(&decs[i])
	}
	rh.vals = headerValues(set, decs, -1)
	return rh
}

// matches reports whether decs (none refused) give exactly rh's values.
func (rh *restHeaders) matches(decs []decision) bool {
	if len(decs) != len(rh.remaining) {
		return false
	}
	for i := range decs {
		dc := &decs[i]
		if !dc.known || dc.d.Remaining != rh.remaining[i] || resetSeconds(dc) != rh.reset[i] {
			return false
		}
	}
	return true
}

// writeHeaders sets RateLimit-Policy, RateLimit and the RateLimit-Limit,
// -Remaining and -Reset trio for the limit closest to refusing (the
// refusing one when refused; else the fewest remaining, ties to the
// longest reset).
// t and RateLimit-Reset are the seconds until the bucket is full again.
//
// The values are shared, never written after they are set (slices capped
// at their length, as RateLimit-Policy's): an allowed request whose
// buckets were all at rest allocates nothing; any other allocates once.
func writeHeaders(h http.Header, set *limitSet, decs []decision, refused int) {
	h[hdrPolicy] = set.policy
	vals := set.rest.vals
	if refused >= 0 || !set.rest.matches(decs) {
		vals = headerValues(set, decs, refused)
		if vals == nil {
			return
		}
	}
	h[hdrRateLimit] = vals[0:1:1]
	h[hdrLimit] = vals[1:2:2]
	h[hdrRemaining] = vals[2:3:3]
	h[hdrReset] = vals[3:4:4]
}

// headerValues formats the RateLimit, RateLimit-Limit, -Remaining and
// -Reset values, in that order, in one allocation; nil when the store
// answered for no limit.
func headerValues(set *limitSet, decs []decision, refused int) []string {
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
		return nil
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
	return vals
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
