package h1server

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/portunus-gw/portunus/internal/httpfield"
	"golang.org/x/net/http/httpguts"
)

// preSize is how much body is held before the header is written, so a
// short answer without Content-Length gets one; it is also the chunk
// size of chunked answers between flushes.
const preSize = 4096

var (
	bufwPool = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, 4096) }}
	prePool  = sync.Pool{New: func() any { b := make([]byte, 0, preSize); return &b }}
)

// response is the http.ResponseWriter of one request; a connection
// reuses it for its next request.
type response struct {
	c    *conn
	req  *http.Request
	ctx  *reqCtx
	body *bodyReader

	header http.Header
	// Fields of the head that commit decides on, noted at WriteHeader.
	connection  []string
	trailer     []string
	hasDate     bool
	fullDuplex  bool
	wdlSet      bool // the handler moved the write deadline
	status      int
	wroteHeader bool // the final status is decided
	committed   bool // the head is in bw
	chunked     bool
	noBody      bool // HEAD, 1xx, 204, 304: no body bytes are sent
	closeAfter  bool
	declared    int64 // Content-Length the handler set; -1: none
	written     int64

	bw  *bufio.Writer
	pre *[]byte

	finished bool // the handler returned and the answer is complete

	// contMu orders the 100 Continue (sent from whatever goroutine
	// reads the body) against the head.
	contMu         sync.Mutex
	expectContinue bool
	wroteContinue  bool
}

func (w *response) Header() http.Header { return w.header }

func (w *response) WriteHeader(code int) {
	if w.wroteHeader {
		w.superfluous(code)
		return
	}
	if code < 100 || code > 999 {
		badCode(code)
	}
	if code < 200 && code != http.StatusSwitchingProtocols {
		w.writeInformational(code)
		return
	}
	w.wroteHeader = true
	w.status = code
	if code < 200 || code == http.StatusNoContent || code == http.StatusNotModified || w.req.Method == http.MethodHead {
		w.noBody = true
	}
	if cl := w.header["Content-Length"]; len(cl) == 1 {
		if n, err := strconv.ParseInt(cl[0], 10, 64); err == nil && n >= 0 {
			w.declared = n
		}
	}
	// The status line and the handler's fields go into the buffer now,
	// as they are at WriteHeader (fields set later are trailers or
	// nothing, net/http's rule); the framing lines follow at commit.
	w.writeHead()
	if w.declared >= 0 && !w.noBody {
		// With the length known nothing is left to decide.
		w.commit(false)
	}
}

// superfluous and badCode are WriteHeader's rare paths, apart so that
// their temporaries do not grow its frame: WriteHeader runs deep in the
// handler's stack, and may read the rest of the body (commit).
//
//go:noinline
func (w *response) superfluous(code int) {
	w.c.s.logf("h1server: superfluous WriteHeader(%d) for %s %s", code, w.req.Method, w.req.URL.Path)
}

//go:noinline
func badCode(code int) {
	panic(fmt.Sprintf("invalid WriteHeader code %v", code))
}

// writeHead writes the status line and the handler's header fields,
// noting the fields commit decides on.
func (w *response) writeHead() {
	bw := w.writer()
	writeStatusLine(bw, w.req.ProtoAtLeast(1, 1), w.status)
	keepCL := w.declared >= 0 && w.status >= 200 && w.status != http.StatusNoContent
	for k, vv := range w.header {
		switch k {
		case "Content-Length":
			if !keepCL {
				continue
			}
		case "Transfer-Encoding":
			continue
		case "Connection":
			w.connection = vv
			continue
		case "Trailer":
			w.trailer = vv
			continue
		case "Date":
			w.hasDate = true
			if vv == nil {
				continue // the handler asked for no Date
			}
		default:
			if len(k) > len(http.TrailerPrefix) && k[:len(http.TrailerPrefix)] == http.TrailerPrefix {
				continue
			}
		}
		writeField(bw, k, vv)
	}
}

