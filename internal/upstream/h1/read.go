package h1

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httputil"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
)

// Framing errors: the upstream's answer cannot be delimited safely.
var (
	errCLAndTE       = errors.New("h1: response has both Content-Length and Transfer-Encoding")
	errBadCL         = errors.New("h1: response has an invalid Content-Length")
	errMultipleCL    = errors.New("h1: response has more than one Content-Length")
	errBadTE         = errors.New("h1: response has a Transfer-Encoding other than chunked")
	errBadStatusLine = errors.New("h1: malformed response status line")
	errTooManyInfo   = errors.New("h1: too many informational (1xx) responses")
	errBodyClosed    = errors.New("h1: read on closed response body")
)

// readResponse reads the final response head for req. stale reports a
// failure before any byte of the answer (on a reused connection, the sign
// of a connection the upstream closed while it idled).
// The read budget for the head is set by the caller (roundTrip), before
// the first byte is read, and lifted by it afterwards.
//
// It is on the deepest stack of a request (the fields' map is filled from
// parseFields below it), so its failures are handled in functions of
// their own, and the fields are read with scanFields and parseFields
// directly rather than through readFields.
func (cn *conn) readResponse(req *http.Request) (*http.Response, bool, error) {
	alloc := respPool.Get().(*respAlloc)
	res := &alloc.res
	spare := alloc.spare
	alloc.spare = nil
	for info := 0; ; info++ {
		line, err := cn.br.ReadSlice('\n')
		if err != nil {
			return cn.statusLineFailed(len(line), err)
		}
		if !parseStatusLine(line, res) {
			return nil, false, malformed(errBadStatusLine)
		}
		// parseFields refuses a space in a field name ("Content-Length : 5").
		block, slab, err := scanFields(cn.br)
		if err == nil {
			res.Header, err = parseFields(block, slab, spare)
			spare = res.Header // an informational answer's map is reused for the next head
		}
		if err != nil {
			return nil, false, fieldsFailed(err)
		}
		if code := res.StatusCode; code >= 100 && code < 200 && code != http.StatusSwitchingProtocols {
			if info >= maxInformational {
				return nil, false, malformed(errTooManyInfo)
			}
			continue
		}
		break
	}
	res.Request = req
	b := &alloc.body
	b.cn = cn
	b.res = res
	b.alloc = alloc
	res.Body = b
	if err := cn.frame(req, res, b); err != nil {
		return nil, false, malformed(err)
	}
	return res, false, nil
}

// statusLineFailed is readResponse's result for a failed read of a
// status line, n bytes of it read.
//
//go:noinline
func (cn *conn) statusLineFailed(n int, err error) (*http.Response, bool, error) {
	if errors.Is(err, bufio.ErrBufferFull) {
		return nil, false, malformed(errBadStatusLine)
	}
	if errors.Is(err, errHeaderTooLarge) {
		return nil, false, malformed(err)
	}
	// Only a connection closed or reset before any answer byte is stale;
	// a deadline or a cancellation is not.
	return nil, cn.cr.n == 0 && n == 0 && (errors.Is(err, io.EOF) || isConnGone(err)), err
}

// fieldsFailed is readResponse's error for a field section that could
// not be read.
//
//go:noinline
func fieldsFailed(err error) error {
	err = fmt.Errorf("h1: malformed response header: %w", err)
	if badFields(err) {
		err = malformed(err)
	}
	return err
}

// MalformedAnswer reports whether err is an upstream's answer that could
// not be read safely (its status line, fields, size or framing), as
// opposed to a connection that failed or a deadline that passed: the
// proxy tells the client so (502 bad-gateway) instead of "unreachable".
func MalformedAnswer(err error) bool {
	var m *malformedError
	return errors.As(err, &m)
}

type malformedError struct{ err error }

func (e *malformedError) Error() string { return e.err.Error() }
func (e *malformedError) Unwrap() error { return e.err }

func malformed(err error) error { return &malformedError{err} }

// badFields tells a field section that breaks the rules from one whose
// reading failed (a reset, a deadline, an early end).
func badFields(err error) bool {
	return errors.Is(err, errFieldNoColon) || errors.Is(err, errFieldName) || errors.Is(err, errFieldValue) ||
		errors.Is(err, errObsFold) || errors.Is(err, errHeaderTooLarge)
}

// respAlloc holds a response and its body in one allocation. Release
// gives it back to respPool, with its header map cleared in spare.
type respAlloc struct {
	res   http.Response
	body  body
	spare http.Header
}

var respPool = sync.Pool{New: func() any { return new(respAlloc) }}

// maxSpareFields bounds the header map a released answer passes on: a
// map that held more keeps a larger table than a typical answer needs.
const maxSpareFields = 8

