package h1server

import (
	"bufio"
	"bytes"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"testing"
)

// checkHead runs parseHead and http.ReadRequest on the same bytes. When
// parseHead takes the head, both must read the same request from the
// same bytes; it reports whether parseHead took it.
func checkHead(t *testing.T, raw string) bool {
	t.Helper()
	var got http.Request
	var u url.URL
	buf := []byte(raw) // parseHead rewrites field names in place
	n, ok := parseHead(buf, &got, &u)
	if !ok {
		if n != 0 {
			t.Fatalf("%q: declined but consumed %d bytes", raw, n)
		}
		if string(buf) != raw {
			t.Fatalf("%q: declined but changed the bytes to %q", raw, buf)
		}
		return false
	}
	br := bufio.NewReader(strings.NewReader(raw))
	want, err := http.ReadRequest(br)
	if err != nil {
		t.Fatalf("%q: parseHead took a head http.ReadRequest refuses: %v", raw, err)
	}
	if consumed := len(raw) - br.Buffered(); consumed != n {
		t.Fatalf("%q: parseHead consumed %d bytes, ReadRequest %d", raw, n, consumed)
	}
	if want.Body != http.NoBody || got.Body != http.NoBody {
		t.Fatalf("%q: bodies %T (ReadRequest) and %T", raw, want.Body, got.Body)
	}
	same := func(field string, a, b any) {
		t.Helper()
		if !reflect.DeepEqual(a, b) {
			t.Fatalf("%q: %s: parseHead %#v, ReadRequest %#v", raw, field, a, b)
		}
	}
	same("Method", got.Method, want.Method)
	same("RequestURI", got.RequestURI, want.RequestURI)
	same("URL", *got.URL, *want.URL)
	same("Proto", got.Proto, want.Proto)
	same("ProtoMajor", got.ProtoMajor, want.ProtoMajor)
	same("ProtoMinor", got.ProtoMinor, want.ProtoMinor)
	same("Header", got.Header, want.Header)
	same("Host", got.Host, want.Host)
	same("Close", got.Close, want.Close)
	same("ContentLength", got.ContentLength, want.ContentLength)
	same("TransferEncoding", got.TransferEncoding, want.TransferEncoding)
	same("Trailer", got.Trailer, want.Trailer)
	// Everything else ReadRequest sets: nothing, as for parseHead.
	got.Method, got.RequestURI, got.URL, got.Proto, got.ProtoMajor, got.ProtoMinor = "", "", nil, "", 0, 0
	got.Header, got.Host, got.Close, got.ContentLength, got.Body = nil, "", false, 0, nil
	if !reflect.DeepEqual(got, http.Request{}) {
		t.Fatalf("%q: parseHead set more fields than compared: %#v", raw, got)
	}
	return true
}

// The heads real clients send take the fast path, and read as
// ReadRequest reads them.
func TestParseHeadTakes(t *testing.T) {
	for _, raw := range []string{
		"GET / HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n",
		"GET /ping HTTP/1.1\r\nHost: localhost:8080\r\nUser-Agent: curl/8.5.0\r\nAccept: */*\r\n\r\n",
		"GET /v1/users/7?expand=orders&limit=10 HTTP/1.1\r\nHost: api.example.com\r\nAccept: application/json\r\nAuthorization: Bearer abc.def.ghi\r\nX-Api-Key: k-123\r\n\r\n",
		"GET /a? HTTP/1.1\r\nHost: h\r\n\r\n",            // ForceQuery
		"GET /a?b?c HTTP/1.1\r\nHost: h\r\n\r\n",         // a second ? stays in the query
		"GET /a?x=%20&y=[1] HTTP/1.1\r\nHost: h\r\n\r\n", // escapes in the query are kept raw
		"GET //double/slash HTTP/1.1\r\nHost: h\r\n\r\n",
		"GET /~u/a-b_c.d$e&f+g,h:i;j=k@l HTTP/1.1\r\nHost: h\r\n\r\n",
		"get /lower-method HTTP/1.1\r\nHost: h\r\n\r\n",
		"PURGE /custom HTTP/1.1\r\nHost: h\r\n\r\n",
		"DELETE /x HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n",
		"POST /x HTTP/1.1\r\nHost: h\r\ncontent-length:  0 \r\n\r\n",
		"GET / HTTP/1.1\r\nhost: h\r\nuser-agent: k6\r\nx-REQUEST-id: abc\r\nACCEPT-ENCODING: gzip\r\n\r\n", // names in any case
		"GET / HTTP/1.1\r\nHost: h\r\nX-Dup: 1\r\nX-Other: 2\r\nx-dup: 3\r\n\r\n",                           // repeated field
		"GET / HTTP/1.1\r\nHost: h\r\nX-Empty:\r\nX-Spaces: \t a b \t \r\n\r\n",
		"GET / HTTP/1.1\r\nHost: h\r\nX-Obs-Text: caf\xc3\xa9\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: h\r\nConnection: keep-alive, Upgrade\r\nUpgrade: websocket\r\n\r\n",
		"GET / HTTP/1.0\r\n\r\n",
		"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
		"GET / HTTP/1.1\r\n\r\n", // no Host: readRequest refuses it afterwards
		"GET / HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: h\r\n\r\nGET /next HTTP/1.1\r\n", // pipelined: only the first head
	} {
		if !checkHead(t, raw) {
			t.Errorf("%q: parseHead declined a common head", raw)
		}
	}
}