// writeInformational sends a 1xx answer at once, with the header fields
// set so far (103 Early Hints carries Link fields).
func (w *response) writeInformational(code int) {
	w.contMu.Lock()
	defer w.contMu.Unlock()
	if code == http.StatusContinue {
		if w.wroteContinue {
			return
		}
		w.wroteContinue = true
	}
	bw := w.writer()
	writeStatusLine(bw, w.req.ProtoAtLeast(1, 1), code)
	for k, vv := range w.header {
		if k == "Content-Length" || k == "Transfer-Encoding" {
			continue
		}
		writeField(bw, k, vv)
	}
	_, _ = bw.WriteString("\r\n")
	_ = bw.Flush()
}

func (w *response) writer() *bufio.Writer {
	if w.bw == nil {
		w.bw = bufwPool.Get().(*bufio.Writer)
		w.bw.Reset(w.c.out())
	}
	return w.bw
}

// commit writes the head into the buffered writer. done says the
// handler has returned, so a held body's length is its whole length.
func (w *response) commit(done bool) {
	req := w.req
	// The connection closes after this answer whatever its body.
	closing := w.c.s.inShutdown.Load() || req.Close || hasClose(w.connection)
	// Otherwise what the handler left of the body is read before the
	// head goes out (net/http's order): a client that sends its whole
	// request before it reads could otherwise block us both.
	bodyOK := w.body == nil || w.fullDuplex || closing || w.body.drainForAnswer()

	w.contMu.Lock()
	defer w.contMu.Unlock()
	w.committed = true
	http11 := req.ProtoAtLeast(1, 1)
	if !bodyOK || closing {
		w.closeAfter = true
	}
	if w.expectContinue && !w.wroteContinue {
		// The client may still send the body it asked about, or not:
		// the connection cannot be trusted to frame the next request.
		w.closeAfter = true
	}

	setLength := int64(-1)
	switch {
	case w.status == http.StatusNoContent || w.status < 200:
		w.declared = -1
	case w.status == http.StatusNotModified:
		// A 304's Content-Length describes the stored answer: kept.
	case w.declared >= 0:
	case w.noBody: // HEAD
		if done && w.written > 0 {
			setLength = w.written
		}
	case done && (len(w.trailer) == 0 || !http11):
		setLength = int64(w.preLen())
		w.declared = setLength
	case http11:
		w.chunked = true
	default:
		// HTTP/1.0 and no length: the end of the connection ends it.
		w.closeAfter = true
	}

	bw := w.bw
	if !w.hasDate {
		_, _ = bw.Write(dateField())
	}
	if setLength >= 0 {
		_, _ = bw.WriteString("Content-Length: ")
		_, _ = bw.Write(strconv.AppendInt(bw.AvailableBuffer(), setLength, 10))
		_, _ = bw.WriteString("\r\n")
	}
	if w.chunked {
		_, _ = bw.WriteString("Transfer-Encoding: chunked\r\n")
		if len(w.trailer) > 0 {
			writeField(bw, "Trailer", w.trailer)
		}
	}
	switch {
	case w.closeAfter:
		_, _ = bw.WriteString("Connection: close\r\n")
	case !http11:
		_, _ = bw.WriteString("Connection: keep-alive\r\n")
	case len(w.connection) > 0:
		writeField(bw, "Connection", w.connection)
	}
	_, _ = bw.WriteString("\r\n")
}

func (w *response) preLen() int {
	if w.pre == nil {
		return 0
	}
	return len(*w.pre)
}

// errFinished is what a write after the handler returned gets.
var errFinished = errors.New("h1server: write after the handler returned")

func (w *response) Write(p []byte) (int, error) {
	if w.finished {
		return 0, errFinished
	}
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if w.c.hijacked.Load() {
		return 0, http.ErrHijacked
	}
	if w.noBody {
		if w.req.Method == http.MethodHead && w.status >= 200 && w.status != http.StatusNoContent && w.status != http.StatusNotModified {
			w.written += int64(len(p))
			return len(p), nil
		}
		return 0, http.ErrBodyNotAllowed
	}
	if w.declared >= 0 && w.written+int64(len(p)) > w.declared {
		return 0, http.ErrContentLength
	}
	w.written += int64(len(p))
	if !w.committed || w.chunked {
		if w.pre == nil {
			w.pre = prePool.Get().(*[]byte)
		}
		if len(*w.pre)+len(p) <= preSize {
			*w.pre = append(*w.pre, p...)
			return len(p), nil
		}
		if !w.committed {
			w.commit(false)
		}
		if !w.chunked {
			// Close-delimited (HTTP/1.0): what was held goes first.
			_, _ = w.bw.Write(*w.pre)
			*w.pre = (*w.pre)[:0]
			return w.bw.Write(p)
		}
		err := w.writeChunk(*w.pre)
		*w.pre = (*w.pre)[:0]
		if err == nil {
			err = w.writeChunk(p)
		}
		if err != nil {
			return 0, err
		}
		return len(p), nil
	}
	return w.bw.Write(p)
}

