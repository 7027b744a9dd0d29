package transform

import (
	"bytes"
	"encoding/json"
	"fmt"
	"mime"
	"net/http"
	"strconv"
	"strings"

	"github.com/portunus-gw/portunus/internal/config"
	"github.com/portunus-gw/portunus/internal/pipeline"
	"github.com/portunus-gw/portunus/internal/problem"
)

// DefaultMaxBodyBytes bounds a filtered JSON answer when
// response_transform.max_body_bytes is not set.
const DefaultMaxBodyBytes = 1 << 20

// ResponsePlan is a compiled response transformation.
type ResponsePlan struct {
	status [600]int // 0 = unchanged
	mapped []string // for Describe
	allow  [][]string
	deny   [][]string
	max    int64
}

// CompileResponse builds the response side; nil for nil.
func CompileResponse(c *config.ResponseTransform) (*ResponsePlan, error) {
	if c == nil {
		return nil, nil
	}
	p := &ResponsePlan{max: int64(c.MaxBodyBytes)}
	if p.max <= 0 {
		p.max = DefaultMaxBodyBytes
	}
	for _, k := range sortedKeys(c.StatusMap) {
		from, err := strconv.Atoi(k)
		to := c.StatusMap[k]
		if err != nil || from < 100 || from > 599 || to < 200 || to > 599 {
			return nil, fmt.Errorf("status_map: %q -> %d is not a valid mapping", k, to)
		}
		p.status[from] = to
		p.mapped = append(p.mapped, fmt.Sprintf("%d->%d", from, to))
	}
	if len(c.Allow) > 0 && len(c.Deny) > 0 {
		return nil, fmt.Errorf("use at most one of allow_fields, deny_fields")
	}
	for _, f := range c.Allow {
		p.allow = append(p.allow, strings.Split(f, "."))
	}
	for _, f := range c.Deny {
		p.deny = append(p.deny, strings.Split(f, "."))
	}
	return p, nil
}

// Describe lists what the plan does, for explain.
func (p *ResponsePlan) Describe() []string {
	var out []string
	if len(p.mapped) > 0 {
		out = append(out, "status map "+strings.Join(p.mapped, ", "))
	}
	if p.allow != nil {
		out = append(out, fmt.Sprintf("JSON allow fields %s (max %d bytes)", joinPaths(p.allow), p.max))
	}
	if p.deny != nil {
		out = append(out, fmt.Sprintf("JSON deny fields %s (max %d bytes)", joinPaths(p.deny), p.max))
	}
	return out
}

func joinPaths(ps [][]string) string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = strings.Join(p, ".")
	}
	return strings.Join(s, ", ")
}

func (p *ResponsePlan) filters() bool { return p.allow != nil || p.deny != nil }

// Middleware wraps the action. Without a field filter it only rewrites
// the status as it passes; with one it buffers JSON answers (bounded) and
// writes the filtered body when the action returns.
func (p *ResponsePlan) Middleware() pipeline.Middleware {
	return func(next pipeline.Handler) pipeline.Handler {
		return func(w http.ResponseWriter, r *http.Request, s *pipeline.State) {
			if p.filters() && len(r.Header["Accept-Encoding"]) > 0 {
				// A compressed answer could not be filtered: ask the
				// upstream for identity (the compression policy, which
				// wraps this one, still compresses for the client).
				r2 := new(http.Request)
				*r2 = *r
				r2.Header = r.Header.Clone()
				delete(r2.Header, "Accept-Encoding")
				r = r2
			}
			tw := &writer{ResponseWriter: w, p: p}
			next(tw, r, s)
			switch {
			case tw.buf != nil:
				tw.finish(r, s)
			case tw.sniff:
				_ = tw.pass() // no body, or only whitespace
			}
		}
	}
}

// writer rewrites the status and, for a filtered JSON answer, holds the
// body until the action is done.
//
// With a field filter, an answer that is not labelled JSON is sniffed
// (fail closed): its status and headers are held until the first body
// byte that is not whitespace. '{' or '[' means the body may be JSON
// whatever its label says, so it is held and filtered like a labelled
// one (or refused when it is not valid JSON); anything else streams
// through untouched from there on.
type writer struct {
	http.ResponseWriter
	p        *ResponsePlan
	wrote    bool
	status   int
	buf      *bytes.Buffer // non-nil: buffering a JSON answer
	tooLarge bool
	noBody   bool // the mapped status forbids a body
	// sniff: the answer is not labelled JSON and its first body byte is
	// not seen yet; pending holds the whitespace before it.
	sniff   bool
	pending []byte
	// sniffed: buf holds an answer not labelled JSON that starts like
	// JSON.
	sniffed bool
}

func (w *writer) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (w *writer) WriteHeader(code int) {
	if w.wrote {
		return
	}
	if code >= 100 && code < 200 {
		w.ResponseWriter.WriteHeader(code) // interim answers pass as they are
		return
	}
	w.wrote = true
	if code > 0 && code < len(w.p.status) && w.p.status[code] != 0 {
		code = w.p.status[code]
	}
	w.status = code
	h := w.Header()
	if code == http.StatusNoContent || code == http.StatusNotModified {
		w.noBody = true
		h.Del("Content-Length")
		h.Del("Content-Type")
		w.ResponseWriter.WriteHeader(code)
		return
	}
	if w.p.filters() {
		ct := h.Get("Content-Type")
		switch {
		case isJSON(ct):
			w.hold()
			return
		case compressed(h):
			// Its bytes cannot be sniffed: refused in finish rather than
			// passed on unread (the filter asked for identity).
			w.hold()
			w.sniffed = true
			return
		case !isEventStream(ct):
			w.sniff = true
			return
		}
	}
	w.ResponseWriter.WriteHeader(code)
}

// hold starts buffering the answer for filtering.
func (w *writer) hold() {
	if n, err := strconv.ParseInt(w.Header().Get("Content-Length"), 10, 64); err == nil && n > w.p.max {
		w.tooLarge = true
	}
	w.buf = &bytes.Buffer{}
}

// pass sends the held status and leading bytes of an answer found not to
// be JSON; the rest of it streams through.
func (w *writer) pass() error {
	w.sniff = false
	w.ResponseWriter.WriteHeader(w.status)
	if len(w.pending) == 0 {
		return nil
	}
	_, err := w.ResponseWriter.Write(w.pending)
	w.pending = nil
	return err
}

// sniffWrite takes body bytes while the answer's kind is undecided.
func (w *writer) sniffWrite(b []byte) (int, error) {
	i := 0
	for i < len(b) && isSpace(b[i], len(w.pending)+i) {
		i++
	}
	switch {
	case i == len(b) && int64(len(w.pending)+len(b)) <= w.p.max:
		w.pending = append(w.pending, b...)
		return len(b), nil
	case i < len(b) && (b[i] == '{' || b[i] == '['):
		w.sniff = false
		w.sniffed = true
		w.hold()
		if _, err := w.Write(w.pending); err != nil {
			return 0, err
		}
		w.pending = nil
		return w.Write(b)
	}
	if err := w.pass(); err != nil {
		return 0, err
	}
	return w.ResponseWriter.Write(b)
}

// isSpace reports whether c, at offset off of the body, may come before
// a JSON value: JSON whitespace, or a UTF-8 byte order mark at the start.
func isSpace(c byte, off int) bool {
	switch c {
	case ' ', '\t', '\n', '\r':
		return true
	}
	return off < len(bom) && c == bom[off]
}

var bom = []byte{0xEF, 0xBB, 0xBF}

func (w *writer) Write(b []byte) (int, error) {
	if !w.wrote {
		w.WriteHeader(http.StatusOK)
	}
	switch {
	case w.noBody:
		return len(b), nil
	case w.sniff:
		return w.sniffWrite(b)
	case w.buf != nil:
		if w.tooLarge || int64(w.buf.Len()+len(b)) > w.p.max {
			w.tooLarge = true
			return len(b), nil // drained; refused in finish
		}
		return w.buf.Write(b)
	}
	return w.ResponseWriter.Write(b)
}

