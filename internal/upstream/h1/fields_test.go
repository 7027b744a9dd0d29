package h1

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/textproto"
	"reflect"
	"strings"
	"testing"
	"testing/iotest"
)

// fieldCases are field sections as they follow a status line. want nil:
// readFields must fail, with an error that is errWant when that is set.
var fieldCases = []struct {
	name    string
	in      string
	want    http.Header
	errWant error
}{
	{"empty", "\r\n", http.Header{}, nil},
	{"empty bare LF", "\n", http.Header{}, nil},
	{"ordinary", "Content-Type: application/json\r\nContent-Length: 100\r\nDate: Thu, 26 Nov 2026 06:41:05 GMT\r\n\r\n",
		http.Header{"Content-Type": {"application/json"}, "Content-Length": {"100"}, "Date": {"Thu, 26 Nov 2026 06:41:05 GMT"}}, nil},
	{"bare LF", "A: 1\nB: 2\n\n", http.Header{"A": {"1"}, "B": {"2"}}, nil},
	{"mixed line ends", "A: 1\r\nB: 2\n\r\n", http.Header{"A": {"1"}, "B": {"2"}}, nil},
	{"repeated fields keep their order", "Set-Cookie: a=1\r\nVary: Accept\r\nSet-Cookie: b=2\r\nset-cookie: c=3\r\n\r\n",
		http.Header{"Set-Cookie": {"a=1", "b=2", "c=3"}, "Vary": {"Accept"}}, nil},
	{"empty values", "X-Empty:\r\nX-Blank:   \r\nX-Empty: \t\r\n\r\n", http.Header{"X-Empty": {"", ""}, "X-Blank": {""}}, nil},
	{"inner spaces and tabs kept", "X-A: a  b\tc \t d\r\n\r\n", http.Header{"X-A": {"a  b\tc \t d"}}, nil},
	{"outer spaces and tabs trimmed", "X-A: \t v \t \r\nX-B:v\r\n\r\n", http.Header{"X-A": {"v"}, "X-B": {"v"}}, nil},
	{"colons in the value", "Location: http://h:80/a:b\r\n\r\n", http.Header{"Location": {"http://h:80/a:b"}}, nil},
	{"obs-text in the value", "X-A: caf\xc3\xa9 \xff\r\n\r\n", http.Header{"X-A": {"caf\xc3\xa9 \xff"}}, nil},
	{"names canonicalized", "content-type: text/plain\r\nCONTENT-LENGTH: 5\r\nx-foo-bar: 1\r\netag: \"x\"\r\nx-1abc-DEF: 2\r\n\r\n",
		http.Header{"Content-Type": {"text/plain"}, "Content-Length": {"5"}, "X-Foo-Bar": {"1"}, "Etag": {`"x"`}, "X-1abc-Def": {"2"}}, nil},
	{"token punctuation in a name", "X-!#$%&'*+.^_`|~: v\r\n\r\n", http.Header{"X-!#$%&'*+.^_`|~": {"v"}}, nil},
	{"CR before CRLF", "X-A: v\r\r\n\r\n", nil, errFieldValue},
	{"space before colon", "Content-Length : 5\r\n\r\n", nil, errFieldName},
	{"tab before colon", "Content-Length\t: 5\r\n\r\n", nil, errFieldName},
	{"space inside a name", "Content Length: 5\r\n\r\n", nil, errFieldName},
	{"empty name", ": v\r\n\r\n", nil, errFieldName},
	{"quote in a name", "X-\"A\": v\r\n\r\n", nil, errFieldName},
	{"slash in a name", "X/A: v\r\n\r\n", nil, errFieldName},
	{"non-ASCII name", "X-\xc3\xa9: v\r\n\r\n", nil, errFieldName},
	{"NUL in a name", "X-\x00: v\r\n\r\n", nil, errFieldName},
	{"NUL in a value", "X-A: a\x00b\r\n\r\n", nil, errFieldValue},
	{"CR in a value", "X-A: a\rb\r\n\r\n", nil, errFieldValue},
	{"DEL in a value", "X-A: a\x7fb\r\n\r\n", nil, errFieldValue},
	{"VT in a value", "X-A: a\vb\r\n\r\n", nil, errFieldValue},
	{"missing colon", "Broken header\r\n\r\n", nil, errFieldNoColon},
	{"lone CR line", "X-A: 1\r\n\r\r\n\r\n", nil, errFieldNoColon},
	// Obsolete line folding is refused (textproto would join the lines
	// into "a b"), and a section cannot start with white space either.
	{"obs-fold with SP", "X-A: a\r\n b\r\n\r\n", nil, errObsFold},
	{"obs-fold with HTAB", "X-A: a\r\n\tb\r\n\r\n", nil, errObsFold},
	{"white space line", "X-A: a\r\n \r\n\r\n", nil, errObsFold},
	{"leading white space", " X-A: a\r\n\r\n", nil, errObsFold},
	{"EOF before any line", "", nil, io.ErrUnexpectedEOF},
	{"EOF inside a line", "X-A: 1\r\nX-B", nil, io.ErrUnexpectedEOF},
	{"EOF after a line", "X-A: 1\r\n", nil, io.ErrUnexpectedEOF},
	{"EOF after CR", "X-A: 1\r\n\r", nil, io.ErrUnexpectedEOF},
}

// readers returns the ways a section is fed to readFields in tests: all
// at once into the client's buffer size, a byte per read (the section
// grows in the buffer), and into the smallest buffer bufio allows (every
// section outgrows it, and most lines are longer).
func readers(in string) map[string]*bufio.Reader {
	return map[string]*bufio.Reader{
		"whole":   bufio.NewReaderSize(strings.NewReader(in), bufSize),
		"bytes":   bufio.NewReaderSize(iotest.OneByteReader(strings.NewReader(in)), bufSize),
		"small":   bufio.NewReaderSize(strings.NewReader(in), 16),
		"small-1": bufio.NewReaderSize(iotest.OneByteReader(strings.NewReader(in)), 16),
	}
}

func TestReadFields(t *testing.T) {
	const after = "BODY\r\n\r\nmore"
	for _, tc := range fieldCases {
		for how, br := range readers(tc.in + after) {
			if tc.errWant == io.ErrUnexpectedEOF {
				br = readers(tc.in)[how]
			}
			h, err := readFields(br)
			if tc.want == nil {
				if err == nil {
					t.Errorf("%s (%s): got %v; want an error", tc.name, how, h)
				} else if !errors.Is(err, tc.errWant) {
					t.Errorf("%s (%s): error %v; want %v", tc.name, how, err, tc.errWant)
				}
				continue
			}
			if err != nil {
				t.Errorf("%s (%s): %v", tc.name, how, err)
				continue
			}
			if !reflect.DeepEqual(h, tc.want) {
				t.Errorf("%s (%s): got %q; want %q", tc.name, how, h, tc.want)
			}
			// Exactly the section is consumed.
			if rest, _ := io.ReadAll(br); string(rest) != after {
				t.Errorf("%s (%s): left %q; want %q", tc.name, how, rest, after)
			}
		}
	}
}

func TestReadFieldsLongLinesAndSections(t *testing.T) {
	long := strings.Repeat("x", 3*bufSize+7)
	var many strings.Builder
	want := http.Header{"Content-Security-Policy": {long}}
	many.WriteString("content-security-policy: " + long + "\r\n")
	for i := range 500 {
		many.WriteString("X-Many: " + strings.Repeat("v", i%37) + "\r\n")
		want["X-Many"] = append(want["X-Many"], strings.Repeat("v", i%37))
	}
	// More names than maxFieldsHint reserves room for.
	for i := range maxFieldsHint + 200 {
		k := fmt.Sprintf("X-Name-%d", i)
		many.WriteString(k + ": " + k + "\r\n")
		want[k] = []string{k}
	}
	many.WriteString("\r\nBODY")
	for how, br := range readers(many.String()) {
		h, err := readFields(br)
		if err != nil {
			t.Fatalf("%s: %v", how, err)
		}
		if !reflect.DeepEqual(h, want) {
			t.Errorf("%s: the section came back different", how)
		}
		if rest, _ := io.ReadAll(br); string(rest) != "BODY" {
			t.Errorf("%s: left %q", how, rest)
		}
	}
}