// Everything out of the ordinary is left to http.ReadRequest, untouched.
func TestParseHeadDeclines(t *testing.T) {
	for _, raw := range []string{
		"",
		"GET / HTTP/1.1\r\nHost: h\r\n",   // head not complete
		"GET / HTTP/1.1\nHost: h\n\n",     // bare LF
		"GET / HTTP/1.1\r\nHost: h\n\r\n", // bare LF in a field line
		"GET / HTTP/1.1\r\nHost: h\r\n X-Fold\r\n\r\n", // obs-fold
		"GET / HTTP/1.1\r\nX-A: 1\r\n\tfolded\r\nHost: h\r\n\r\n",
		"GET / HTTP/1.1\r\n Host: h\r\n\r\n",
		"GET http://h/ HTTP/1.1\r\nHost: h\r\n\r\n", // absolute form
		"CONNECT h:443 HTTP/1.1\r\nHost: h:443\r\n\r\n",
		"OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n",
		"GET /a%20b HTTP/1.1\r\nHost: h\r\n\r\n", // escaped path: RawPath
		"GET /a\"b HTTP/1.1\r\nHost: h\r\n\r\n",
		"GET /a#frag HTTP/1.1\r\nHost: h\r\n\r\n",
		"GET /caf\xc3\xa9 HTTP/1.1\r\nHost: h\r\n\r\n",
		"GET /a?\x7f HTTP/1.1\r\nHost: h\r\n\r\n",
		"GET /a?\xff HTTP/1.1\r\nHost: h\r\n\r\n",
		"GET /a b HTTP/1.1\r\nHost: h\r\n\r\n",
		"GET  / HTTP/1.1\r\nHost: h\r\n\r\n",
		"GET / HTTP/1.2\r\nHost: h\r\n\r\n",
		"GET / HTTP/2.0\r\nHost: h\r\n\r\n",
		"GET / http/1.1\r\nHost: h\r\n\r\n",
		"GET / HTTP/1.1 \r\nHost: h\r\n\r\n",
		"G(T / HTTP/1.1\r\nHost: h\r\n\r\n",
		" GET / HTTP/1.1\r\nHost: h\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello",
		"GET / HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\nContent-Length: 0\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: h\r\nContent-Length: 00\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: h\r\nContent-Length:\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: h\r\nTrailer: X\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: h\r\nPragma: no-cache\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: h\r\nX Bad: 1\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: h\r\nX-Bad : 1\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: h\r\n: empty-name\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: h\r\nNoColon\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: h\r\nX-Ctl: a\x01b\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: h\r\nX-Del: a\x7fb\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: h\r\nX-CR: a\rb\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: h\r\nX-Nul: a\x00b\r\n\r\n",
	} {
		if checkHead(t, raw) {
			t.Errorf("%q: parseHead took a head it should leave to ReadRequest", raw)
		}
	}
}

// FuzzParseHead holds parseHead to http.ReadRequest on whatever heads it
// takes: same request, same bytes consumed.
func FuzzParseHead(f *testing.F) {
	for _, s := range []string{
		"GET / HTTP/1.1\r\nHost: h\r\n\r\n",
		"GET /a?b HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
		"POST /x HTTP/1.1\r\nhost: h\r\ncontent-length: 0\r\nx-a: 1\r\nX-A: 2\r\n\r\n",
		"GET /a%2F? HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n",
		"get //x/../y? HTTP/1.1\r\nConnection: Close\r\nExpect: 100-continue\r\n\r\n",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		checkHead(t, raw)
	})
}

// A request read by parseHead allocates its head's copy, the values'
// array and the header map, nothing else.
func TestParseHeadAllocations(t *testing.T) {
	raw := []byte("GET /v1/users/7?expand=orders HTTP/1.1\r\nhost: api.example.com\r\nUser-Agent: wrk\r\nAccept: */*\r\n\r\n")
	buf := make([]byte, len(raw))
	var req http.Request
	var u url.URL
	allocs := testing.AllocsPerRun(100, func() {
		copy(buf, raw)
		if _, ok := parseHead(buf, &req, &u); !ok {
			t.Fatal("declined")
		}
	})
	if allocs > 4 {
		t.Fatalf("parseHead: %.1f allocations per head, want at most 4", allocs)
	}
	if !bytes.Contains(buf, []byte("\r\nHost: ")) {
		t.Fatalf("field name not rewritten in canonical case: %q", buf)
	}
}