// Flush passes through unless the answer is being held.
func (w *writer) Flush() {
	if w.buf != nil || w.noBody || w.sniff {
		return
	}
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (w *writer) finish(r *http.Request, s *pipeline.State) {
	h := w.Header()
	fail := func(detail string) {
		h.Del("Content-Length")
		h.Del("Content-Encoding")
		s.ErrorCode = string(problem.BadGateway)
		problem.Write(w.ResponseWriter, r, problem.Problem{Code: problem.BadGateway, Detail: detail, RequestID: s.RequestID})
	}
	if compressed(h) {
		fail("the upstream answer is compressed (" + h.Get("Content-Encoding") + "), so its JSON fields cannot be filtered")
		return
	}
	if w.tooLarge {
		fail(fmt.Sprintf("the upstream answer is larger than %d bytes, the bound for filtering its JSON fields", w.p.max))
		return
	}
	var body []byte
	if w.buf.Len() > 0 || r.Method != http.MethodHead {
		raw := w.buf.Bytes()
		if w.sniffed {
			raw = bytes.TrimLeft(raw, " \t\r\n")
			raw = bytes.TrimPrefix(raw, bom)
		}
		d := json.NewDecoder(bytes.NewReader(raw))
		d.UseNumber()
		var v any
		if err := d.Decode(&v); err != nil || d.More() {
			if w.sniffed {
				fail(fmt.Sprintf("the upstream answer (Content-Type %q) starts like JSON but is not valid JSON, so it cannot be shown to be free of the filtered fields", h.Get("Content-Type")))
			} else {
				fail("the upstream answer is labelled JSON but is not valid JSON, so its fields cannot be filtered")
			}
			return
		}
		if w.p.allow != nil {
			v = keep(v, w.p.allow)
		} else {
			for _, path := range w.p.deny {
				drop(v, path)
			}
		}
		var err error
		if body, err = json.Marshal(v); err != nil {
			fail("the filtered answer could not be encoded")
			return
		}
	}
	if body != nil {
		h.Set("Content-Length", strconv.Itoa(len(body)))
	} else {
		h.Del("Content-Length")
	}
	h.Del("Etag") // the body changed; the upstream's validator no longer names it
	w.ResponseWriter.WriteHeader(w.status)
	if r.Method != http.MethodHead {
		_, _ = w.ResponseWriter.Write(body)
	}
}

// compressed reports whether the answer has a content coding other than
// identity.
func compressed(h http.Header) bool {
	ce := h.Get("Content-Encoding")
	return ce != "" && !strings.EqualFold(ce, "identity")
}

// isEventStream reports whether ct is text/event-stream: a stream of
// events whose framing ("data:", "event:", ":") never starts like JSON.
func isEventStream(ct string) bool {
	mt, _, err := mime.ParseMediaType(ct)
	return err == nil && mt == "text/event-stream"
}

func isJSON(ct string) bool {
	if ct == "" {
		return false
	}
	mt, _, err := mime.ParseMediaType(ct)
	return err == nil && (mt == "application/json" || strings.HasSuffix(mt, "+json"))
}

// keep returns v with only the listed paths; arrays are walked element by
// element at any depth of a path. A path deeper than the value keeps
// nothing of it.
func keep(v any, paths [][]string) any {
	switch x := v.(type) {
	case []any:
		for i := range x {
			x[i] = keep(x[i], paths)
		}
		return x
	case map[string]any:
		tails := map[string][][]string{}
		whole := map[string]bool{}
		for _, p := range paths {
			if len(p) == 1 {
				whole[p[0]] = true
			} else {
				tails[p[0]] = append(tails[p[0]], p[1:])
			}
		}
		out := make(map[string]any, len(whole)+len(tails))
		for k, fv := range x {
			switch {
			case whole[k]:
				out[k] = fv
			case tails[k] != nil:
				if sub := keep(fv, tails[k]); sub != nil {
					out[k] = sub
				}
			}
		}
		return out
	}
	return nil
}

// drop removes path from v in place.
func drop(v any, path []string) {
	switch x := v.(type) {
	case []any:
		for _, e := range x {
			drop(e, path)
		}
	case map[string]any:
		if len(path) == 1 {
			delete(x, path[0])
			return
		}
		if sub, ok := x[path[0]]; ok {
			drop(sub, path[1:])
		}
	}
}