// TestReadFieldsOwnsItsStrings: keys and values do not point into the
// reader's buffer, which the next read reuses.
func TestReadFieldsOwnsItsStrings(t *testing.T) {
	in := "x-custom-key: value-1\r\nContent-Type: text/plain\r\n\r\n"
	br := bufio.NewReaderSize(strings.NewReader(in+strings.Repeat("Z", 3*bufSize)), bufSize)
	h, err := readFields(br)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, br) // overwrites the buffer
	want := http.Header{"X-Custom-Key": {"value-1"}, "Content-Type": {"text/plain"}}
	if !reflect.DeepEqual(h, want) {
		t.Fatalf("got %q; want %q", h, want)
	}
}

// TestReadFieldsBudget: a section larger than the connReader's budget
// fails with errHeaderTooLarge, made of short lines as well as of one
// long line.
func TestReadFieldsBudget(t *testing.T) {
	for _, section := range []string{
		strings.Repeat("X-Line: "+strings.Repeat("a", 50)+"\r\n", 400),
		"X-Long: " + strings.Repeat("a", 30000) + "\r\n",
	} {
		client, server := net.Pipe()
		done := make(chan struct{})
		go func() {
			defer close(done)
			io.WriteString(server, section+"\r\n")
		}()
		cr := &connReader{nc: client, limited: true, budget: 16 << 10}
		_, err := readFields(bufio.NewReaderSize(cr, bufSize))
		if !errors.Is(err, errHeaderTooLarge) {
			t.Errorf("section of %d bytes: error %v; want errHeaderTooLarge", len(section), err)
		}
		client.Close()
		<-done
	}
}