func (w *response) WriteString(s string) (int, error) {
	return w.Write(unsafe.Slice(unsafe.StringData(s), len(s)))
}

// writeChunk frames p as one chunk. bufio.Writer errors are sticky, so
// the last write's error is the chunk's.
func (w *response) writeChunk(p []byte) error {
	if len(p) == 0 {
		return nil
	}
	bw := w.bw
	_, _ = bw.Write(strconv.AppendInt(bw.AvailableBuffer(), int64(len(p)), 16))
	_, _ = bw.WriteString("\r\n")
	_, _ = bw.Write(p)
	_, err := bw.WriteString("\r\n")
	return err
}

// Flush sends the head and what was written so far.
func (w *response) Flush() { _ = w.FlushError() }

// FlushError is Flush reporting a failed write (http.ResponseController).
func (w *response) FlushError() error {
	if w.finished {
		return errFinished
	}
	if w.c.hijacked.Load() {
		return http.ErrHijacked
	}
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if !w.committed {
		w.commit(false)
	}
	// A flushed answer may be a stream that stays quiet for long.
	w.c.keepAlive()
	if w.pre != nil && len(*w.pre) > 0 {
		if w.chunked {
			w.writeChunk(*w.pre)
		} else {
			_, _ = w.bw.Write(*w.pre)
		}
		*w.pre = (*w.pre)[:0]
	}
	return w.bw.Flush()
}

// finish completes the answer after the handler returned.
func (w *response) finish() {
	defer func() { w.finished = true }()
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if !w.committed {
		w.commit(true)
	}
	bw := w.bw
	if w.pre != nil {
		if len(*w.pre) > 0 {
			if w.chunked {
				w.writeChunk(*w.pre)
			} else {
				_, _ = bw.Write(*w.pre)
			}
		}
		*w.pre = (*w.pre)[:0]
		prePool.Put(w.pre)
		w.pre = nil
	}
	if w.chunked {
		_, _ = bw.WriteString("0\r\n")
		// Trailers: the fields the head announced, and any set with
		// http.TrailerPrefix, even after the head went out.
		w.writeTrailers(bw)
		_, _ = bw.WriteString("\r\n")
	}
	if w.declared >= 0 && !w.noBody && w.written < w.declared {
		// Fewer bytes than announced: the client would wait for the
		// rest, or read them from the next answer.
		w.closeAfter = true
	}
	if err := bw.Flush(); err != nil {
		w.closeAfter = true
	}
	bw.Reset(nil)
	bufwPool.Put(bw)
	w.bw = nil
}

func (w *response) writeTrailers(bw *bufio.Writer) {
	h := w.header
	for _, list := range w.trailer {
		for name := range strings.SplitSeq(list, ",") {
			k := http.CanonicalHeaderKey(strings.TrimSpace(name))
			if vv := h[k]; len(vv) > 0 && validTrailer(k) {
				writeField(bw, k, vv)
			}
		}
	}
	for k, vv := range h {
		if name, ok := strings.CutPrefix(k, http.TrailerPrefix); ok && validTrailer(name) {
			writeField(bw, name, vv)
		}
	}
}

// validTrailer refuses fields that may not be trailers (RFC 9110 §6.5.1).
func validTrailer(k string) bool {
	switch http.CanonicalHeaderKey(k) {
	case "Content-Length", "Transfer-Encoding", "Trailer", "Host", "Connection", "Content-Type":
		return false
	}
	return true
}

func hasClose(vv []string) bool {
	for _, v := range vv {
		for tok := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(tok), "close") {
				return true
			}
		}
	}
	return false
}

