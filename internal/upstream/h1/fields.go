package h1

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"unsafe"

	"github.com/portunus-gw/portunus/internal/httpfield"
	"golang.org/x/net/http/httpguts"
)

// Field section errors; readFields wraps them with the offending line.
var (
	errFieldNoColon = errors.New("field line without a colon")
	errFieldName    = errors.New("invalid field name")
	errFieldValue   = errors.New("invalid field value")
	errObsFold      = errors.New("obsolete line folding")
)

// readFields reads a field section (a response head's fields, or the
// trailer section after the last chunk) from br through the blank line
// that ends it. It replaces textproto's ReadMIMEHeader, which costs a
// string per value and per uncommon key: here the section is copied once
// into a block of its own, keys are canonicalized in that copy and keys
// and values are strings over it, and the values' slices come from one
// slab. The result is what ReadMIMEHeader returns for every section both
// accept; readFields accepts less:
//
//   - A field name must be an RFC 9110 token. ReadMIMEHeader lets a space
//     into a name for old servers, but "Content-Length : 5" is a framing
//     ambiguity, not a quirk.
//   - A line that starts with SP or HTAB (obs-fold) is an error, where
//     ReadMIMEHeader joins it to the previous value. RFC 9112 §5.2 lets a
//     proxy reject it (with a 502); servers stopped folding long ago, and
//     a fold is the kind of line two parsers on a path read differently.
//
// As ReadMIMEHeader does, it accepts a bare LF as a line end (dropping
// one CR before it), trims SP and HTAB around values and rejects a value
// byte that is a control other than HTAB (CR, LF, NUL...) or DEL.
//
// Lines longer than br's buffer are accepted, as ReadMIMEHeader accepts
// them: the caller bounds the whole section (the connReader budget,
// MaxResponseHeaderBytes), not one line. An end of input before the blank
// line is io.ErrUnexpectedEOF; other read errors are returned as they are.
func readFields(br *bufio.Reader) (http.Header, error) {
	block, slab, err := scanFields(br)
	if err != nil {
		return nil, err
	}
	return parseFields(block, slab, nil)
}

// scanFields is the reading half of readFields: it returns the section's
// field lines (without the blank line) in a block of their own, and a slab
// for their values, for parseFields.
func scanFields(br *bufio.Reader) ([]byte, []string, error) {
	// The common case: the section is, or comes to be, whole in br's
	// buffer. It is found there and copied once.
	off, lines := 0, 0 // end of the complete lines seen; their count
	for {
		buf, _ := br.Peek(br.Buffered())
		for {
			i := bytes.IndexByte(buf[off:], '\n')
			if i < 0 {
				break
			}
			if i == 0 || i == 1 && buf[off] == '\r' {
				slab, block := newFieldStore(lines, off)
				copy(block, buf)
				br.Discard(off + i + 1)
				return block, slab, nil
			}
			off += i + 1
			lines++
		}
		if len(buf) == br.Size() {
			break
		}
		// Peek reads at least once more; it fails only when nothing
		// more came.
		if _, err := br.Peek(len(buf) + 1); err != nil {
			return nil, nil, unexpectedEOF(err)
		}
	}
	return scanLongFields(br, off, lines)
}

// scanLongFields is scanFields for a section that outgrows the buffer
// (off bytes in lines complete lines are in it): it is gathered in a
// block that grows, from what is buffered, then a line at a time.
//
//go:noinline
func scanLongFields(br *bufio.Reader, off, lines int) ([]byte, []string, error) {
	buf, _ := br.Peek(br.Buffered())
	block := append(make([]byte, 0, 2*len(buf)), buf...)
	br.Discard(len(buf))
	start := off // of the line being read
	for {
		frag, err := br.ReadSlice('\n')
		block = append(block, frag...)
		switch err {
		case nil:
			line := block[start:]
			if len(line) == 1 || len(line) == 2 && line[0] == '\r' {
				return block[:start], make([]string, min(lines, maxFieldsHint)), nil
			}
			start = len(block)
			lines++
		case bufio.ErrBufferFull:
			// A line longer than the buffer: read on.
		default:
			return nil, nil, unexpectedEOF(err)
		}
	}
}

// maxFieldsHint caps what a section's line count reserves up front (the
// map's size hint, the slab): a megabyte of "a:" lines of one name must not
// reserve a map for hundreds of thousands of keys.
const maxFieldsHint = 1000

func unexpectedEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// newFieldStore returns a slab for lines values and a block of size
// bytes. For a head of up to 16 fields and 768 bytes (a typical answer's)
// both come from one allocation, the smallest of a few that holds them:
// the header's map is then the only other. Each pair fills a malloc size
// class, assuming fields of some 32 bytes.
func newFieldStore(lines, size int) ([]string, []byte) {
	switch {
	case lines == 0 && size == 0:
		return nil, nil
	case lines <= 2 && size <= 64:
		return fieldStore[[2]string, [64]byte](lines, size)
	case lines <= 4 && size <= 128:
		return fieldStore[[4]string, [128]byte](lines, size)
	case lines <= 6 && size <= 224:
		return fieldStore[[6]string, [224]byte](lines, size)
	case lines <= 8 && size <= 320:
		return fieldStore[[8]string, [320]byte](lines, size)
	case lines <= 12 && size <= 512:
		return fieldStore[[12]string, [512]byte](lines, size)
	case lines <= 16 && size <= 768:
		return fieldStore[[16]string, [768]byte](lines, size)
	}
	return make([]string, min(lines, maxFieldsHint)), make([]byte, size)
}

// fieldStore allocates an S (an array of strings) and a B (an array of
// bytes) together and returns their first lines and size elements.
func fieldStore[S, B any](lines, size int) ([]string, []byte) {
	s := new(struct {
		slab  S
		block B
	})
	return unsafe.Slice((*string)(unsafe.Pointer(&s.slab)), lines),
		unsafe.Slice((*byte)(unsafe.Pointer(&s.block)), size)
}

// parseFields parses block, field lines (each ending in LF) without the
// blank line, with a slab of a value per line, into h (emptied first; a
// new map when nil). Keys and values are strings over block, which
// nothing may change afterwards.
func parseFields(block []byte, slab []string, h http.Header) (http.Header, error) {
	if h == nil {
		h = make(http.Header, min(len(slab), maxFieldsHint))
	} else {
		clear(h)
	}
	for len(block) > 0 {
		i := bytes.IndexByte(block, '\n')
		line := block[:i]
		block = block[i+1:]
		if n := len(line); n > 0 && line[n-1] == '\r' {
			line = line[:n-1]
		}
		if len(line) > 0 && (line[0] == ' ' || line[0] == '\t') {
			return nil, fieldError(errObsFold, line)
		}
		colon := bytes.IndexByte(line, ':')
		if colon < 0 {
			return nil, fieldError(errFieldNoColon, line)
		}
		name := line[:colon]
		if !httpfield.CanonicalizeName(name) {
			return nil, fieldError(errFieldName, line)
		}
		key := commonKey(name)
		if key == "" {
			key = unsafe.String(&name[0], len(name))
		}
		value := ""
		if v := trimOWS(line[colon+1:]); len(v) > 0 {
			value = unsafe.String(&v[0], len(v))
			if !httpguts.ValidHeaderFieldValue(value) {
				return nil, fieldError(errFieldValue, line)
			}
		}
		// Most fields appear once: each starts with one value of the
		// slab, capacity 1 so that a repeat's append leaves the slab
		// alone.
		if vv := h[key]; vv != nil || len(slab) == 0 {
			h[key] = append(vv, value)
		} else {
			vv, slab = slab[:1:1], slab[1:]
			vv[0] = value
			h[key] = vv
		}
	}
	return h, nil
}

// commonKey returns the constant for a canonical name answers often
// carry, "" for any other: a constant key does not keep the block alive
// when a caller keeps a header's names beyond its values.
func commonKey(name []byte) string {
	switch string(name) {
	case "Accept-Ranges":
		return "Accept-Ranges"
	case "Age":
		return "Age"
	case "Cache-Control":
		return "Cache-Control"
	case "Connection":
		return "Connection"
	case "Content-Encoding":
		return "Content-Encoding"
	case "Content-Length":
		return "Content-Length"
	case "Content-Type":
		return "Content-Type"
	case "Date":
		return "Date"
	case "Etag":
		return "Etag"
	case "Expires":
		return "Expires"
	case "Keep-Alive":
		return "Keep-Alive"
	case "Last-Modified":
		return "Last-Modified"
	case "Location":
		return "Location"
	case "Server":
		return "Server"
	case "Set-Cookie":
		return "Set-Cookie"
	case "Trailer":
		return "Trailer"
	case "Transfer-Encoding":
		return "Transfer-Encoding"
	case "Vary":
		return "Vary"
	case "X-Request-Id":
		return "X-Request-Id"
	}
	return ""
}

// trimOWS drops SP and HTAB on both sides.
func trimOWS(s []byte) []byte {
	for len(s) > 0 && (s[0] == ' ' || s[0] == '\t') {
		s = s[1:]
	}
	for len(s) > 0 && (s[len(s)-1] == ' ' || s[len(s)-1] == '\t') {
		s = s[:len(s)-1]
	}
	return s
}

// fieldError quotes the start of a bad line (an error should not carry a
// megabyte of header).
func fieldError(kind error, line []byte) error {
	const maxQuoted = 80
	if len(line) > maxQuoted {
		line = line[:maxQuoted]
	}
	return fmt.Errorf("%w: %q", kind, line)
}
