package smuggling

import (
	"bufio"
	"fmt"
	"strings"
	"testing"
)

// fwd is the upstream request the gateway sends for a client request to
// uri on Host: gw, framed by framing ("Content-Length: 5",
// "Transfer-Encoding: chunked" or ""), followed by body as sent on the
// wire.
func fwd(method, uri, framing, body string) string {
	var b strings.Builder
	b.WriteString(method + " " + uri + " HTTP/1.1\r\nHost: <up>\r\n")
	if framing != "" {
		b.WriteString(framing + "\r\n")
	}
	b.WriteString("X-Forwarded-For: 127.0.0.1\r\nX-Forwarded-Host: gw\r\nX-Forwarded-Proto: http\r\nX-Request-Id: <id>\r\n\r\n")
	b.WriteString(body)
	return b.String()
}

// fwdHdr is fwd with extra header lines (sorted before X-Forwarded-For).
func fwdHdr(method, uri, extra string) string {
	return strings.Replace(fwd(method, uri, "", ""), "X-Forwarded-For:", extra+"\r\nX-Forwarded-For:", 1)
}

const (
	ok200      = "HTTP/1.1 200 OK"
	bad400     = "HTTP/1.1 400 Bad Request"
	timeout408 = "HTTP/1.1 408 Request Timeout"
	notImpl501 = "HTTP/1.1 501 Not Implemented"
	notAllowed = "HTTP/1.1 405 Method Not Allowed"
	problemCT  = "application/problem+json"
	upstreamOK = "ok"
)

type row struct {
	name string
	send string
	// answers are the status lines the client reads, in order.
	answers []string
	// code is the problem type of the last answer when the gateway (not
	// net/http's parser) refused the request; "" = not checked.
	code string
	// open: the connection serves a further request (a /probe answered
	// locally); otherwise it must be closed with nothing more sent.
	open bool
	// upstream is exactly what the upstream received ("" = nothing).
	upstream string
	// cut: the gateway abandons the upstream request midway and closes
	// that connection. upstream is then the most it may have received,
	// never a complete request: how much of it went out before the
	// client's body failed depends on the transport's buffering, so any
	// prefix of it (even nothing) is right.
	cut bool
}

const post = "POST /a HTTP/1.1\r\nHost: gw\r\n"

const smuggled = "GET /smuggled HTTP/1.1\r\nHost: gw\r\n\r\n"

// smuggledCL frames smuggled as a Content-Length body; smuggledChunk as
// one chunk.
var (
	smuggledCL    = fmt.Sprintf("Content-Length: %d", len(smuggled))
	smuggledChunk = fmt.Sprintf("%x\r\n%s\r\n0\r\n\r\n", len(smuggled), smuggled)
)