// Hijack hands the connection to the handler (WebSocket, other
// upgrades); the server forgets it.
func (w *response) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	c := w.c
	if c.hijacked.Load() {
		return nil, nil, http.ErrHijacked
	}
	if w.wroteHeader && !w.committed {
		// The status was set (101, or 200 to a CONNECT): it goes out
		// without body framing before the connection changes hands.
		w.noBody = true
		w.fullDuplex = true
		w.commit(false)
	}
	if w.committed {
		if err := w.FlushError(); err != nil {
			return nil, nil, err
		}
	}
	c.cr.abortPendingRead()
	c.cr.mu.Lock()
	c.cr.ctx = nil
	c.cr.mu.Unlock()
	c.hijacked.Store(true)
	_ = c.setDeadline(time.Time{})
	c.keepAlive()
	if w.bw != nil {
		w.bw.Reset(nil)
		bufwPool.Put(w.bw)
		w.bw = nil
	}
	c.setState(http.StateHijacked)
	br := c.bufr
	if br == nil {
		br = bufio.NewReader(&c.cr)
	}
	return c.rwc, bufio.NewReadWriter(br, bufio.NewWriter(c.rwc)), nil
}

// SetReadDeadline and SetWriteDeadline serve http.ResponseController.
func (w *response) SetReadDeadline(t time.Time) error { return w.c.setReadDeadline(t) }
func (w *response) SetWriteDeadline(t time.Time) error {
	w.wdlSet = true
	return w.c.rwc.SetWriteDeadline(t)
}

// EnableFullDuplex: reading the body while writing the answer is always
// allowed here.
func (w *response) EnableFullDuplex() error {
	w.fullDuplex = true
	return nil
}

// bodyReader is the request body the handler sees: Close does not read
// the rest (the server bounds that), and the end of the body lets the
// context watch the connection.
type bodyReader struct {
	mu     sync.Mutex
	rc     io.ReadCloser
	w      *response
	closed bool
	eof    bool
	failed bool
}

func (b *bodyReader) Read(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return 0, http.ErrBodyReadAfterClose
	}
	if b.eof {
		return 0, io.EOF
	}
	w := b.w
	if w.expectContinue && !w.wroteContinue {
		w.sendContinue()
	}
	n, err := b.rc.Read(p)
	if err == io.EOF {
		b.eof = true
		w.ctx.bodyEnded()
	} else if err != nil {
		b.failed = true
	}
	return n, err
}

// ended reports whether the body was read to its end.
func (b *bodyReader) ended() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.eof
}

// drainForAnswer reads what is left of the body, up to
// maxPostHandlerRead, before the answer's head is written. It reports
// false when the connection cannot carry another request: the rest is
// larger, the body was malformed or the client is too slow, or the
// client was never told to send the body it announced.
func (b *bodyReader) drainForAnswer() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.eof {
		return true
	}
	w := b.w
	if b.failed || (w.expectContinue && !w.wroteContinue) || w.req.ContentLength > maxPostHandlerRead {
		return false
	}
	_ = w.c.setReadDeadline(time.Now().Add(discardTimeout))
	n, err := discard(b.rc, maxPostHandlerRead+1)
	_ = w.c.setReadDeadline(time.Time{})
	if err == io.EOF && n <= maxPostHandlerRead {
		b.eof = true
		w.ctx.bodyEnded()
		return true
	}
	b.failed = true
	return false
}

// tearDown makes the body unreadable once its connection is gone.
func (b *bodyReader) tearDown() {
	b.mu.Lock()
	b.closed = true
	b.mu.Unlock()
}

func (b *bodyReader) Close() error {
	b.mu.Lock()
	b.closed = true
	b.mu.Unlock()
	return nil
}

// sendContinue answers Expect: 100-continue on the first body read,
// unless the final answer has begun.
func (w *response) sendContinue() {
	w.contMu.Lock()
	defer w.contMu.Unlock()
	if w.wroteContinue || w.committed {
		return
	}
	w.wroteContinue = true
	_, _ = w.c.rwc.Write(continueLine)
}

var continueLine = []byte("HTTP/1.1 100 Continue\r\n\r\n")

