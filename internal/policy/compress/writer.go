package compress

import (
	"bufio"
	"net"
	"net/http"
	"strconv"
)

// writerState is how far the answer got.
type writerState uint8

const (
	stateNew         writerState = iota // no header written yet
	stateBuffering                      // length unknown: holding up to minBytes
	stateCompressing                    // header sent, body through enc
	statePassthrough                    // header sent, body as it is
	stateHijacked                       // the connection left net/http
)

// writer wraps the downstream ResponseWriter of one request. It is
// pooled with its buffer.
type writer struct {
	p     *policy
	w     http.ResponseWriter
	algo  algo // negotiated; none for identity
	head  bool
	state writerState
	code  int
	enc   encoder
	buf   []byte // held body while stateBuffering (capacity kept)
}

func (w *writer) reset(rw http.ResponseWriter, a algo, head bool) {
	*w = writer{p: w.p, w: rw, algo: a, head: head, buf: w.buf[:0]}
}

func (w *writer) Header() http.Header { return w.w.Header() }

// Unwrap lets http.ResponseController reach the server's writer (for
// deadlines and full-duplex).
func (w *writer) Unwrap() http.ResponseWriter { return w.w }

func (w *writer) WriteHeader(code int) {
	if w.state != stateNew {
		return
	}
	if code >= 100 && code < 200 && code != http.StatusSwitchingProtocols {
		w.w.WriteHeader(code) // informational (103): the real answer follows
		return
	}
	w.code = code
	h := w.w.Header()
	if !w.eligible(code, h) {
		w.pass()
		return
	}
	addVary(h)
	if w.algo == none || w.head {
		w.pass()
		return
	}
	if cl := h["Content-Length"]; len(cl) > 0 {
		n, err := strconv.ParseInt(cl[0], 10, 64)
		if err != nil || n < int64(w.p.minBytes) {
			w.pass()
			return
		}
		w.startCompressing()
		return
	}
	if w.p.minBytes == 0 {
		w.startCompressing()
		return
	}
	w.state = stateBuffering
}

// eligible reports whether the answer may be compressed at all (size
// aside); the ones that are vary by Accept-Encoding.
func (w *writer) eligible(code int, h http.Header) bool {
	switch {
	case code < 200, code == http.StatusNoContent, code == http.StatusPartialContent, code == http.StatusNotModified:
		return false
	case len(h["Content-Encoding"]) > 0, len(h["Content-Range"]) > 0:
		return false // never re-compress; never touch a byte range
	}
	ct := h["Content-Type"]
	if len(ct) == 0 || !compressible(w.p.types, ct[0]) {
		return false
	}
	return !hasToken(h["Cache-Control"], "no-transform")
}

// addVary merges Accept-Encoding into Vary.
func addVary(h http.Header) {
	v := h["Vary"]
	if hasToken(v, "accept-encoding") || hasToken(v, "*") {
		return
	}
	h["Vary"] = append(v, "Accept-Encoding")
}

// pass sends the header as it is; the body follows untouched.
func (w *writer) pass() {
	w.state = statePassthrough
	w.w.WriteHeader(w.code)
}

// startCompressing rewrites the header for the encoded answer and sends it.
func (w *writer) startCompressing() {
	h := w.w.Header()
	h["Content-Encoding"] = []string{tokens[w.algo]}
	delete(h, "Content-Length")
	delete(h, "Accept-Ranges") // ranges would be of the encoded bytes
	if et := h["Etag"]; len(et) > 0 && len(et[0]) > 0 && et[0][0] == '"' {
		h["Etag"] = []string{"W/" + et[0]}
	}
	w.state = stateCompressing
	w.w.WriteHeader(w.code)
	w.enc = getEncoder(w.algo, w.w)
}

func (w *writer) Write(b []byte) (int, error) {
	if w.state == stateNew {
		w.WriteHeader(http.StatusOK)
	}
	switch w.state {
	case stateCompressing:
		return w.enc.Write(b)
	case stateBuffering:
		if len(w.buf)+len(b) < w.p.minBytes {
			w.buf = append(w.buf, b...)
			return len(b), nil
		}
		w.startCompressing()
		if err := w.drainBuffer(); err != nil {
			return 0, err
		}
		return w.enc.Write(b)
	}
	return w.w.Write(b)
}

// drainBuffer sends what stateBuffering held to the current sink.
func (w *writer) drainBuffer() error {
	if len(w.buf) == 0 {
		return nil
	}
	var err error
	if w.state == stateCompressing {
		_, err = w.enc.Write(w.buf)
	} else {
		_, err = w.w.Write(w.buf)
	}
	w.buf = w.buf[:0]
	return err
}

// Flush sends everything written so far. While the size is still unknown
// a flush means the handler is streaming (an event stream, or the proxy
// relaying a body of unknown length), so the answer is compressed.
func (w *writer) Flush() {
	_ = w.FlushError()
}

// FlushError is Flush for http.ResponseController.
func (w *writer) FlushError() error {
	switch w.state {
	case stateNew:
		w.WriteHeader(http.StatusOK)
		if w.state == stateBuffering {
			w.startCompressing()
		}
	case stateBuffering:
		w.startCompressing()
		if err := w.drainBuffer(); err != nil {
			return err
		}
	case stateHijacked:
		return nil
	}
	if w.state == stateCompressing {
		if err := w.enc.Flush(); err != nil {
			return err
		}
	}
	switch f := w.w.(type) {
	case interface{ FlushError() error }:
		return f.FlushError()
	case http.Flusher:
		f.Flush()
		return nil
	}
	return http.NewResponseController(w.w).Flush()
}

// Hijack hands the connection over (WebSocket: its 101 is never
// compressed, so nothing is pending here).
func (w *writer) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	c, brw, err := http.NewResponseController(w.w).Hijack()
	if err == nil {
		w.state = stateHijacked
	}
	return c, brw, err
}

// finish ends the answer after the handler returned: a buffered small
// body goes out as it is (with its now known length), a compressed one
// is closed.
func (w *writer) finish() {
	switch w.state {
	case stateBuffering:
		if h := w.w.Header(); h["Content-Length"] == nil && h["Trailer"] == nil {
			h["Content-Length"] = []string{strconv.Itoa(len(w.buf))}
		}
		w.pass()
		_ = w.drainBuffer()
	case stateCompressing:
		_ = w.enc.Close()
		putEncoder(w.algo, w.enc)
		w.enc = nil
	}
}
