package h1server

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// Shared helpers of the package tests: servers on 127.0.0.1:0, raw
// exchanges over TCP, and answers parsed for comparison.

// quietLog drops server logs (panics and errors the tests provoke on
// purpose).
var quietLog = log.New(io.Discard, "", 0)

// safetyTimeout bounds any single wait of a test so a bug hangs nothing;
// it is never what a test asserts.
const safetyTimeout = 10 * time.Second

// startOurs serves h with an h1server.Server configured by cfg.
func startOurs(t testing.TB, h http.Handler, cfg func(*Server)) (*Server, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{Handler: h, ErrorLog: quietLog}
	if cfg != nil {
		cfg(s)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = s.Serve(ln)
	}()
	t.Cleanup(func() {
		_ = s.Close()
		<-done
	})
	return s, ln.Addr().String()
}

// startStd serves h with net/http's server, configured as the gateway
// configures it for plain listeners it does not hand to h1server.
func startStd(t testing.TB, h http.Handler, cfg func(*http.Server)) (*http.Server, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &http.Server{Handler: h, ErrorLog: quietLog, DisableGeneralOptionsHandler: true}
	if cfg != nil {
		cfg(s)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = s.Serve(ln)
	}()
	t.Cleanup(func() {
		_ = s.Close()
		<-done
	})
	return s, ln.Addr().String()
}

func dial(t testing.TB, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	_ = c.SetDeadline(time.Now().Add(safetyTimeout))
	return c
}

// interim is a 1xx answer.
type interim struct {
	Status int
	Header http.Header
}

// answer is one parsed response; Date is left out.
type answer struct {
	Interim  []interim
	Proto    string
	Status   int
	Close    bool // "Connection: close" (or HTTP/1.0 without keep-alive)
	Header   http.Header
	TE       []string
	Length   int64
	Body     string
	Trailer  http.Header
	BodyErr  string
	NoDate   bool // the answer had no Date field
	rawClose bool // body ended by the end of the connection
}

// exchange is what a connection produced: its answers and whether the
// server closed it after them.
type exchange struct {
	Answers []answer
	Closed  bool
	Err     string // a parse error before the expected answers were read
}

func (e *exchange) String() string {
	var b strings.Builder
	for i, a := range e.Answers {
		fmt.Fprintf(&b, "answer %d: %s %d close=%v\n", i, a.Proto, a.Status, a.Close)
		for _, in := range a.Interim {
			fmt.Fprintf(&b, "  interim %d %v\n", in.Status, in.Header)
		}
		keys := sortedKeys(a.Header)
		for _, k := range keys {
			fmt.Fprintf(&b, "  %s: %q\n", k, a.Header[k])
		}
		fmt.Fprintf(&b, "  TE=%q Length=%d Trailer=%v BodyErr=%q\n", a.TE, a.Length, a.Trailer, a.BodyErr)
		body := a.Body
		if len(body) > 300 {
			body = body[:300] + fmt.Sprintf("...(%d bytes)", len(a.Body))
		}
		fmt.Fprintf(&b, "  body=%q\n", body)
	}
	fmt.Fprintf(&b, "closed=%v err=%q", e.Closed, e.Err)
	return b.String()
}

func sortedKeys(h http.Header) []string {
	var ks []string
	for k := range h {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

// readAnswer reads one final answer (and the 1xx before it) for a
// request with the given method.
func readAnswer(br *bufio.Reader, method string) (answer, error) {
	var a answer
	for {
		res, err := http.ReadResponse(br, &http.Request{Method: method})
		if err != nil {
			return a, err
		}
		if res.StatusCode >= 100 && res.StatusCode < 200 && res.StatusCode != http.StatusSwitchingProtocols {
			h := res.Header.Clone()
			h.Del("Date")
			a.Interim = append(a.Interim, interim{res.StatusCode, h})
			continue
		}
		a.Proto, a.Status, a.Close = res.Proto, res.StatusCode, res.Close
		a.Header = res.Header.Clone()
		if d := a.Header.Get("Date"); d == "" {
			a.NoDate = true
		} else if _, err := http.ParseTime(d); err != nil {
			return a, fmt.Errorf("bad Date %q", d)
		}
		a.Header.Del("Date")
		a.TE = res.TransferEncoding
		a.Length = res.ContentLength
		body, err := io.ReadAll(res.Body)
		a.Body = string(body)
		if err != nil {
			a.BodyErr = err.Error()
		}
		a.rawClose = res.ContentLength < 0 && len(res.TransferEncoding) == 0 && method != http.MethodHead
		if len(res.Trailer) > 0 {
			a.Trailer = res.Trailer
		}
		return a, nil
	}
}

// probe is sent after the expected answers: an answer to it means the
// connection was kept.
const probe = "GET /probe HTTP/1.1\r\nHost: probe\r\n\r\n"

// roundTrip writes raw (from a goroutine: a server may answer before it
// has read everything), reads len(methods) answers, and then tells
// whether the connection stayed open by sending a probe request.
func roundTrip(t testing.TB, addr, raw string, methods []string) *exchange {
	t.Helper()
	c := dial(t, addr)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		_, _ = io.WriteString(c, raw)
	}()
	br := bufio.NewReader(c)
	e := readExchange(c, br, methods)
	wg.Wait()
	return e
}

// readExchange reads the answers and probes the connection.
func readExchange(c net.Conn, br *bufio.Reader, methods []string) *exchange {
	e := &exchange{}
	for _, m := range methods {
		a, err := readAnswer(br, m)
		if err != nil {
			if !isEOFish(err) {
				e.Err = err.Error()
			}
			e.Closed = true
			return e
		}
		e.Answers = append(e.Answers, a)
		if a.rawClose {
			e.Closed = true
			return e
		}
	}
	e.Closed = connClosed(c, br)
	return e
}

func isEOFish(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) ||
		strings.Contains(err.Error(), "connection reset")
}

// connClosed sends the probe and reports whether the server answered it.
func connClosed(c net.Conn, br *bufio.Reader) bool {
	if br.Buffered() > 0 {
		// Bytes after the last expected answer: neither closed nor
		// clean. Report it as open with garbage (comparison shows it).
		return false
	}
	if _, err := io.WriteString(c, probe); err != nil {
		return true
	}
	res, err := http.ReadResponse(br, nil)
	if err != nil {
		return true
	}
	_, _ = io.Copy(io.Discard, res.Body)
	_ = res.Body.Close()
	return false
}

// httpHeader builds a header from alternating keys and values.
func httpHeader(kv ...string) http.Header {
	h := http.Header{}
	for i := 0; i+1 < len(kv); i += 2 {
		h.Add(kv[i], kv[i+1])
	}
	return h
}

// body returns n bytes of a recognisable pattern.
func patternBody(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = 'a' + byte(i%26)
	}
	return b
}

// chunk encodes p as chunks of at most size bytes, with the last chunk
// and the given trailer section.
func chunked(p []byte, size int, trailer string) string {
	var b bytes.Buffer
	for len(p) > 0 {
		n := min(size, len(p))
		fmt.Fprintf(&b, "%x\r\n", n)
		b.Write(p[:n])
		b.WriteString("\r\n")
		p = p[n:]
	}
	b.WriteString("0\r\n")
	b.WriteString(trailer)
	b.WriteString("\r\n")
	return b.String()
}