// discardBody reads what the handler left of the body, up to
// maxPostHandlerRead, so the connection can serve the next request.
func (w *response) discardBody() bool {
	b := w.body
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closed = true
	if b.eof {
		return true
	}
	if b.failed || (w.expectContinue && !w.wroteContinue) {
		return false
	}
	_ = w.c.setReadDeadline(time.Now().Add(discardTimeout))
	n, err := discard(b.rc, maxPostHandlerRead+1)
	return err == io.EOF && n <= maxPostHandlerRead
}

// discard reads and drops at most limit bytes of r, as
// io.CopyN(io.Discard, r, limit) does (err is io.EOF when r ended first).
// It runs below WriteHeader, deep in the handler's stack, where the four
// frames io.CopyN puts before r's Read cost about 330 bytes.
func discard(r io.Reader, limit int64) (n int64, err error) {
	bp := discardPool.Get().(*[discardSize]byte)
	for n < limit && err == nil {
		p := bp[:]
		if rest := limit - n; rest < int64(len(p)) {
			p = p[:rest]
		}
		var m int
		m, err = r.Read(p)
		n += int64(m)
	}
	discardPool.Put(bp)
	if n >= limit {
		err = nil // as io.CopyN: all limit bytes were read
	}
	return n, err
}

// discardSize is io.Discard's read size.
const discardSize = 8 << 10

var discardPool = sync.Pool{New: func() any { return new([discardSize]byte) }}

var statusLines [2][600]string

func init() {
	for code := 100; code < 600; code++ {
		if t := http.StatusText(code); t != "" {
			statusLines[0][code] = "HTTP/1.0 " + strconv.Itoa(code) + " " + t + "\r\n"
			statusLines[1][code] = "HTTP/1.1 " + strconv.Itoa(code) + " " + t + "\r\n"
		}
	}
}

func writeStatusLine(bw *bufio.Writer, http11 bool, code int) {
	i := 0
	if http11 {
		i = 1
	}
	if code < 600 && statusLines[i][code] != "" {
		_, _ = bw.WriteString(statusLines[i][code])
		return
	}
	if http11 {
		_, _ = bw.WriteString("HTTP/1.1 ")
	} else {
		_, _ = bw.WriteString("HTTP/1.0 ")
	}
	_, _ = bw.WriteString(strconv.Itoa(code) + " status code " + strconv.Itoa(code) + "\r\n")
}

// writeField writes one header field per value. Names that are not
// tokens are dropped; CR and LF in values become spaces, so no value can
// start a field or an answer of its own.
func writeField(bw *bufio.Writer, k string, vv []string) {
	if !httpguts.ValidHeaderFieldName(k) {
		return
	}
	for _, v := range vv {
		if !plainValue(v) {
			v = cleanValue(v)
		}
		httpfield.WriteLine(bw, k, v)
	}
}

// plainValue reports whether v goes out as it is: no CR or LF, and
// nothing strings.TrimSpace would take from its ends (its first and last
// bytes are printable ASCII).
func plainValue(v string) bool {
	if v == "" {
		return true
	}
	if first, last := v[0], v[len(v)-1]; first <= ' ' || first >= 0x7f || last <= ' ' || last >= 0x7f {
		return false
	}
	return strings.IndexByte(v, '\n') < 0 && strings.IndexByte(v, '\r') < 0
}

// cleanValue is writeField's rare path: CR and LF become spaces and the
// ends are trimmed.
//
//go:noinline
func cleanValue(v string) string {
	if strings.ContainsAny(v, "\r\n") {
		v = strings.NewReplacer("\r\n", " ", "\r", " ", "\n", " ").Replace(v)
	}
	return strings.TrimSpace(v)
}

// dateField is "Date: <IMF-fixdate>\r\n", formatted once a second.
type dateEntry struct {
	sec int64
	b   []byte
}

var dateCache atomic.Pointer[dateEntry]

func dateField() []byte {
	now := time.Now()
	sec := now.Unix()
	if d := dateCache.Load(); d != nil && d.sec == sec {
		return d.b
	}
	b := make([]byte, 0, 40)
	b = append(b, "Date: "...)
	b = now.UTC().AppendFormat(b, http.TimeFormat)
	b = append(b, "\r\n"...)
	dateCache.Store(&dateEntry{sec: sec, b: b})
	return b
}

func itoa(n int) string { return strconv.Itoa(n) }

func unsafeString(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }
