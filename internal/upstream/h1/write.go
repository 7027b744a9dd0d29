package h1

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"

	"github.com/portunus-gw/portunus/internal/httpfield"
	"golang.org/x/net/http/httpguts"
)

// bodyReadError is a failure reading the request body (the client's
// side), told apart from a failure writing to the upstream.
type bodyReadError struct{ err error }

func (e *bodyReadError) Error() string { return e.err.Error() }
func (e *bodyReadError) Unwrap() error { return e.err }

// Headers the client writes itself from the request's fields, as the
// stdlib transport does.
func skipHeader(k string) bool {
	switch k {
	case "Host", "User-Agent", "Content-Length", "Transfer-Encoding", "Trailer":
		return true
	}
	return false
}

// writeRequest writes the head and streams the body. It closes req.Body,
// as a RoundTripper must.
//
// It and writeHeaderFields are on the deepest stack of a request (a full
// buffer flushes to the socket from inside them), so what a plain
// bodiless request does not need is in functions of their own: a body's
// framing and streaming, and the errors.
func (cn *conn) writeRequest(req *http.Request) error {
	bw := cn.bw
	method := req.Method
	if method == "" {
		method = http.MethodGet
	}
	host := req.Host
	if host == "" {
		host = req.URL.Host
	}
	if !httpguts.ValidHostHeader(host) {
		return headFailed(req, invalidHost(host))
	}
	path := req.URL.EscapedPath()
	if path == "" {
		path = "/"
	}
	if !validTarget(path) || !validTarget(req.URL.RawQuery) {
		return headFailed(req, errors.New("h1: invalid request target"))
	}
	bw.WriteString(method)
	bw.WriteByte(' ')
	bw.WriteString(path)
	if req.URL.RawQuery != "" || req.URL.ForceQuery {
		bw.WriteByte('?')
		bw.WriteString(req.URL.RawQuery)
	}
	bw.WriteString(" HTTP/1.1\r\nHost: ")
	bw.WriteString(host)
	bw.WriteString("\r\n")
	if ua := req.Header["User-Agent"]; len(ua) > 0 && ua[0] != "" {
		if !httpguts.ValidHeaderFieldValue(ua[0]) {
			return headFailed(req, errors.New("h1: invalid User-Agent value"))
		}
		bw.WriteString("User-Agent: ")
		bw.WriteString(ua[0])
		bw.WriteString("\r\n")
	}
	if req.Close {
		bw.WriteString("Connection: close\r\n")
	}
	hasBody := sendsBody(req)
	if hasBody {
		if err := cn.writeFraming(req); err != nil {
			return headFailed(req, err)
		}
	} else if methodWantsLength(method) {
		bw.WriteString("Content-Length: 0\r\n")
	}
	if err := cn.writeHeaderFields(req.Header); err != nil {
		return headFailed(req, err)
	}
	bw.WriteString("\r\n")
	if hasBody {
		return cn.writeBody(req)
	}
	// What is left is at most one buffer's worth for an idle socket: it
	// does not block, so it needs no watcher (see conn.armOnWrite).
	cn.armOnWrite = false
	var err error
	if !cn.sendInWait || cn.cw.writes != 0 {
		cn.sendInWait = false
		err = bw.Flush()
	} // else the whole head is buffered: awaitAnswer sends it
	closeBody(req) // a NoBody, or one of length 0: never read
	return err
}

// headFailed ends a request whose head cannot be written: its body is
// closed.
//
//go:noinline
func headFailed(req *http.Request, err error) error {
	closeBody(req)
	return err
}

// invalidHost, badFieldName and badFieldValue build writeRequest's
// errors off its stack.
//
//go:noinline
func invalidHost(host string) error {
	return errors.New("h1: invalid Host " + strconv.Quote(host))
}

// writeFraming writes the fields that frame req's body: Content-Length,
// or Transfer-Encoding: chunked and the trailers it declares.
//
//go:noinline
func (cn *conn) writeFraming(req *http.Request) error {
	bw := cn.bw
	if req.ContentLength >= 0 {
		bw.WriteString("Content-Length: ")
		bw.Write(strconv.AppendInt(bw.AvailableBuffer(), req.ContentLength, 10))
		bw.WriteString("\r\n")
		return nil
	}
	bw.WriteString("Transfer-Encoding: chunked\r\n")
	if len(req.Trailer) == 0 {
		return nil
	}
	names, err := cn.trailerNames(req.Trailer)
	if err != nil {
		return err
	}
	bw.WriteString("Trailer: ")
	for i, f := range names {
		if i > 0 {
			bw.WriteString(",")
		}
		bw.WriteString(f.name)
	}
	bw.WriteString("\r\n")
	clear(bw.fields[:min(len(names), len(bw.fields))])
	return nil
}

// trailerNames returns the names of the trailers tr declares, canonical
// and sorted, in the write buffer's array (as headFields, which comes
// after).
//
//go:noinline
func (cn *conn) trailerNames(tr http.Header) ([]headField, error) {
	names := cn.bw.fields[:0]
	for k := range tr {
		k = http.CanonicalHeaderKey(k)
		switch k {
		case "Transfer-Encoding", "Trailer", "Content-Length":
			clear(cn.bw.fields[:])
			return nil, fmt.Errorf("h1: invalid trailer key %q", k)
		}
		if !httpguts.ValidHeaderFieldName(k) {
			clear(cn.bw.fields[:])
			return nil, fmt.Errorf("h1: invalid trailer key %q", k)
		}
		names = append(names, headField{name: k})
	}
	sortFields(names)
	return names, nil
}

// writeBody streams req's body after the head, closes it and flushes.
//
//go:noinline
func (cn *conn) writeBody(req *http.Request) (err error) {
	closed := false
	defer func() {
		if !closed {
			req.Body.Close()
		}
	}()
	if req.ContentLength < 0 {
		err = cn.writeChunked(req)
	} else {
		err = cn.writeSized(req.Body, req.ContentLength)
	}
	if err != nil {
		return err
	}
	closed = true
	if cerr := req.Body.Close(); cerr != nil {
		return &bodyReadError{cerr}
	}
	// What is left is at most one buffer's worth for an idle socket: it
	// does not block, so it needs no watcher (see conn.armOnWrite).
	cn.armOnWrite = false
	cn.sendInWait = false
	return cn.bw.Flush()
}

// writeHeaderFields writes h sorted by name, in the order the stdlib
// transport uses, so upstreams see the same bytes whichever client sent
// them (and caches keyed on raw requests stay warm).
func (cn *conn) writeHeaderFields(h http.Header) error {
	fields, err := cn.headFields(h)
	bw := cn.bw
	for _, f := range fields {
		for _, v := range f.values {
			if !httpguts.ValidHeaderFieldValue(v) {
				err = badFieldValue(f.name)
				break
			}
			httpfield.WriteLine(&bw.Writer, f.name, v)
		}
		if err != nil {
			break
		}
	}
	// The pooled array must not keep the request's fields alive.
	clear(bw.fields[:min(len(fields), len(bw.fields))])
	return err
}

// headField is one field of a head being written: its name and values,
// taken from the header map once.
type headField struct {
	name   string
	values []string
}

// headFields returns the fields writeHeaderFields writes, sorted by
// name, in the write buffer's array: no allocation for up to 32 fields.
// It is a function of its own so that its map iterator is not on the
// stack of the writes (which may flush to the socket).
//
//go:noinline
func (cn *conn) headFields(h http.Header) ([]headField, error) {
	fields := cn.bw.fields[:0]
	for k, vv := range h {
		if skipHeader(k) {
			continue
		}
		if !httpguts.ValidHeaderFieldName(k) {
			clear(cn.bw.fields[:])
			return nil, badFieldName(k)
		}
		fields = append(fields, headField{k, vv})
	}
	sortFields(fields)
	return fields, nil
}

// sortFields sorts by name with an insertion sort: few fields, and no
// closure or interface to escape.
func sortFields(fields []headField) {
	for i := 1; i < len(fields); i++ {
		for j := i; j > 0 && fields[j].name < fields[j-1].name; j-- {
			fields[j], fields[j-1] = fields[j-1], fields[j]
		}
	}
}

