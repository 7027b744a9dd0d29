package h1server

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// diffHandler is the handler both servers run in the differential test.
// Every answer sets Content-Type: net/http sniffs one when it is
// missing, h1server on purpose does not.
func diffHandler(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	num := func(k string, def int) int {
		if v := q.Get(k); v != "" {
			n, err := strconv.Atoi(v)
			if err == nil {
				return n
			}
		}
		return def
	}
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	switch r.URL.Path {
	case "/probe":
		_, _ = io.WriteString(w, "probe")
	case "/echo":
		echo(w, r)
	case "/cl":
		n := num("n", 10)
		h.Set("Content-Length", strconv.Itoa(n))
		_, _ = w.Write(patternBody(n))
	case "/nocl":
		// n bytes without Content-Length, in writes of at most w bytes.
		n, size := num("n", 10), num("w", 1<<30)
		p := patternBody(n)
		for len(p) > 0 {
			k := min(size, len(p))
			_, _ = w.Write(p[:k])
			p = p[k:]
		}
	case "/flush":
		_, _ = io.WriteString(w, "hello ")
		w.(http.Flusher).Flush()
		_, _ = io.WriteString(w, "world")
	case "/status":
		code := num("code", 200)
		if v := q.Get("cl"); v != "" {
			h.Set("Content-Length", v)
		}
		if q.Has("noct") {
			h.Del("Content-Type")
		}
		h.Set("Etag", `"x"`)
		w.WriteHeader(code)
		if b := q.Get("body"); b != "" {
			_, _ = io.WriteString(w, b)
		}
	case "/early":
		h.Add("Link", "</style.css>; rel=preload; as=style")
		w.WriteHeader(http.StatusEarlyHints)
		h.Add("Link", "</script.js>; rel=preload; as=script")
		_, _ = io.WriteString(w, "page")
	case "/trailer":
		h.Set("Trailer", "X-Sum, X-Other")
		_, _ = io.WriteString(w, "body with trailers")
		h.Set("X-Sum", "42")
		h.Set("X-Other", "yes")
	case "/trailer-early":
		// Declared trailers, head sent before the values are set.
		h.Set("Trailer", "X-Sum")
		w.WriteHeader(http.StatusOK)
		w.(http.Flusher).Flush()
		_, _ = io.WriteString(w, "body")
		h.Set("X-Sum", "42")
	case "/trailer-prefix-flushed":
		// The trailer's name is known only after the head went out:
		// what http.TrailerPrefix is for.
		_, _ = io.WriteString(w, "streamed ")
		w.(http.Flusher).Flush()
		_, _ = io.WriteString(w, "body")
		h.Set(http.TrailerPrefix+"X-Sum", "44")
	case "/trailer-prefix":
		_, _ = io.WriteString(w, "body with prefixed trailer")
		h.Set(http.TrailerPrefix+"X-Sum", "43")
	case "/close":
		h.Set("Connection", "close")
		_, _ = io.WriteString(w, "closing")
	case "/noread":
		_, _ = io.WriteString(w, "not read")
	case "/unauth":
		h.Set("Www-Authenticate", `Basic realm="x"`)
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = io.WriteString(w, "no")
	case "/late":
		w.WriteHeader(http.StatusOK)
		h.Set("X-Late", "set after WriteHeader")
		_, _ = io.WriteString(w, "late")
	case "/short":
		// Fewer bytes than the declared length: the connection closes.
		h.Set("Content-Length", "10")
		_, _ = io.WriteString(w, "hello")
	case "/bigheader":
		h.Set("X-Big", strings.Repeat("v", num("n", 20000)))
		h.Set("X-Small", "s")
		_, _ = io.WriteString(w, "big header")
	case "/te":
		// A Transfer-Encoding set by the handler.
		h.Set("Transfer-Encoding", q.Get("te"))
		_, _ = io.WriteString(w, "te")
	case "/nodate":
		h["Date"] = nil // the handler asks for no Date
		_, _ = io.WriteString(w, "no date")
	case "/closebody":
		_ = r.Body.Close()
		_, _ = io.WriteString(w, "closed body")
	case "/plus":
		h.Set("Content-Length", "+5")
		_, _ = io.WriteString(w, "hello")
	case "/badcl":
		h.Set("Content-Length", "abc")
		_, _ = io.WriteString(w, "hello")
	default:
		http.NotFound(w, r)
	}
}

// echo answers with what the handler saw of the request.
func echo(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	var b strings.Builder
	fmt.Fprintf(&b, "method=%s uri=%s host=%s proto=%s close=%v cl=%d te=%q\n",
		r.Method, r.RequestURI, r.Host, r.Proto, r.Close, r.ContentLength, r.TransferEncoding)
	fmt.Fprintf(&b, "url=%s\n", r.URL.String())
	for _, k := range sortedKeys(r.Header) {
		fmt.Fprintf(&b, "h %s=%q\n", k, r.Header[k])
	}
	if len(body) > 64 {
		fmt.Fprintf(&b, "body %d bytes\n", len(body))
	} else {
		fmt.Fprintf(&b, "body=%q\n", body)
	}
	if err != nil {
		fmt.Fprintf(&b, "bodyerr=%v\n", err)
	}
	for _, k := range sortedKeys(r.Trailer) {
		fmt.Fprintf(&b, "t %s=%q\n", k, r.Trailer[k])
	}
	_, _ = io.WriteString(w, b.String())
}

type diffCase struct {
	name    string
	raw     string
	methods []string // one per expected answer; default one GET
	// ignore lists header fields left out of the comparison.
	ignore []string
	// When ours is set the two servers legitimately differ: ours
	// asserts h1server's answer and std net/http's, and no equality is
	// required.
	ours func(t *testing.T, e *exchange)
	std  func(t *testing.T, e *exchange)
}

const host = "Host: example.com\r\n"

func get(path string) string { return "GET " + path + " HTTP/1.1\r\n" + host + "\r\n" }

func TestDifferential(t *testing.T) {
	const maxHeader = 4096 // limit with slack: 8 KiB
	_, oursAddr := startOurs(t, http.HandlerFunc(diffHandler), func(s *Server) {
		s.MaxHeaderBytes = maxHeader
	})
	_, stdAddr := startStd(t, http.HandlerFunc(diffHandler), func(s *http.Server) {
		s.MaxHeaderBytes = maxHeader
	})

	big300k := string(patternBody(300 << 10))
	cases := []diffCase{
		// Answers with and without Content-Length.
		{name: "GET with CL", raw: get("/cl?n=10")},
		{name: "HEAD with CL", raw: "HEAD /cl?n=10 HTTP/1.1\r\n" + host + "\r\n", methods: []string{"HEAD"}},
		{name: "GET short no CL", raw: get("/nocl?n=100")},
		{name: "HEAD short no CL", raw: "HEAD /nocl?n=100 HTTP/1.1\r\n" + host + "\r\n", methods: []string{"HEAD"}},
		{name: "GET empty no CL", raw: get("/nocl?n=0")},
		{name: "HEAD empty", raw: "HEAD /nocl?n=0 HTTP/1.1\r\n" + host + "\r\n", methods: []string{"HEAD"}},
		{name: "GET 5000 no CL one write", raw: get("/nocl?n=5000")},
		{name: "GET 5000 no CL small writes", raw: get("/nocl?n=5000&w=100")},
		{name: "GET 70000 no CL", raw: get("/nocl?n=70000&w=1000")},
		{name: "GET 70000 with CL", raw: get("/cl?n=70000")},
		{
			// net/http holds 2 KiB before choosing chunked framing,
			// h1server 4 KiB: between the two, only h1server knows the
			// length.
			name: "GET 3000 no CL", raw: get("/nocl?n=3000"),
			ours: func(t *testing.T, e *exchange) {
				a := one(t, e, 200, false)
				if a.Length != 3000 || len(a.TE) != 0 || len(a.Body) != 3000 {
					t.Errorf("want Content-Length 3000, got %d %q %d", a.Length, a.TE, len(a.Body))
				}
			},
			std: func(t *testing.T, e *exchange) {
				a := one(t, e, 200, false)
				if !slices.Equal(a.TE, []string{"chunked"}) || len(a.Body) != 3000 {
					t.Errorf("want chunked, got %q %d", a.TE, len(a.Body))
				}
			},
		},
		{
			// A HEAD answer of a long body: h1server counts the whole
			// body, net/http gives no length past its 2 KiB buffer.
			name: "HEAD 70000 no CL", raw: "HEAD /nocl?n=70000&w=1000 HTTP/1.1\r\n" + host + "\r\n", methods: []string{"HEAD"},
			ours: func(t *testing.T, e *exchange) {
				a := one(t, e, 200, false)
				if a.Header.Get("Content-Length") != "70000" || a.Body != "" {
					t.Errorf("want Content-Length 70000 and no body, got %q %q", a.Header.Get("Content-Length"), a.Body)
				}
			},
			std: func(t *testing.T, e *exchange) {
				a := one(t, e, 200, false)
				if a.Header.Get("Content-Length") != "" || a.Body != "" {
					t.Errorf("net/http: %v", e)
				}
			},
		},
		{name: "Flush mid-answer", raw: get("/flush")},
		{name: "header set after WriteHeader", raw: get("/late")},
		{name: "fewer bytes than CL", raw: get("/short")},
		{
			name: "no Date asked", raw: get("/nodate"),
			ours: func(t *testing.T, e *exchange) { noDate(t, e) },
			std:  func(t *testing.T, e *exchange) { noDate(t, e) },
		},
		{name: "CL +5 from handler", raw: get("/plus")},
		{name: "response head over 4 KiB", raw: get("/bigheader?n=20000")},
		{name: "response head over 64 KiB", raw: get("/bigheader?n=70000")},
		{
			// A Transfer-Encoding from the handler: framing is the
			// server's to choose. net/http chunks, h1server counts the
			// short body.
			name: "handler TE chunked", raw: get("/te?te=chunked"),
			ours: func(t *testing.T, e *exchange) {
				if a := one(t, e, 200, false); a.Length != 2 || len(a.TE) != 0 || a.Body != "te" {
					t.Errorf("%v", e)
				}
			},
			std: func(t *testing.T, e *exchange) {
				if a := one(t, e, 200, false); len(a.TE) != 1 || a.Body != "te" {
					t.Errorf("%v", e)
				}
			},
		},
		{
			// An invalid Content-Length from the handler is dropped by
			// both; h1server then counts the short body, net/http chunks.
			name: "invalid CL from handler", raw: get("/badcl"),
			ours: func(t *testing.T, e *exchange) {
				a := one(t, e, 200, false)
				if a.Length != 5 || a.Body != "hello" || len(a.Header["Content-Length"]) != 1 {
					t.Errorf("want Content-Length 5: %v", e)
				}
			},
			std: func(t *testing.T, e *exchange) {
				a := one(t, e, 200, false)
				if !slices.Equal(a.TE, []string{"chunked"}) || a.Body != "hello" {
					t.Errorf("net/http: %v", e)
				}
			},
		},

		// Statuses without a body.
		{name: "204", raw: get("/status?code=204")},
		{name: "204 with CL and body", raw: get("/status?code=204&cl=5&body=hello")},
		{name: "HEAD 204", raw: "HEAD /status?code=204 HTTP/1.1\r\n" + host + "\r\n", methods: []string{"HEAD"}},
		{name: "304 no CL", raw: get("/status?code=304&noct")},
		{
			// h1server keeps a 304's Content-Length and Content-Type
			// (they describe the stored answer); net/http drops both.
			name: "304 with CL", raw: get("/status?code=304&cl=1234"),
			ours: func(t *testing.T, e *exchange) {
				a := one(t, e, 304, false)
				if a.Header.Get("Content-Length") != "1234" || a.Header.Get("Content-Type") == "" || a.Body != "" {
					t.Errorf("want CL 1234 and Content-Type kept: %v", e)
				}
			},
			std: func(t *testing.T, e *exchange) {
				a := one(t, e, 304, false)
				if a.Header.Get("Content-Length") != "" || a.Header.Get("Content-Type") != "" {
					t.Errorf("net/http: %v", e)
				}
			},
		},
		{name: "418 with body", raw: get("/status?code=418&body=teapot")},
		{name: "299 unknown status", raw: get("/status?code=299&body=x")},
		{name: "103 Early Hints", raw: get("/early")},

		// Trailers.
		{name: "trailers declared", raw: get("/trailer")},
		{name: "trailers declared, head flushed first", raw: get("/trailer-early")},
		{
			// HTTP/1.0 has no trailers: net/http drops them and ends the
			// body with the connection; h1server drops them too and
			// sends the length.
			name: "trailers declared HTTP/1.0", raw: "GET /trailer HTTP/1.0\r\n\r\n",
			ours: func(t *testing.T, e *exchange) {
				a := one(t, e, 200, true)
				if a.Length != 18 || a.Header.Get("X-Sum") != "" || a.Body != "body with trailers" {
					t.Errorf("%v", e)
				}
			},
			std: func(t *testing.T, e *exchange) {
				a := one(t, e, 200, true)
				if a.Length != -1 || a.Header.Get("X-Sum") != "" || a.Body != "body with trailers" {
					t.Errorf("%v", e)
				}
			},
		},
		{name: "trailers via TrailerPrefix", raw: get("/trailer-prefix")},

		// HTTP/1.0 and Connection: close. net/http answers a closing
		// HTTP/1.0 request without a Connection field, h1server with
		// "Connection: close": both mean the same to a 1.0 client (the
		// parsed answers compare Close, not the field).
		{name: "HTTP/1.0", raw: "GET /echo HTTP/1.0\r\n\r\n", ignore: []string{"Connection"}},
		{name: "HTTP/1.0 Host", raw: "GET /echo HTTP/1.0\r\n" + host + "\r\n", ignore: []string{"Connection"}},
		{name: "HTTP/1.0 keep-alive short", raw: "GET /echo HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"},
		{name: "HTTP/1.0 keep-alive long no CL", raw: "GET /nocl?n=70000&w=1000 HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", ignore: []string{"Connection"}},
		{name: "HTTP/1.0 keep-alive HEAD", raw: "HEAD /nocl?n=0 HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", methods: []string{"HEAD"}},
		{name: "HTTP/1.0 keep-alive 204", raw: "GET /status?code=204 HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"},
		{name: "HTTP/1.0 keep-alive with CL", raw: "GET /cl?n=10 HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"},
		{name: "client Connection: close", raw: "GET /echo HTTP/1.1\r\n" + host + "Connection: close\r\n\r\n"},
		{name: "handler Connection: close", raw: get("/close")},

		// Pipelining.
		{
			name: "pipelined three",
			raw: get("/cl?n=3") +
				"POST /echo HTTP/1.1\r\n" + host + "Content-Length: 5\r\n\r\nhello" +
				get("/nocl?n=5000"),
			methods: []string{"GET", "POST", "GET"},
		},
		{
			name:    "Connection: close, then a pipelined request",
			raw:     "GET /cl?n=1 HTTP/1.1\r\n" + host + "Connection: close\r\n\r\n" + get("/cl?n=2"),
			methods: []string{"GET", "GET"},
		},
		{
			name:    "HTTP/1.0 keep-alive pipelined",
			raw:     "GET /cl?n=1 HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET /cl?n=2 HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
			methods: []string{"GET", "GET"},
		},
		{
			// The body follows the head at once, without waiting for
			// 100 Continue (RFC 9110 allows it).
			name:    "Expect 100-continue, body at once, pipelined",
			raw:     "PUT /cl?n=1 HTTP/1.1\r\n" + host + "Expect: 100-continue\r\nContent-Length: 5\r\n\r\nhello" + get("/cl?n=2"),
			methods: []string{"PUT", "GET"},
		},
		{
			name:    "pipelined with HEAD",
			raw:     "HEAD /nocl?n=100 HTTP/1.1\r\n" + host + "\r\n" + get("/cl?n=4"),
			methods: []string{"HEAD", "GET"},
		},

		// Request bodies.
		{name: "body CL", raw: "POST /echo HTTP/1.1\r\n" + host + "Content-Length: 11\r\n\r\nhello world", methods: []string{"POST"}},
		{name: "body chunked", raw: "POST /echo HTTP/1.1\r\n" + host + "Transfer-Encoding: chunked\r\n\r\n" + chunked([]byte("hello chunked world"), 5, ""), methods: []string{"POST"}},
		{
			name:    "body chunked with trailers",
			raw:     "POST /echo HTTP/1.1\r\n" + host + "Transfer-Encoding: chunked\r\nTrailer: X-Sum\r\n\r\n" + chunked([]byte("hello"), 2, "X-Sum: 7\r\n"),
			methods: []string{"POST"},
		},
		{name: "body closed unread small", raw: "POST /closebody HTTP/1.1\r\n" + host + "Content-Length: 1000\r\n\r\n" + string(patternBody(1000)), methods: []string{"POST"}},
		{name: "body closed unread 300K", raw: "POST /closebody HTTP/1.1\r\n" + host + "Content-Length: " + strconv.Itoa(len(big300k)) + "\r\n\r\n" + big300k, methods: []string{"POST"}},
		{name: "body CL not read small", raw: "POST /noread HTTP/1.1\r\n" + host + "Content-Length: 1000\r\n\r\n" + string(patternBody(1000)), methods: []string{"POST"}},
		{name: "body chunked not read small", raw: "POST /noread HTTP/1.1\r\n" + host + "Transfer-Encoding: chunked\r\n\r\n" + chunked(patternBody(1000), 100, ""), methods: []string{"POST"}},
		{name: "body chunked not read 300K", raw: "POST /noread HTTP/1.1\r\n" + host + "Transfer-Encoding: chunked\r\n\r\n" + chunked([]byte(big300k), 16<<10, ""), methods: []string{"POST"}},
		{name: "bad chunk size", raw: "POST /echo HTTP/1.1\r\n" + host + "Transfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n", methods: []string{"POST"}},
		{name: "body CL not read 300K", raw: "POST /noread HTTP/1.1\r\n" + host + "Content-Length: " + strconv.Itoa(len(big300k)) + "\r\n\r\n" + big300k, methods: []string{"POST"}},

		// Malformed requests: answered before any handler.
		{name: "bad request line", raw: "GARBAGE\r\n\r\n", ours: problem(400), std: plain(400)},
		{name: "bad method", raw: "G(T / HTTP/1.1\r\n" + host + "\r\n", ours: problem(400), std: plain(400)},
		{name: "bad header name", raw: "GET / HTTP/1.1\r\n" + host + "Bad Name: v\r\n\r\n", ours: problem(400), std: plain(400)},
		{name: "header without colon", raw: "GET / HTTP/1.1\r\n" + host + "NoColon\r\n\r\n", ours: problem(400), std: plain(400)},
		{name: "CR in value", raw: "GET / HTTP/1.1\r\n" + host + "X-A: a\rb\r\n\r\n", ours: problem(400), std: plain(400)},
		{name: "NUL in value", raw: "GET / HTTP/1.1\r\n" + host + "X-A: a\x00b\r\n\r\n", ours: problem(400), std: plain(400)},
		{name: "obs-fold", raw: "GET /echo HTTP/1.1\r\n" + host + "X-A: a\r\n b\r\n\r\n"},
		{name: "missing Host on 1.1", raw: "GET /echo HTTP/1.1\r\n\r\n", ours: problem(400), std: plain(400)},
		{name: "two Host", raw: "GET /echo HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", ours: problem(400), std: plain(400)},
		{name: "malformed Host", raw: "GET /echo HTTP/1.1\r\nHost: a b\r\n\r\n", ours: problem(400), std: plain(400)},
		{name: "CL and TE", raw: "POST /echo HTTP/1.1\r\n" + host + "Content-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n" + chunked([]byte("abcdef"), 3, ""), methods: []string{"POST"}},
		{name: "two CL same", raw: "POST /echo HTTP/1.1\r\n" + host + "Content-Length: 3\r\nContent-Length: 3\r\n\r\nabc", methods: []string{"POST"}},
		{name: "two CL differ", raw: "POST /echo HTTP/1.1\r\n" + host + "Content-Length: 3\r\nContent-Length: 4\r\n\r\nabcd", ours: problem(400), std: plain(400)},
		{name: "CL not a number", raw: "POST /echo HTTP/1.1\r\n" + host + "Content-Length: 3x\r\n\r\nabc", ours: problem(400), std: plain(400)},
		{name: "TE gzip", raw: "POST /echo HTTP/1.1\r\n" + host + "Transfer-Encoding: gzip\r\n\r\nabc", ours: problem(501), std: plain(501)},
		{name: "TE gzip, chunked", raw: "POST /echo HTTP/1.1\r\n" + host + "Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", ours: problem(501), std: plain(501)},
		{name: "two TE", raw: "POST /echo HTTP/1.1\r\n" + host + "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", ours: problem(501), std: plain(501)},
		{name: "TE on HTTP/1.0 ignored", raw: "POST /echo HTTP/1.0\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\nabc", methods: []string{"POST"}, ignore: []string{"Connection"}},
		{name: "head over MaxHeaderBytes", raw: "GET / HTTP/1.1\r\n" + host + "X-Big: " + strings.Repeat("b", 3*maxHeader) + "\r\n\r\n", ours: problem(431), std: plain(431)},
		{name: "request line over MaxHeaderBytes", raw: "GET /" + strings.Repeat("p", 3*maxHeader) + " HTTP/1.1\r\n" + host + "\r\n", ours: problem(431), std: plain(431)},
		{
			// net/http hands "PRI * HTTP/2.0" to the handler (so it may
			// take the connection over); h1server refuses it: 505.
			name: "HTTP/2 preface", raw: "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
			ours: problem(505),
			std: func(t *testing.T, e *exchange) {
				one(t, e, 404, true)
			},
		},
		{name: "HTTP/2.0 GET", raw: "GET / HTTP/2.0\r\n" + host + "\r\n", ours: problem(505), std: plain(505)},
		{name: "HTTP/0.9 request", raw: "GET /\r\n", ours: problem(400), std: plain(400)},
		{name: "HTTP/0.9 version", raw: "GET / HTTP/0.9\r\n\r\n", ours: problem(505), std: plain(505)},
		{name: "HTTP/1.2", raw: "GET /echo HTTP/1.2\r\n" + host + "\r\n"},
		{name: "Expect other", raw: "POST /echo HTTP/1.1\r\n" + host + "Expect: something\r\nContent-Length: 1\r\n\r\nx", ours: problem(417), std: plain(417)},
		{name: "absolute-form", raw: "GET http://example.com/echo?x=1 HTTP/1.1\r\n" + host + "\r\n"},
		{name: "absolute-form no Host", raw: "GET http://example.com/echo HTTP/1.1\r\n\r\n", ours: problem(400), std: plain(400)},
		{name: "absolute-form other Host", raw: "GET http://example.com/echo?x=1 HTTP/1.1\r\nHost: other.example\r\n\r\n"},
		{
			// An empty Host field is valid (RFC 9110 §7.2) and net/http
			// serves it; h1server refuses it as missing.
			name: "empty Host", raw: "GET /echo HTTP/1.1\r\nHost:\r\n\r\n",
			ours: problem(400),
			std: func(t *testing.T, e *exchange) {
				one(t, e, 200, false)
			},
		},
		{name: "OPTIONS *", raw: "OPTIONS * HTTP/1.1\r\n" + host + "\r\n"},
		{name: "CONNECT", raw: "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n"},
		{name: "CONNECT no Host", raw: "CONNECT example.com:443 HTTP/1.1\r\n\r\n"},
		{
			// RFC 9112 §2.2: a server SHOULD ignore at least one empty
			// line before a request line. h1server does (up to four);
			// net/http only after a POST.
			name: "leading CRLF", raw: "\r\n" + get("/cl?n=1"),
			ours: func(t *testing.T, e *exchange) {
				if a := one(t, e, 200, false); a.Body != "a" {
					t.Errorf("body %q", a.Body)
				}
			},
			std: plain(400),
		},
		{name: "POST with extra CRLF then GET", raw: "POST /echo HTTP/1.1\r\n" + host + "Content-Length: 2\r\n\r\nhi\r\n" + get("/cl?n=1"), methods: []string{"POST", "GET"}},
		{name: "lowercase chunked", raw: "POST /echo HTTP/1.1\r\n" + host + "Transfer-Encoding: Chunked\r\n\r\n" + chunked([]byte("abc"), 3, ""), methods: []string{"POST"}},
		{name: "Pragma no-cache", raw: "GET /echo HTTP/1.1\r\n" + host + "Pragma: no-cache\r\n\r\n"},
	}

	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			methods := tc.methods
			if methods == nil {
				methods = []string{"GET"}
			}
			got := roundTrip(t, oursAddr, tc.raw, methods)
			want := roundTrip(t, stdAddr, tc.raw, methods)
			if tc.ours != nil {
				t.Run("h1server", func(t *testing.T) { tc.ours(t, got) })
				if tc.std != nil {
					t.Run("net/http", func(t *testing.T) { tc.std(t, want) })
				}
				if t.Failed() {
					t.Logf("h1server:\n%v\nnet/http:\n%v", got, want)
				}
				return
			}
			for _, e := range []*exchange{got, want} {
				for i := range e.Answers {
					for _, k := range tc.ignore {
						e.Answers[i].Header.Del(k)
					}
				}
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("answers differ\nh1server:\n%v\nnet/http:\n%v", got, want)
			}
		})
	}
}