var rows = []row{
	// Content-Length + Transfer-Encoding: served by TE alone, then closed,
	// so nothing after the chunked body is ever read as a request.
	{name: "CL then TE", send: post + "Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
		answers: []string{ok200}, upstream: fwd("POST", "/a", "Transfer-Encoding: chunked", "5\r\nhello\r\n0\r\n\r\n")},
	{name: "TE then CL", send: post + "Transfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
		answers: []string{ok200}, upstream: fwd("POST", "/a", "Transfer-Encoding: chunked", "5\r\nhello\r\n0\r\n\r\n")},
	{name: "CL.TE smuggle after empty chunked body", send: post + "Content-Length: 40\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + smuggled,
		answers: []string{ok200}, upstream: fwd("POST", "/a", "Transfer-Encoding: chunked", "0\r\n\r\n")},
	{name: "TE.CL smuggle inside a chunk", send: post + "Content-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n" + smuggledChunk,
		answers: []string{ok200}, upstream: fwd("POST", "/a", "Transfer-Encoding: chunked", smuggledChunk)},
	{name: "plain chunked body closes too", send: post + "Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
		answers: []string{ok200}, upstream: fwd("POST", "/a", "Transfer-Encoding: chunked", "5\r\nhello\r\n0\r\n\r\n")},
	{name: "HTTP/1.0 TE ignored by CL, closed", send: "POST /a HTTP/1.0\r\nHost: gw\r\nConnection: keep-alive\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\nhello" + smuggled,
		answers: []string{"HTTP/1.0 200 OK"}, upstream: fwd("POST", "/a", "Content-Length: 5", "hello")},

	// Content-Length oddities.
	{name: "duplicate equal CL", send: post + "Content-Length: 5\r\nContent-Length: 5\r\n\r\nhello",
		answers: []string{ok200}, open: true, upstream: fwd("POST", "/a", "Content-Length: 5", "hello")},
	{name: "duplicate differing CL", send: post + "Content-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
		answers: []string{bad400}},
	{name: "CL +5", send: post + "Content-Length: +5\r\n\r\nhello", answers: []string{bad400}},
	{name: "CL with extra leading space", send: post + "Content-Length:  5\r\n\r\nhello",
		answers: []string{ok200}, open: true, upstream: fwd("POST", "/a", "Content-Length: 5", "hello")},
	{name: "CL list 5,5", send: post + "Content-Length: 5,5\r\n\r\nhello", answers: []string{bad400}},
	{name: "CL negative", send: post + "Content-Length: -1\r\n\r\nhello", answers: []string{bad400}},
	{name: "CL hex", send: post + "Content-Length: 0x5\r\n\r\nhello", answers: []string{bad400}},

	// Obfuscated Transfer-Encoding.
	{name: "TE xchunked", send: post + "Transfer-Encoding: xchunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", answers: []string{notImpl501}},
	{name: "TE chunked, identity", send: post + "Transfer-Encoding: chunked, identity\r\n\r\n5\r\nhello\r\n0\r\n\r\n", answers: []string{notImpl501}},
	{name: "TE identity, chunked", send: post + "Transfer-Encoding: identity, chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", answers: []string{notImpl501}},
	{name: "TE with leading space", send: post + "Transfer-Encoding:  chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
		answers: []string{ok200}, upstream: fwd("POST", "/a", "Transfer-Encoding: chunked", "5\r\nhello\r\n0\r\n\r\n")},
	{name: "TE after tab", send: post + "Transfer-Encoding:\tchunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
		answers: []string{ok200}, upstream: fwd("POST", "/a", "Transfer-Encoding: chunked", "5\r\nhello\r\n0\r\n\r\n")},
	{name: "two TE headers", send: post + "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", answers: []string{notImpl501}},
	{name: "space before colon", send: post + "Transfer-Encoding : chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", answers: []string{bad400}},
	{name: "TE upper case CHUNKED", send: post + "Transfer-Encoding: CHUNKED\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
		answers: []string{ok200}, upstream: fwd("POST", "/a", "Transfer-Encoding: chunked", "5\r\nhello\r\n0\r\n\r\n")},

	// Malformed chunked bodies: 400 problem+json from the gateway (never
	// blamed on the upstream), connection closed; the upstream sees an
	// unterminated body on a connection the gateway closes.
	{name: "chunk size -1", send: post + "Transfer-Encoding: chunked\r\n\r\n-1\r\nhello\r\n0\r\n\r\n",
		answers: []string{bad400}, code: "bad-request", cut: true, upstream: fwd("POST", "/a", "Transfer-Encoding: chunked", "")},
	{name: "chunk size 0x5", send: post + "Transfer-Encoding: chunked\r\n\r\n0x5\r\nhello\r\n0\r\n\r\n",
		answers: []string{bad400}, code: "bad-request", cut: true, upstream: fwd("POST", "/a", "Transfer-Encoding: chunked", "")},
	{name: "chunk size overflows", send: post + "Transfer-Encoding: chunked\r\n\r\nffffffffffffffff1\r\nhello\r\n0\r\n\r\n",
		answers: []string{bad400}, code: "bad-request", cut: true, upstream: fwd("POST", "/a", "Transfer-Encoding: chunked", "")},
	{name: "chunk-size line too long", send: post + "Transfer-Encoding: chunked\r\n\r\n5;" + strings.Repeat("x", 8000) + "\r\nhello\r\n0\r\n\r\n",
		answers: []string{bad400}, code: "bad-request", cut: true, upstream: fwd("POST", "/a", "Transfer-Encoding: chunked", "")},
	{name: "missing CRLF after chunk data", send: post + "Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n5\r\nworldXX0\r\n\r\n",
		answers: []string{bad400}, code: "bad-request", cut: true, upstream: fwd("POST", "/a", "Transfer-Encoding: chunked", "a\r\nhelloworld\r\n")},
	{name: "bare LF in chunked framing", send: post + "Transfer-Encoding: chunked\r\n\r\n5\nhello\n0\n\n",
		answers: []string{bad400}, code: "bad-request", cut: true, upstream: fwd("POST", "/a", "Transfer-Encoding: chunked", "")},
	{name: "missing final CRLF stalls into 408", send: post + "Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n",
		answers: []string{timeout408}, code: "request-timeout", cut: true, upstream: fwd("POST", "/a", "Transfer-Encoding: chunked", "5\r\nhello\r\n")},
	{name: "CL body stalls into 408", send: post + "Content-Length: 10\r\n\r\nhello",
		answers: []string{timeout408}, code: "request-timeout", cut: true, upstream: fwd("POST", "/a", "Content-Length: 10", "hello")},

	// Header block oddities.
	{name: "bare LF line endings", send: "GET /a HTTP/1.1\nHost: gw\n\n",
		answers: []string{ok200}, open: true, upstream: fwd("GET", "/a", "", "")},
	{name: "obs-fold joined with a space", send: "GET /a HTTP/1.1\r\nHost: gw\r\nX-A: a\r\n b\r\n\r\n",
		answers: []string{ok200}, open: true, upstream: fwdHdr("GET", "/a", "X-A: a b")},
	{name: "obs-fold on the first line", send: "GET /a HTTP/1.1\r\n Host: gw\r\n\r\n", answers: []string{bad400}},
	{name: "NUL in header value", send: "GET /a HTTP/1.1\r\nHost: gw\r\nX-A: a\x00b\r\n\r\n", answers: []string{bad400}},
	{name: "bare CR in header value", send: "GET /a HTTP/1.1\r\nHost: gw\r\nX-A: a\rb\r\n\r\n", answers: []string{bad400}},
	{name: "no Host in HTTP/1.1", send: "GET /a HTTP/1.1\r\n\r\n", answers: []string{bad400}},
	{name: "two Host headers", send: "GET /a HTTP/1.1\r\nHost: gw\r\nHost: evil\r\n\r\n", answers: []string{bad400}},

	// Request line oddities.
	{name: "double space in request line", send: "GET  /a HTTP/1.1\r\nHost: gw\r\n\r\n", answers: []string{bad400}},
	{name: "HTTP/1.2 served as 1.1", send: "GET /a HTTP/1.2\r\nHost: gw\r\n\r\n",
		answers: []string{ok200}, open: true, upstream: fwd("GET", "/a", "", "")},
	{name: "HTTP/3.0 on an HTTP/1 connection", send: "GET /a HTTP/3.0\r\nHost: gw\r\n\r\n", answers: []string{"HTTP/1.1 505 HTTP Version Not Supported"}},
	{name: "absolute-form", send: "GET http://gw/abs?q=1 HTTP/1.1\r\nHost: other\r\n\r\n",
		answers: []string{ok200}, open: true, upstream: fwd("GET", "/abs?q=1", "", "")},
	{name: "CONNECT refused", send: "CONNECT gw:443 HTTP/1.1\r\nHost: gw:443\r\n\r\n",
		answers: []string{notAllowed}, code: "method-not-allowed", open: true},
	{name: "OPTIONS * answered locally", send: "OPTIONS * HTTP/1.1\r\nHost: gw\r\n\r\n", answers: []string{ok200}, open: true},

	// Pipelining and bodies that look like requests.
	{name: "pipelined requests answered in order", send: "GET /one HTTP/1.1\r\nHost: gw\r\n\r\nPOST /two HTTP/1.1\r\nHost: gw\r\nContent-Length: 3\r\n\r\nabc",
		answers: []string{ok200, ok200}, open: true, upstream: fwd("GET", "/one", "", "") + fwd("POST", "/two", "Content-Length: 3", "abc")},
	{name: "request hidden in a body stays body", send: post + smuggledCL + "\r\n\r\n" + smuggled,
		answers: []string{ok200}, open: true, upstream: fwd("POST", "/a", smuggledCL, smuggled)},
	{name: "request hidden in a GET body stays body", send: "GET /a HTTP/1.1\r\nHost: gw\r\n" + smuggledCL + "\r\n\r\n" + smuggled,
		answers: []string{ok200}, open: true, upstream: fwd("GET", "/a", smuggledCL, smuggled)},

	// WebSocket handshakes: a malformed one never reaches the upstream.
	{name: "websocket without key", send: "GET /ws HTTP/1.1\r\nHost: gw\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n\r\n",
		answers: []string{bad400}, code: "bad-request"},
	{name: "websocket short key", send: "GET /ws HTTP/1.1\r\nHost: gw\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Key: c2hvcnQ=\r\nSec-WebSocket-Version: 13\r\n\r\n",
		answers: []string{bad400}, code: "bad-request"},
	{name: "websocket version 8", send: "GET /ws HTTP/1.1\r\nHost: gw\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 8\r\n\r\n",
		answers: []string{bad400}, code: "bad-request"},
	{name: "websocket by POST", send: "POST /ws HTTP/1.1\r\nHost: gw\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nContent-Length: 0\r\n\r\n",
		answers: []string{bad400}, code: "bad-request"},
	{name: "websocket over HTTP/1.0", send: "GET /ws HTTP/1.0\r\nHost: gw\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
		answers: []string{"HTTP/1.0 400 Bad Request"}, code: "bad-request"},
	{name: "valid websocket upgrade the upstream declines", send: "GET /ws HTTP/1.1\r\nHost: gw\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
		answers: []string{ok200}, open: true,
		upstream: strings.Replace(fwd("GET", "/ws", "Connection: Upgrade", ""), "X-Forwarded-For:", "Sec-Websocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-Websocket-Version: 13\r\nUpgrade: websocket\r\nX-Forwarded-For:", 1)},
	{name: "other upgrade removed", send: "GET /a HTTP/1.1\r\nHost: gw\r\nConnection: Upgrade\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n",
		answers: []string{ok200}, open: true, upstream: fwd("GET", "/a", "", "")},
}