//go:noinline
func badFieldName(k string) error {
	return fmt.Errorf("h1: invalid header field name %q", k)
}

//go:noinline
func badFieldValue(k string) error {
	return fmt.Errorf("h1: invalid header field value for %q", k)
}

// methodWantsLength: an empty body of these methods is announced with
// Content-Length: 0, as the stdlib transport does, so the upstream does
// not wait for a body.
func methodWantsLength(m string) bool {
	return m == http.MethodPost || m == http.MethodPut || m == http.MethodPatch
}

// writeSized copies exactly n bytes of body through the write buffer.
func (cn *conn) writeSized(body io.Reader, n int64) error {
	bw := cn.bw
	for n > 0 {
		if bw.Available() == 0 {
			if err := bw.Flush(); err != nil {
				return err
			}
		}
		buf := bw.AvailableBuffer()
		buf = buf[:min(int64(cap(buf)), n)]
		m, rerr := body.Read(buf)
		if m > 0 {
			if _, err := bw.Write(buf[:m]); err != nil {
				return err
			}
			n -= int64(m)
		}
		if rerr == io.EOF {
			if n > 0 {
				return &bodyReadError{fmt.Errorf("h1: request body shorter than its Content-Length (%d bytes missing)", n)}
			}
			break
		}
		if rerr != nil {
			return &bodyReadError{rerr}
		}
	}
	return nil
}

// chunkOverhead is room for a chunk's size line and its closing CRLF.
const chunkOverhead = 16

// writeChunked sends a body of unknown length as chunks, each flushed so
// a streamed upload reaches the upstream as it comes, then the trailers.
func (cn *conn) writeChunked(req *http.Request) error {
	bw := cn.bw
	for {
		if bw.Available() < 512+chunkOverhead {
			if err := bw.Flush(); err != nil {
				return err
			}
		}
		// Read straight into the buffer behind room for the size line,
		// then move the size line in front of the data.
		avail := bw.AvailableBuffer()
		room := avail[:cap(avail)]
		data := room[chunkOverhead-2 : len(room)-2]
		m, rerr := req.Body.Read(data)
		if m > 0 {
			var line [chunkOverhead]byte
			head := strconv.AppendInt(line[:0], int64(m), 16)
			head = append(head, '\r', '\n')
			if _, err := bw.Write(head); err != nil {
				return err
			}
			// The data now sits len(head) bytes into what Write
			// appended; copy it down to follow the head directly.
			avail = bw.AvailableBuffer()
			room = avail[:cap(avail)]
			off := chunkOverhead - 2 - len(head)
			copy(room[:m], room[off:off+m])
			room = append(room[:m], '\r', '\n')
			if _, err := bw.Write(room); err != nil {
				return err
			}
			if err := bw.Flush(); err != nil {
				return err
			}
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return &bodyReadError{rerr}
		}
	}
	bw.WriteString("0\r\n")
	for k, vv := range req.Trailer {
		if !httpguts.ValidHeaderFieldName(k) {
			return fmt.Errorf("h1: invalid trailer key %q", k)
		}
		for _, v := range vv {
			if !httpguts.ValidHeaderFieldValue(v) {
				return fmt.Errorf("h1: invalid trailer value for %q", k)
			}
			bw.WriteString(k)
			bw.WriteString(": ")
			bw.WriteString(v)
			bw.WriteString("\r\n")
		}
	}
	bw.WriteString("\r\n")
	return nil
}

// validTarget reports whether s can go into a request line verbatim.
func validTarget(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c >= 0x7f {
			return false
		}
	}
	return true
}

// validToken reports whether s is an RFC 9110 token (a method).
func validToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !httpguts.IsTokenRune(rune(s[i])) {
			return false
		}
	}
	return true
}

// hasToken reports whether the comma-separated list v holds token
// (case-insensitive).
func hasToken(v, token string) bool {
	return httpguts.HeaderValuesContainsToken([]string{v}, token)
}
