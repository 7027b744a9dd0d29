package grpcweb

import (
	"encoding/base64"
	"encoding/binary"
	"net/http"
	"slices"
	"strings"
)

// responseWriter turns the gRPC answer the rest of the chain writes into
// a gRPC-Web one.
type responseWriter struct {
	w       http.ResponseWriter
	webType string
	text    bool

	wroteHeader  bool
	wroteBody    bool
	trailersOnly bool
	declared     []string // trailer names announced in the Trailer header
	failed       bool     // a client write failed: write nothing more

	// pending holds up to 2 bytes of -text output not yet encoded: a
	// base64 group needs 3; they are encoded (padded) at each flush.
	pending [2]byte
	npend   int
}

func (rw *responseWriter) Header() http.Header { return rw.w.Header() }

// Unwrap lets http.ResponseController reach the connection's writer.
func (rw *responseWriter) Unwrap() http.ResponseWriter { return rw.w }

func (rw *responseWriter) WriteHeader(code int) {
	if rw.wroteHeader {
		return
	}
	rw.wroteHeader = true
	h := rw.w.Header()
	if ct := h["Content-Type"]; len(ct) > 0 && hasGRPCPrefix(ct[0]) {
		h["Content-Type"] = []string{rw.webType + ct[0][len(ctGRPC):]}
	} else if code == http.StatusOK {
		h["Content-Type"] = []string{rw.webType + "+proto"}
	}
	// The trailers go in the body; nothing is announced as an HTTP
	// trailer, and the body's length changes (base64, trailer frame).
	for _, v := range h["Trailer"] {
		for _, name := range strings.Split(v, ",") {
			if name = strings.TrimSpace(name); name != "" {
				rw.declared = append(rw.declared, http.CanonicalHeaderKey(name))
			}
		}
	}
	delete(h, "Trailer")
	delete(h, "Content-Length")
	rw.trailersOnly = len(h["Grpc-Status"]) > 0
	rw.w.WriteHeader(code)
}

func (rw *responseWriter) Write(p []byte) (int, error) {
	if !rw.wroteHeader {
		rw.WriteHeader(http.StatusOK)
	}
	if len(p) == 0 {
		return 0, nil
	}
	rw.wroteBody = true
	if err := rw.emit(p); err != nil {
		return 0, err
	}
	return len(p), nil
}

// Flush sends what is buffered; in -text mode the partial base64 group is
// padded out first, so every message written so far is decodable.
func (rw *responseWriter) Flush() {
	_ = rw.FlushError()
}

// FlushError is Flush reporting failure (http.ResponseController uses it).
func (rw *responseWriter) FlushError() error {
	if !rw.wroteHeader {
		rw.WriteHeader(http.StatusOK)
	}
	if err := rw.flushText(); err != nil {
		return err
	}
	return http.NewResponseController(rw.w).Flush()
}

// emit writes body bytes, base64-encoding them in -text mode.
func (rw *responseWriter) emit(p []byte) error {
	if rw.failed {
		return http.ErrHandlerTimeout
	}
	var err error
	if !rw.text {
		_, err = rw.w.Write(p)
	} else {
		err = rw.emitText(p)
	}
	if err != nil {
		rw.failed = true
	}
	return err
}

func (rw *responseWriter) emitText(p []byte) error {
	if rw.npend > 0 {
		need := 3 - rw.npend
		if len(p) < need {
			rw.npend += copy(rw.pending[rw.npend:], p)
			return nil
		}
		var group [3]byte
		copy(group[:], rw.pending[:rw.npend])
		copy(group[rw.npend:], p[:need])
		p = p[need:]
		rw.npend = 0
		var enc [4]byte
		base64.StdEncoding.Encode(enc[:], group[:])
		if _, err := rw.w.Write(enc[:]); err != nil {
			return err
		}
	}
	whole := len(p) / 3 * 3
	rw.npend = copy(rw.pending[:], p[whole:])
	p = p[:whole]
	var buf [4096]byte
	for len(p) > 0 {
		n := min(len(p), len(buf)/4*3)
		base64.StdEncoding.Encode(buf[:], p[:n])
		if _, err := rw.w.Write(buf[:n/3*4]); err != nil {
			return err
		}
		p = p[n:]
	}
	return nil
}

// flushText writes the pending partial group, padded.
func (rw *responseWriter) flushText() error {
	if rw.npend == 0 || rw.failed {
		return nil
	}
	var enc [4]byte
	base64.StdEncoding.Encode(enc[:], rw.pending[:rw.npend])
	rw.npend = 0
	_, err := rw.w.Write(enc[:])
	if err != nil {
		rw.failed = true
	}
	return err
}

// finish ends the response once the chain returned: the gRPC trailers
// (announced ones, and those set with http.TrailerPrefix) become the
// trailer frame. A Trailers-Only answer gets none: its status is in the
// headers already.
func (rw *responseWriter) finish() {
	if !rw.wroteHeader {
		rw.WriteHeader(http.StatusOK)
	}
	h := rw.w.Header()
	var names []string
	var vals [][]string
	for _, name := range rw.declared {
		if vv := h[name]; len(vv) > 0 {
			names = append(names, name)
			vals = append(vals, vv)
		}
		delete(h, name)
	}
	for k, vv := range h {
		if strings.HasPrefix(k, http.TrailerPrefix) {
			names = append(names, http.CanonicalHeaderKey(k[len(http.TrailerPrefix):]))
			vals = append(vals, vv)
			delete(h, k)
		}
	}
	if len(names) == 0 && rw.trailersOnly && !rw.wroteBody {
		return
	}
	if !slices.Contains(names, "Grpc-Status") && rw.trailersOnly {
		// Status went out in the headers but a body followed: repeat it
		// where gRPC-Web clients look after the messages.
		names = append(names, "Grpc-Status")
		vals = append(vals, h["Grpc-Status"])
		if m := h["Grpc-Message"]; len(m) > 0 {
			names = append(names, "Grpc-Message")
			vals = append(vals, m)
		}
	}
	_ = rw.emit(trailerFrame(names, vals))
	_ = rw.flushText()
}

// trailerFrame encodes trailers as a gRPC-Web trailer frame: flag 0x80, a
// 4-byte big-endian length, then HTTP/1-style lines with lower-case names.
func trailerFrame(names []string, vals [][]string) []byte {
	n := 0
	for i, name := range names {
		for _, v := range vals[i] {
			n += len(name) + 2 + len(v) + 2
		}
	}
	b := make([]byte, 5, 5+n)
	b[0] = trailerBit
	binary.BigEndian.PutUint32(b[1:], uint32(n))
	for i, name := range names {
		for _, v := range vals[i] {
			b = append(b, strings.ToLower(name)...)
			b = append(b, ':', ' ')
			b = append(b, v...)
			b = append(b, '\r', '\n')
		}
	}
	return b
}

// hasGRPCPrefix reports whether v is application/grpc[+codec|;params].
func hasGRPCPrefix(v string) bool {
	if len(v) < len(ctGRPC) || !strings.EqualFold(v[:len(ctGRPC)], ctGRPC) {
		return false
	}
	return len(v) == len(ctGRPC) || v[len(ctGRPC)] == '+' || v[len(ctGRPC)] == ';'
}