// Release gives back an answer this package's client returned, for a
// later answer to reuse its memory (the response, its body reader and
// its header map; not the header values, which stay valid). The caller
// must be done with the response, its Header map and its Body, and so
// must everything it handed them to: the body read to its end or closed.
// An answer whose body is still open, one whose body was replaced, or
// one from elsewhere is left to the garbage collector.
func Release(res *http.Response) {
	b, ok := res.Body.(*body)
	if !ok || b.res != res || b.alloc == nil || b.state.Load() == 0 {
		return
	}
	a := b.alloc
	h := res.Header
	*a = respAlloc{}
	if len(h) <= maxSpareFields {
		// Cleared now, not only when reused, so that the pool does not
		// keep this answer's keys and values alive.
		clear(h)
		a.spare = h
	}
	respPool.Put(a)
}

// frame decides how the body is delimited, strictly.
func (cn *conn) frame(req *http.Request, res *http.Response, b *body) error {
	h := res.Header
	res.Close = closeRequested(res.ProtoMinor, h["Connection"]) || req.Close
	cls := h["Content-Length"]
	tes := h["Transfer-Encoding"]
	if len(cls) > 1 {
		return errMultipleCL
	}
	cl := int64(-1)
	if len(cls) == 1 {
		n, ok := parseContentLength(cls[0])
		if !ok {
			return errBadCL
		}
		cl = n
	}
	chunked := false
	if len(tes) > 0 {
		if len(tes) != 1 || !strings.EqualFold(strings.TrimSpace(tes[0]), "chunked") || res.ProtoMinor == 0 {
			return errBadTE
		}
		if cl >= 0 {
			return errCLAndTE
		}
		chunked = true
	}
	switch {
	case res.StatusCode == http.StatusSwitchingProtocols:
		// Upgrades never come here (Handles sends them to the fallback),
		// so this 101 answers a request that asked for none. It goes to
		// the caller, who refuses it; the connection is not reused.
		b.noBody = true
		res.Close = true
		return nil
	case req.Method == http.MethodHead, res.StatusCode == http.StatusNoContent, res.StatusCode == http.StatusNotModified:
		// No body whatever the head says; a HEAD answer keeps the length
		// it announced.
		b.noBody = true
		if req.Method == http.MethodHead {
			res.ContentLength = cl
		}
		if res.StatusCode == http.StatusNoContent && (cl > 0 || chunked) {
			return errors.New("h1: 204 response with a body")
		}
		return nil
	case chunked:
		delete(h, "Transfer-Encoding")
		res.TransferEncoding = chunkedTE
		res.ContentLength = -1
		if err := declaredTrailers(res); err != nil {
			return err
		}
		b.chunked = httputil.NewChunkedReader(cn.br)
		return nil
	case cl >= 0:
		res.ContentLength = cl
		b.remaining = cl
		b.noBody = cl == 0
		return nil
	default:
		// Delimited by the connection's close.
		res.ContentLength = -1
		res.Close = true
		b.untilClose = true
		return nil
	}
}

var chunkedTE = []string{"chunked"}

// declaredTrailers moves the Trailer header into res.Trailer (keys with
// nil values, filled when the body ends), as net/http does, so a proxy can
// announce them before the body.
func declaredTrailers(res *http.Response) error {
	vv := res.Header["Trailer"]
	if len(vv) == 0 {
		return nil
	}
	delete(res.Header, "Trailer")
	tr := http.Header{}
	for _, v := range vv {
		for k := range strings.SplitSeq(v, ",") {
			k = http.CanonicalHeaderKey(strings.TrimSpace(k))
			switch k {
			case "":
				continue
			case "Transfer-Encoding", "Trailer", "Content-Length":
				return fmt.Errorf("h1: bad trailer key %q", k)
			}
			tr[k] = nil
		}
	}
	if len(tr) > 0 {
		res.Trailer = tr
	}
	return nil
}

// closeRequested reports whether the connection ends after this answer.
func closeRequested(minor int, conn []string) bool {
	keepAlive := false
	for _, v := range conn {
		if hasToken(v, "close") {
			return true
		}
		if minor == 0 && hasToken(v, "keep-alive") {
			keepAlive = true
		}
	}
	return minor == 0 && !keepAlive
}