// one checks an exchange of exactly one answer.
func one(t *testing.T, e *exchange, status int, closed bool) answer {
	t.Helper()
	if len(e.Answers) != 1 {
		t.Fatalf("want 1 answer, got %d: %v", len(e.Answers), e)
	}
	a := e.Answers[0]
	if a.Status != status {
		t.Errorf("status %d, want %d", a.Status, status)
	}
	if e.Closed != closed {
		t.Errorf("closed=%v, want %v", e.Closed, closed)
	}
	return a
}

// problem asserts h1server's answer to a request refused before the
// handler: problem+json with the status, Connection: close, closed.
func problem(status int) func(*testing.T, *exchange) {
	return func(t *testing.T, e *exchange) {
		t.Helper()
		a := one(t, e, status, true)
		if ct := a.Header.Get("Content-Type"); ct != "application/problem+json" {
			t.Errorf("Content-Type %q", ct)
		}
		if !a.Close {
			t.Error("no Connection: close")
		}
		var p struct {
			Type   string `json:"type"`
			Title  string `json:"title"`
			Status int    `json:"status"`
			Detail string `json:"detail"`
		}
		if err := json.Unmarshal([]byte(a.Body), &p); err != nil {
			t.Fatalf("body %q: %v", a.Body, err)
		}
		if p.Status != status || p.Title != http.StatusText(status) || !strings.HasPrefix(p.Type, "urn:portunus:problem:") || p.Detail == "" {
			t.Errorf("problem %+v", p)
		}
		if a.Length != int64(len(a.Body)) {
			t.Errorf("Content-Length %d for %d bytes", a.Length, len(a.Body))
		}
	}
}

