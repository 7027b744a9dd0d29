package cache

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/portunus-gw/portunus/internal/pipeline"
)

// recorder passes an upstream answer to the client while keeping a copy
// to store, within the per-object bound. In revalidation it holds back a
// 304 (and, within stale-if-error, a 5xx) so the cache answers instead.
type recorder struct {
	http.ResponseWriter
	p       *Policy
	r       *http.Request
	s       *pipeline.State
	fwd     *fwdStatus // nil: no Cache-Status (background refresh)
	reqTime time.Time
	// pre are the header names outer layers set before the upstream
	// answered (request id, rate-limit fields): never stored.
	pre map[string]bool

	intercept304, interceptErr bool
	intercepted                bool
	header304                  http.Header

	wrote   bool
	status  int
	storing bool
	entry   *Entry
	body    []byte
	clen    int64
	// stored are the keys finish stored the answer under.
	stored stored
}

func (p *Policy) newRecorder(w http.ResponseWriter, r *http.Request, s *pipeline.State, fwd *fwdStatus) *recorder {
	h := w.Header()
	pre := make(map[string]bool, len(h))
	for k := range h {
		pre[k] = true
	}
	return &recorder{ResponseWriter: w, p: p, r: r, s: s, fwd: fwd, reqTime: p.now(), pre: pre, clen: -1}
}

func (c *recorder) WriteHeader(code int) {
	if c.wrote {
		return
	}
	if code >= 100 && code < 200 {
		c.ResponseWriter.WriteHeader(code)
		return
	}
	c.wrote = true
	c.status = code
	h := c.ResponseWriter.Header()
	if (c.intercept304 && code == http.StatusNotModified) || (c.interceptErr && code >= 500) {
		c.intercepted = true
		// Keep the upstream's fields (for the 304 refresh) and take them
		// out of the client's answer; fields outer layers set for this
		// request stay there and are never merged into the entry.
		c.header304 = make(http.Header, len(h))
		for k, v := range h {
			if !c.pre[k] {
				c.header304[k] = v
				delete(h, k)
			}
		}
		return
	}
	if c.r.Method == http.MethodGet {
		if e, ok := assess(code, h, c.reqTime, c.p.now(), c.p.ttl); ok {
			c.clen = -1
			if v := h.Get("Content-Length"); v != "" {
				if n, err := strconv.ParseInt(v, 10, 64); err == nil {
					c.clen = n
				}
			}
			if c.clen <= c.p.maxObject {
				c.storing = true
				c.entry = e
				e.Header = storedHeader(h, c.pre)
				if c.clen > 0 {
					c.body = make([]byte, 0, c.clen)
				}
			}
		}
	}
	if c.fwd != nil {
		st := c.fwd.plain
		if c.storing {
			st = c.fwd.stored
		}
		setStatus(h, st)
	}
	c.ResponseWriter.WriteHeader(code)
}

func (c *recorder) Write(b []byte) (int, error) {
	if !c.wrote {
		c.WriteHeader(http.StatusOK)
	}
	if c.intercepted {
		return len(b), nil
	}
	if c.storing {
		if int64(len(c.body)+len(b)) > c.p.maxObject {
			// Too large after all: stop copying, keep streaming.
			c.storing, c.body, c.entry = false, nil, nil
		} else {
			c.body = append(c.body, b...)
		}
	}
	return c.ResponseWriter.Write(b)
}

// Flush passes flushes through, so streamed answers stay streamed.
func (c *recorder) Flush() {
	if c.intercepted {
		return
	}
	if !c.wrote {
		c.WriteHeader(http.StatusOK)
	}
	http.NewResponseController(c.ResponseWriter).Flush()
}

// Unwrap lets http.ResponseController reach the connection.
func (c *recorder) Unwrap() http.ResponseWriter { return c.ResponseWriter }

// finish stores the recorded answer if it is complete and storable, and
// returns the stored entry.
func (c *recorder) finish() *Entry {
	if !c.storing || c.entry == nil || c.intercepted {
		return nil
	}
	if c.clen >= 0 && int64(len(c.body)) != c.clen {
		return nil // cut short: never store a truncated body
	}
	if c.r.Context().Err() != nil {
		return nil
	}
	e := c.entry
	e.Body = c.body
	if bodyAllowed(e.Status) {
		e.Header["Content-Length"] = []string{strconv.Itoa(len(e.Body))}
	}
	c.stored = c.p.storeAnswer(c.r.Context(), c.r, c.s, e)
	return e
}

