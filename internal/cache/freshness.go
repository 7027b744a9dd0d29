package cache

import (
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// heuristicStatus are the statuses RFC 9110 §15.1 calls heuristically
// cacheable: stored with the route ttl when the upstream gives no
// freshness, or with explicit freshness.
var heuristicStatus = map[int]bool{
	200: true, 203: true, 204: true, 300: true, 301: true, 308: true,
	404: true, 405: true, 410: true, 414: true, 501: true,
}

// explicitOnlyStatus are stored only with explicit freshness information
// (max-age, s-maxage or Expires). 206 is never stored: the cache does not
// implement ranges.
var explicitOnlyStatus = map[int]bool{302: true, 307: true}

// hopHeaders are not stored (RFC 9111 §3.1) or are recomputed per answer.
var hopHeaders = []string{
	"Connection", "Keep-Alive", "Proxy-Connection", "Te", "Trailer",
	"Transfer-Encoding", "Upgrade", "Proxy-Authenticate", "Proxy-Authentication-Info",
	"Age", "Cache-Status", "Set-Cookie",
}

// assess decides whether an answer with status code and header h, to a
// request sent at reqTime and received at respTime, may be stored, and
// fills the freshness fields of a new Entry. ttl is the route's
// heuristic lifetime. The returned Entry has no headers or body yet.
func assess(code int, h http.Header, reqTime, respTime time.Time, ttl time.Duration) (*Entry, bool) {
	if len(h["Set-Cookie"]) > 0 {
		return nil, false
	}
	for _, v := range h["Vary"] {
		if strings.Contains(v, "*") {
			return nil, false
		}
	}
	cc := parseCacheControl(h["Cache-Control"])
	if cc.noStore || cc.private {
		return nil, false
	}
	e := &Entry{Status: code, ResponseTime: respTime}
	date, hasDate := parseHTTPDate(h.Get("Date"))
	if !hasDate {
		date = respTime
	}
	explicit := true
	switch {
	case cc.sMaxAge >= 0:
		e.Lifetime = time.Duration(cc.sMaxAge) * time.Second
	case cc.maxAge >= 0:
		e.Lifetime = time.Duration(cc.maxAge) * time.Second
	case len(h["Expires"]) > 0:
		// An invalid Expires (e.g. "0") means already expired (§5.3).
		if exp, ok := parseHTTPDate(h.Get("Expires")); ok && exp.After(date) {
			e.Lifetime = exp.Sub(date)
		}
	default:
		explicit = false
		e.Lifetime = ttl
	}
	if !heuristicStatus[code] && !(explicit && explicitOnlyStatus[code]) {
		return nil, false
	}
	if cc.noCache {
		e.Lifetime = 0
	}
	if cc.swr > 0 {
		e.SWR = time.Duration(cc.swr) * time.Second
	}
	if cc.sie > 0 {
		e.SIE = time.Duration(cc.sie) * time.Second
	}
	e.MustRevalidate = cc.mustRevalidate || cc.proxyRevalidate || cc.sMaxAge >= 0
	e.Shared = cc.public || cc.sMaxAge >= 0
	if e.MustRevalidate {
		e.SWR, e.SIE = 0, 0
	}
	// Corrected initial age (§4.2.3).
	apparent := respTime.Sub(date)
	if apparent < 0 {
		apparent = 0
	}
	var ageValue time.Duration
	if a, err := strconv.ParseInt(strings.TrimSpace(h.Get("Age")), 10, 64); err == nil && a > 0 {
		ageValue = time.Duration(min(a, maxDeltaSeconds)) * time.Second
	}
	corrected := ageValue + respTime.Sub(reqTime)
	e.InitialAge = max(apparent, corrected)
	// An answer that can never be served fresh and has no validator is
	// useless to keep.
	if e.Lifetime <= e.InitialAge && !hasValidator(h) && e.SWR == 0 && e.SIE == 0 {
		return nil, false
	}
	return e, true
}

func hasValidator(h http.Header) bool {
	return len(h["Etag"]) > 0 || len(h["Last-Modified"]) > 0
}

// keepFor is how long a store holds e: its freshness and stale windows,
// plus, when it has validators, as long again (at least a minute) so a
// stale entry can still be revalidated cheaply instead of refetched.
func (e *Entry) keepFor() time.Duration {
	d := e.Lifetime - e.InitialAge + max(e.SWR, e.SIE)
	if hasValidator(e.Header) {
		d += max(e.Lifetime, time.Minute)
	}
	return max(d, time.Second)
}

func parseHTTPDate(s string) (time.Time, bool) {
	if s == "" {
		return time.Time{}, false
	}
	t, err := http.ParseTime(s)
	return t, err == nil
}

// storedHeader copies h without hop-by-hop and per-answer fields, and
// without the names skip lists (headers outer layers set per request).
func storedHeader(h http.Header, skip map[string]bool) http.Header {
	out := make(http.Header, len(h))
	for k, vs := range h {
		if skip[k] {
			continue
		}
		// Clipped: a later append by a reader must copy, never write
		// into the stored entry shared by concurrent hits.
		out[k] = slices.Clip(append([]string(nil), vs...))
	}
	for _, k := range hopHeaders {
		delete(out, k)
	}
	// Fields named by Connection are hop-by-hop too.
	for _, v := range h["Connection"] {
		for _, f := range strings.Split(v, ",") {
			delete(out, http.CanonicalHeaderKey(strings.TrimSpace(f)))
		}
	}
	return out
}

// refresh applies a 304's header fields to a stored entry (RFC 9111
// §4.3.4): every field of the 304 replaces the stored one, except the
// framing fields that describe the (absent) 304 body. The result is
// assessed as a fresh answer with the merged fields would be: ok is false
// when it may not be stored (no-store, private, …); n is then still the
// answer to serve for this request, with the merged fields.
func (e *Entry) refresh(h http.Header, reqTime, respTime time.Time, ttl time.Duration) (n *Entry, ok bool) {
	merged := make(http.Header, len(e.Header))
	for k, vs := range e.Header {
		merged[k] = vs
	}
	for k, vs := range storedHeader(h, nil) {
		switch k {
		case "Content-Length", "Content-Encoding", "Content-Range", "Content-Type":
			continue
		}
		merged[k] = vs
	}
	n, ok = assess(e.Status, merged, reqTime, respTime, ttl)
	if !ok {
		n = &Entry{Status: e.Status, ResponseTime: respTime}
	}
	n.Header = merged
	n.Body = e.Body
	return n, ok
}