// plain asserts net/http's answer to a request refused before the
// handler: the status, then the connection closes.
func plain(status int) func(*testing.T, *exchange) {
	return func(t *testing.T, e *exchange) {
		t.Helper()
		one(t, e, status, true)
	}
}

// TestDifferentialExpectContinue compares the 100-continue exchange: a
// client that waits for 100 Continue before the body, and a handler that
// answers without reading the body (no 100, connection closed).
func TestDifferentialExpectContinue(t *testing.T) {
	_, oursAddr := startOurs(t, http.HandlerFunc(diffHandler), nil)
	_, stdAddr := startStd(t, http.HandlerFunc(diffHandler), nil)

	waitContinue := func(t *testing.T, addr string) *exchange {
		c := dial(t, addr)
		br := bufio.NewReader(c)
		head := "PUT /echo HTTP/1.1\r\n" + host + "Expect: 100-continue\r\nContent-Length: 5\r\n\r\n"
		if _, err := io.WriteString(c, head); err != nil {
			t.Fatal(err)
		}
		res, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		if res.StatusCode != http.StatusContinue {
			t.Fatalf("got %d before the body, want 100", res.StatusCode)
		}
		if _, err := io.WriteString(c, "hello"); err != nil {
			t.Fatal(err)
		}
		return readExchange(c, br, []string{"PUT"})
	}
	refused := func(t *testing.T, addr string) *exchange {
		c := dial(t, addr)
		br := bufio.NewReader(c)
		head := "PUT /unauth HTTP/1.1\r\n" + host + "Expect: 100-continue\r\nContent-Length: 5\r\n\r\n"
		if _, err := io.WriteString(c, head); err != nil {
			t.Fatal(err)
		}
		// The body is never sent: the answer must come without it.
		return readExchange(c, br, []string{"PUT"})
	}

	t.Run("wait for 100", func(t *testing.T) {
		got, want := waitContinue(t, oursAddr), waitContinue(t, stdAddr)
		// net/http leaves "Expect: 100-continue" in r.Header, h1server
		// removes it (it has been answered): the echoed request differs
		// by that line only.
		want.Answers[0].Body = strings.Replace(want.Answers[0].Body, "h Expect=[\"100-continue\"]\n", "", 1)
		want.Answers[0].Header.Del("Content-Length")
		got.Answers[0].Header.Del("Content-Length")
		want.Answers[0].Length = got.Answers[0].Length
		if !reflect.DeepEqual(got, want) {
			t.Errorf("answers differ\nh1server:\n%v\nnet/http:\n%v", got, want)
		}
		if !strings.Contains(got.Answers[0].Body, `body="hello"`) {
			t.Errorf("body not seen: %v", got)
		}
	})
	t.Run("refused without reading", func(t *testing.T) {
		got, want := refused(t, oursAddr), refused(t, stdAddr)
		if !reflect.DeepEqual(got, want) {
			t.Errorf("answers differ\nh1server:\n%v\nnet/http:\n%v", got, want)
		}
		a := one(t, got, http.StatusUnauthorized, true)
		if !a.Close || len(a.Interim) != 0 {
			t.Errorf("want Connection: close and no 100: %v", got)
		}
	})
	t.Run("HTTP/1.0 ignores Expect", func(t *testing.T) {
		raw := "PUT /echo HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\nhello"
		got, want := roundTrip(t, oursAddr, raw, []string{"PUT"}), roundTrip(t, stdAddr, raw, []string{"PUT"})
		for _, e := range []*exchange{got, want} {
			e.Answers[0].Header.Del("Connection")
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("answers differ\nh1server:\n%v\nnet/http:\n%v", got, want)
		}
	})
}

// noDate checks an answer sent without a Date field (the harness drops
// Date from the parsed header, so this looks at the raw one).
func noDate(t *testing.T, e *exchange) {
	t.Helper()
	a := one(t, e, 200, false)
	if !a.NoDate || a.Body != "no date" {
		t.Errorf("want no Date field: %v", e)
	}
}