// parseContentLength accepts digits only (no sign, no list, no spaces
// inside), as RFC 9110 requires of a single value.
func parseContentLength(s string) (int64, bool) {
	s = strings.TrimSpace(s)
	if s == "" || len(s) > 18 {
		return 0, false
	}
	var n int64
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

// parseStatusLine parses "HTTP/1.x SP 3DIGIT [SP reason] CRLF" into res's
// Status, StatusCode and Proto fields.
func parseStatusLine(line []byte, res *http.Response) bool {
	n := len(line)
	if n >= 2 && line[n-2] == '\r' {
		n -= 2
	} else {
		n-- // bare LF, as net/http tolerates
	}
	line = line[:n]
	if len(line) < 12 || string(line[:7]) != "HTTP/1." || line[8] != ' ' {
		return false
	}
	minor := 0
	switch line[7] {
	case '0':
	case '1':
		minor = 1
	default:
		return false
	}
	code := 0
	for i := 9; i < 12; i++ {
		if line[i] < '0' || line[i] > '9' {
			return false
		}
		code = code*10 + int(line[i]-'0')
	}
	if code < 100 {
		return false
	}
	rest := line[12:]
	if len(rest) > 0 && rest[0] != ' ' {
		return false
	}
	for _, c := range rest {
		if c < ' ' && c != '\t' || c == 0x7f {
			return false
		}
	}
	reason := ""
	if len(rest) > 1 {
		reason = string(rest[1:])
	}
	res.Status = statusString(code, reason)
	res.StatusCode = code
	res.Proto = protoString(1, minor)
	res.ProtoMajor = 1
	res.ProtoMinor = minor
	return true
}

// statusString builds Response.Status without allocating for the usual
// answers.
func statusString(code int, reason string) string {
	switch {
	case code == 200 && (reason == "OK" || reason == ""):
		return "200 OK"
	case code == 204 && (reason == "No Content" || reason == ""):
		return "204 No Content"
	case code == 304 && (reason == "Not Modified" || reason == ""):
		return "304 Not Modified"
	case code == 404 && (reason == "Not Found" || reason == ""):
		return "404 Not Found"
	}
	if reason == "" {
		reason = http.StatusText(code)
	}
	return strconv.Itoa(code) + " " + reason
}

func protoString(major, minor int) string {
	if minor == 0 {
		return "HTTP/1.0"
	}
	return "HTTP/1.1"
}

// body is a response body on a pooled connection. Read is called by one
// goroutine; Close may come from another while a Read blocks.
type body struct {
	cn  *conn
	res *http.Response
	// alloc is the block res and the body are in (Release).
	alloc *respAlloc
	// stop removes the request's context watcher; nil = none.
	stop func() bool

	noBody     bool
	remaining  int64     // Content-Length mode: bytes left
	chunked    io.Reader // chunked mode
	untilClose bool      // close-delimited mode

	// state: 0 open, 1 finished (connection released or destroyed).
	state atomic.Uint32
	err   error // sticky read error (reader goroutine only)
}

func (b *body) Read(p []byte) (int, error) {
	if b.err != nil {
		return 0, b.err
	}
	if b.state.Load() != 0 {
		return 0, errBodyClosed
	}
	var n int
	var err error
	switch {
	case b.noBody:
		err = io.EOF
	case b.chunked != nil:
		n, err = b.chunked.Read(p)
		if err == io.EOF {
			if terr := b.readTrailer(); terr != nil {
				err = terr
			}
		}
	case b.untilClose:
		n, err = b.cn.br.Read(p)
	default:
		if b.remaining == 0 {
			err = io.EOF
			break
		}
		if int64(len(p)) > b.remaining {
			p = p[:b.remaining]
		}
		n, err = b.cn.br.Read(p)
		b.remaining -= int64(n)
		if err == io.EOF && b.remaining > 0 {
			err = io.ErrUnexpectedEOF
		} else if err == nil && b.remaining == 0 {
			err = io.EOF
		}
	}
	if err == nil {
		return n, nil
	}
	if err == io.EOF {
		b.finish(nil)
	} else {
		if b.cn.canceled.Load() {
			err = canceled(b.res.Request.Context(), err)
		}
		b.finish(err)
	}
	b.err = err
	return n, err
}

// readTrailer reads the trailer section after the last chunk into
// res.Trailer (declared or not, as net/http does).
func (b *body) readTrailer() error {
	br := b.cn.br
	b.cn.cr.limited = true
	b.cn.cr.budget = b.cn.hp.c.opts.MaxResponseHeaderBytes
	defer func() { b.cn.cr.limited = false }()
	if p, err := br.Peek(2); err == nil && p[0] == '\r' && p[1] == '\n' {
		br.Discard(2)
		return nil
	}
	tr, err := readFields(br) // an early end is io.ErrUnexpectedEOF
	if err != nil {
		return fmt.Errorf("h1: malformed trailer: %w", err)
	}
	for k, vv := range tr {
		switch k {
		case "Transfer-Encoding", "Trailer", "Content-Length":
			continue // framing fields are never trailers
		}
		if b.res.Trailer == nil {
			b.res.Trailer = http.Header{}
		}
		b.res.Trailer[k] = vv
	}
	return nil
}

// finish ends the body once: a complete body (err nil) returns the
// connection to the pool when it can be reused; anything else closes it.
func (b *body) finish(err error) {
	if !b.state.CompareAndSwap(0, 1) {
		return
	}
	if err != nil || b.untilClose {
		if b.stop != nil {
			b.stop()
		}
		b.cn.destroy()
		return
	}
	b.cn.release(!b.res.Close, b.stop)
}

// Close ends the body. A body not read to its end closes the connection
// rather than draining it: a large or endless body must not hold the
// caller, and Close may come from another goroutine while a Read blocks
// (closing the socket is what unblocks it).
func (b *body) Close() error {
	if b.state.CompareAndSwap(0, 1) {
		if b.stop != nil {
			b.stop()
		}
		b.cn.destroy()
	}
	return nil
}