// TestResponseFieldsThroughClient reads heads and trailers through the
// real connection: one larger than the buffer with a line longer than
// it, and sections over the budget or malformed, which fail with the
// head's or the trailer's error.
func TestResponseFieldsThroughClient(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("p", 6000)
	many := strings.Repeat("X-Line: "+strings.Repeat("a", 50)+"\r\n", 400)
	cases := []struct {
		name, answer string
		ok           bool
		errWant      string
	}{
		{"large head", "HTTP/1.1 200 OK\r\ncontent-security-policy: " + long + "\r\n" + many + "Content-Length: 2\r\n\r\nok", true, ""},
		{"trailers", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\nx-sum: 42\r\nX-Long: " + long + "\r\n\r\n", true, ""},
		{"too many lines", "HTTP/1.1 200 OK\r\n" + many + many + many + "Content-Length: 2\r\n\r\nok", false, "h1: malformed response header: " + errHeaderTooLarge.Error()},
		{"name with a space", "HTTP/1.1 200 OK\r\nContent-Length : 2\r\n\r\nok", false, "h1: malformed response header: invalid field name"},
		{"obs-fold", "HTTP/1.1 200 OK\r\nX-A: a\r\n b\r\nContent-Length: 2\r\n\r\nok", false, "h1: malformed response header: obsolete line folding"},
		{"bad trailer", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\nX-Sum : 42\r\n\r\n", false, "h1: malformed trailer: invalid field name"},
		{"trailer cut short", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\nX-Sum: 42\r\n", false, "h1: malformed trailer: unexpected EOF"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			addr, _ := answerOnce(t, tc.answer)
			c := newClient(t, Options{MaxResponseHeaderBytes: 32 << 10})
			req, _ := http.NewRequest(http.MethodGet, "http://"+addr+"/", nil)
			res, err := c.RoundTrip(req)
			var body []byte
			if err == nil {
				body, err = io.ReadAll(res.Body)
				res.Body.Close()
			}
			if !tc.ok {
				if err == nil || !strings.HasPrefix(err.Error(), tc.errWant) {
					t.Fatalf("error %v; want %q...", err, tc.errWant)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if string(body) != "ok" {
				t.Errorf("body %q", body)
			}
			switch tc.name {
			case "large head":
				if res.Header.Get("Content-Security-Policy") != long || len(res.Header["X-Line"]) != 400 {
					t.Errorf("head lost fields: CSP %d bytes, %d X-Line", len(res.Header.Get("Content-Security-Policy")), len(res.Header["X-Line"]))
				}
			case "trailers":
				if res.Trailer.Get("X-Sum") != "42" || res.Trailer.Get("X-Long") != long {
					t.Errorf("trailers %d: X-Sum %q, X-Long %d bytes", len(res.Trailer), res.Trailer.Get("X-Sum"), len(res.Trailer.Get("X-Long")))
				}
			}
		})
	}
}

// FuzzFields holds readFields to textproto.ReadMIMEHeader: whatever
// readFields accepts, ReadMIMEHeader accepts as the same header, having
// consumed as much input. readFields may refuse what ReadMIMEHeader
// accepts only for its two documented reasons: a name with a space in it,
// and obsolete line folding. The way the input is buffered changes
// nothing.
func FuzzFields(f *testing.F) {
	for _, tc := range fieldCases {
		f.Add([]byte(tc.in))
	}
	f.Add([]byte("A: b\r\n c\r\n\r\nrest"))
	f.Add([]byte("A B: c\r\n\r\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		tbr := bufio.NewReader(bytes.NewReader(in))
		want, werr := textproto.NewReader(tbr).ReadMIMEHeader()
		wrest, _ := io.ReadAll(tbr)

		var first http.Header
		var ferr error
		for i, br := range []*bufio.Reader{
			bufio.NewReaderSize(bytes.NewReader(in), bufSize),
			bufio.NewReaderSize(iotest.OneByteReader(bytes.NewReader(in)), 16),
		} {
			got, err := readFields(br)
			rest, _ := io.ReadAll(br)
			if i == 0 {
				first, ferr = got, err
			} else if (err == nil) != (ferr == nil) || !reflect.DeepEqual(got, first) {
				t.Fatalf("buffering changed the result: %q, %v vs %q, %v", got, err, first, ferr)
			}
			if err != nil {
				if werr == nil && !documentedRefusal(err, want) {
					t.Fatalf("refused %q (%v); textproto accepts it as %q", in, err, want)
				}
				continue
			}
			if werr != nil {
				t.Fatalf("accepted %q as %q; textproto fails: %v", in, got, werr)
			}
			if !reflect.DeepEqual(got, http.Header(want)) {
				t.Fatalf("%q: got %q; textproto %q", in, got, want)
			}
			if !bytes.Equal(rest, wrest) {
				t.Fatalf("%q: left %q; textproto left %q", in, rest, wrest)
			}
		}
	})
}

// documentedRefusal reports whether readFields refused, with err, what
// ReadMIMEHeader read as want for a reason of readFields' own.
func documentedRefusal(err error, want textproto.MIMEHeader) bool {
	if errors.Is(err, errObsFold) {
		return true
	}
	if errors.Is(err, errFieldName) {
		for k := range want {
			if strings.Contains(k, " ") {
				return true
			}
		}
	}
	return false
}

// BenchmarkReadFields reads the head of a typical small JSON answer (with
// its body behind it in the buffer), with textproto as readResponse used
// it and with readFields.
func BenchmarkReadFields(b *testing.B) {
	body := strings.Repeat("j", 100)
	head := "Content-Type: application/json\r\n" +
		"Content-Length: 100\r\n" +
		"Date: Thu, 26 Nov 2026 06:41:05 GMT\r\n" +
		"Cache-Control: no-store\r\n" +
		"X-Request-Id: 3f1c9b2e-8d4a-4e7b-9a61-2c5d7e8f0a1b\r\n" +
		"X-Upstream-Latency: 3ms\r\n" +
		"\r\n" + body
	rd := strings.NewReader(head)
	br := bufio.NewReaderSize(rd, bufSize)
	b.Run("textproto", func(b *testing.B) {
		tp := textproto.Reader{R: br}
		b.ReportAllocs()
		for b.Loop() {
			rd.Reset(head)
			br.Reset(rd)
			h, err := tp.ReadMIMEHeader()
			if err != nil {
				b.Fatal(err)
			}
			for k := range h {
				if strings.IndexByte(k, ' ') >= 0 {
					b.Fatal(k)
				}
			}
		}
	})
	b.Run("readFields", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			rd.Reset(head)
			br.Reset(rd)
			if _, err := readFields(br); err != nil {
				b.Fatal(err)
			}
		}
	})
}