// storeAnswer stores e, the answer to r, where an answer with its fields
// belongs: under the shared key when it is public or has s-maxage, else
// (routes with auth) under the consumer's own; when it has Vary, a marker
// there and e under the variant of r's values. It returns the backend
// keys written. Fresh answers and answers refreshed by a 304 both go
// through it, so a revalidation can never keep an entry where a fresh
// answer with the same fields would not be.
func (p *Policy) storeAnswer(ctx context.Context, r *http.Request, s *pipeline.State, e *Entry) stored {
	shared, own := p.baseKeys(r, p.path(r, s), s.Consumer)
	base := own
	if e.Shared {
		base = shared
	}
	var out stored
	if names := varyNames(e.Header); len(names) > 0 {
		// The marker lives as long as the answer: same windows, and the
		// validator fields that extend keepFor.
		mh := http.Header{}
		for _, k := range []string{"Etag", "Last-Modified"} {
			if v, ok := e.Header[k]; ok {
				mh[k] = v
			}
		}
		out.marker = base.String()
		p.store(ctx, base, &Entry{Vary: names, ResponseTime: e.ResponseTime, InitialAge: e.InitialAge, Lifetime: e.Lifetime, SWR: e.SWR, SIE: e.SIE, Header: mh})
		base = variant(base, r, names)
	}
	out.entry = base.String()
	p.store(ctx, base, e)
	return out
}

// stored names the backend keys storeAnswer wrote: the entry's and its
// Vary marker's ("" when none).
type stored struct{ marker, entry string }

// has says k is one of them.
func (s stored) has(k string) bool { return k != "" && (k == s.entry || k == s.marker) }

func bodyAllowed(status int) bool {
	return status != http.StatusNoContent && status != http.StatusNotModified && status >= 200
}

// writeEntry answers from a stored entry, or 304 when the client's
// conditional matches it. age and status are the Age and Cache-Status
// field values; like the entry's own field values they are shared with
// other answers and must not be modified in place.
func (p *Policy) writeEntry(w http.ResponseWriter, r *http.Request, e *Entry, age, status []string) {
	h := w.Header()
	if e.Status == http.StatusOK && notModified(r, e) {
		for _, k := range notModifiedFields {
			if v, ok := e.Header[k]; ok {
				h[k] = v
			}
		}
		h["Age"] = age
		h["Cache-Status"] = status
		w.WriteHeader(http.StatusNotModified)
		return
	}
	for k, v := range e.Header {
		h[k] = v
	}
	h["Age"] = age
	h["Cache-Status"] = status
	w.WriteHeader(e.Status)
	if r.Method != http.MethodHead && len(e.Body) > 0 {
		_, _ = w.Write(e.Body)
	}
}

// notModifiedFields are sent with a 304 (RFC 9110 §15.4.5).
var notModifiedFields = []string{"Cache-Control", "Content-Location", "Date", "Etag", "Expires", "Vary", "Last-Modified"}

// notModified evaluates If-None-Match (weak comparison, "*"), or when it
// is absent If-Modified-Since, against e (RFC 9110 §13.2.2). Request
// headers are read by their canonical names, as the server stores them.
func notModified(r *http.Request, e *Entry) bool {
	if inm := r.Header["If-None-Match"]; len(inm) > 0 {
		etag := ""
		if v := e.Header["Etag"]; len(v) > 0 {
			etag = v[0]
		}
		for _, line := range inm {
			for t := range strings.SplitSeq(line, ",") {
				t = strings.TrimSpace(t)
				if t == "*" || (etag != "" && weakEqual(t, etag)) {
					return true
				}
			}
		}
		return false
	}
	if ims := r.Header["If-Modified-Since"]; len(ims) > 0 && ims[0] != "" {
		since, ok := parseHTTPDate(ims[0])
		lm, ok2 := parseHTTPDate(first(e.Header["Last-Modified"]))
		return ok && ok2 && !lm.After(since)
	}
	return false
}

func first(vs []string) string {
	if len(vs) == 0 {
		return ""
	}
	return vs[0]
}

// weakEqual compares entity tags ignoring the W/ prefix.
func weakEqual(a, b string) bool {
	return strings.TrimPrefix(a, "W/") == strings.TrimPrefix(b, "W/")
}

// discardWriter is the client of a background refresh: nobody.
type discardWriter struct {
	h      http.Header
	status int
}

func (d *discardWriter) Header() http.Header         { return d.h }
func (d *discardWriter) WriteHeader(code int)        { d.status = code }
func (d *discardWriter) Write(b []byte) (int, error) { return len(b), nil }

// statusWriter notes the status of an unsafe request's answer.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (s *statusWriter) WriteHeader(code int) {
	if s.status == 0 && code >= 200 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusWriter) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

func (s *statusWriter) Flush() { http.NewResponseController(s.ResponseWriter).Flush() }

func (s *statusWriter) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// ageFields holds the Age field values of the first ten minutes, so most
// hits set Age without allocating. The slices are shared and clipped:
// nobody may modify them in place, and an append copies.
var ageFields = func() [600][]string {
	var t [600][]string
	for i := range t {
		t[i] = constField(strconv.Itoa(i))
	}
	return t
}()

func ageField(age time.Duration) []string {
	sec := int64(age / time.Second)
	if sec >= 0 && sec < int64(len(ageFields)) {
		return ageFields[sec]
	}
	return []string{strconv.FormatInt(max(sec, 0), 10)}
}

// constField is a header field value shared by many answers: clipped, so
// an append copies; nobody may modify it in place.
func constField(v string) []string { return []string{v}[:1:1] }

// fwdStatus holds the Cache-Status values of one reason for forwarding a
// request, built once.
type fwdStatus struct {
	// plain is sent when the answer is not stored, stored when it is,
	// revalidated when a 304 refreshed the stored answer.
	plain, stored, revalidated []string
}

func newFwdStatus(v string) *fwdStatus {
	return &fwdStatus{
		plain:       constField(v),
		stored:      constField(v + "; stored"),
		revalidated: constField(v + "; fwd-status=304"),
	}
}

// The Cache-Status values (RFC 9211) of the common outcomes.
var (
	fwdURIMiss  = newFwdStatus("portunus; fwd=uri-miss")
	fwdVaryMiss = newFwdStatus("portunus; fwd=vary-miss")
	fwdRequest  = newFwdStatus("portunus; fwd=request")
	fwdStale    = newFwdStatus("portunus; fwd=stale")

	statusBypassAuth = constField("portunus; fwd=bypass; detail=authorization")
	statusNoStore    = constField("portunus; fwd=request; detail=no-store")
	statusCoalesced  = constField("portunus; hit; detail=coalesced")
)

// hitMemo remembers the Age and Cache-Status values last sent from one
// stored entry, so the hits of one second share them instead of each
// formatting its own. The memory backend gives each entry it stores one.
type hitMemo struct{ last atomic.Pointer[hitValues] }

// hitValues are the fields of a hit at one age, in whole seconds.
type hitValues struct {
	ageSec, ttlSec int64
	stale          bool
	vals           [2]string // Age, Cache-Status
}

// hitFields are the Age and Cache-Status field values of a hit on e at
// age: fresh, or (stale) within stale-while-revalidate. ttl is the
// remaining freshness lifetime (RFC 9211 §2.4), negative when stale.
func (e *Entry) hitFields(age time.Duration, stale bool) (ageV, status []string) {
	ageSec := max(int64(age/time.Second), 0)
	ttlSec := int64((e.Lifetime - age) / time.Second)
	if e.memo != nil {
		if v := e.memo.last.Load(); v != nil && v.ageSec == ageSec && v.ttlSec == ttlSec && v.stale == stale {
			return v.vals[0:1:1], v.vals[1:2:2]
		}
	}
	v := &hitValues{ageSec: ageSec, ttlSec: ttlSec, stale: stale}
	if ageSec < int64(len(ageFields)) {
		v.vals[0] = ageFields[ageSec][0]
	} else {
		v.vals[0] = strconv.FormatInt(ageSec, 10)
	}
	var buf [64]byte
	b := append(buf[:0], "portunus; hit; ttl="...)
	b = strconv.AppendInt(b, ttlSec, 10)
	if stale {
		b = append(b, "; detail=stale-while-revalidate"...)
	}
	v.vals[1] = string(b)
	if e.memo != nil {
		e.memo.last.Store(v)
	}
	return v.vals[0:1:1], v.vals[1:2:2]
}