func TestSmugglingTable(t *testing.T) {
	t.Parallel()
	for _, tc := range rows {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			up := newRawUpstream(t)
			addr := startGateway(t, "http://"+up.ln.Addr().String(), "body_read_timeout: 1s")
			c := dial(t, addr)
			if _, err := c.Write([]byte(tc.send)); err != nil {
				t.Fatalf("send: %v", err)
			}
			br := bufio.NewReader(c)
			got, err := readAnswers(br, len(tc.answers))
			if len(got) != len(tc.answers) {
				t.Fatalf("answers: got %d %q (then %v); want %q", len(got), got, err, tc.answers)
			}
			for i, a := range got {
				// net/http's own refusals add a reason ("400 Bad
				// Request: invalid header name"): compare the start.
				if !strings.HasPrefix(a.status, tc.answers[i]) {
					t.Errorf("answer %d: got %q (%s); want %q", i, a.status, a.body, tc.answers[i])
				}
			}
			if last := got[len(got)-1]; tc.code != "" {
				if last.contentType != problemCT || !strings.Contains(last.body, `"type":"urn:portunus:problem:`+tc.code+`"`) {
					t.Errorf("problem: got %q %q; want %s %s", last.contentType, last.body, problemCT, tc.code)
				}
			}
			if tc.upstream != "" && !tc.cut {
				for i, a := range got {
					if a.status == ok200 && a.body != upstreamOK && tc.name != "OPTIONS * answered locally" {
						t.Errorf("answer %d body: got %q; want the upstream's %q", i, a.body, upstreamOK)
					}
				}
			}
			if tc.open {
				if _, err := c.Write([]byte("GET /probe HTTP/1.1\r\nHost: gw\r\n\r\n")); err != nil {
					t.Fatalf("connection: closed (%v); want open", err)
				}
				p, err := readAnswers(br, 1)
				if len(p) != 1 || p[0].status != ok200 || p[0].body != "probe" {
					t.Fatalf("connection: probe got %q (%v); want it served (connection open)", p, err)
				}
			} else if closed, why := closedByPeer(br); !closed {
				t.Errorf("connection: %s; want closed", why)
			}
			up.waitSettled(t, tc.cut)
			seen := up.transcript()
			if tc.cut {
				if !strings.HasPrefix(tc.upstream, seen) {
					t.Errorf("upstream received:\n%q\nwant a prefix of:\n%q", seen, tc.upstream)
				}
			} else if seen != tc.upstream {
				t.Errorf("upstream received:\n%q\nwant:\n%q", seen, tc.upstream)
			}
		})
	}
}
