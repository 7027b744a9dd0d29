package proxyproto

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	pp "github.com/pires/go-proxyproto"
)

// echoServer serves http on a wrapped 127.0.0.1:0 listener; every answer
// is "remote-addr path". It counts the requests its handler saw.
type echoServer struct {
	addr string
	hits atomic.Int64
}

func startEcho(t *testing.T, trusted []netip.Prefix, timeout time.Duration) *echoServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e := &echoServer{addr: ln.Addr().String()}
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			e.hits.Add(1)
			_, _ = io.WriteString(w, r.RemoteAddr+" "+r.URL.Path)
		}),
		ReadHeaderTimeout: 10 * time.Second,
	}
	go func() { _ = srv.Serve(Wrap(ln, trusted, timeout)) }()
	t.Cleanup(func() { _ = srv.Close() })
	return e
}

var loopback = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}
var elsewhere = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}

// exchange writes payload on a fresh connection and returns what the
// server answered before closing (bounded by a generous deadline).
func exchange(t *testing.T, addr string, payload []byte) string {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	if _, err := c.Write(payload); err != nil {
		return ""
	}
	b, err := io.ReadAll(c)
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatalf("server neither answered nor closed: got %q", b)
	}
	return string(b)
}

// bodies returns the response bodies of a raw HTTP/1.1 exchange.
func bodies(t *testing.T, raw string) []string {
	t.Helper()
	var out []string
	br := bufio.NewReader(strings.NewReader(raw))
	for {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			return out
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		out = append(out, string(b))
	}
}

func v2(t *testing.T, cmd pp.ProtocolVersionAndCommand, proto pp.AddressFamilyAndProtocol, src, dst net.Addr, tlvs []pp.TLV) []byte {
	t.Helper()
	h := &pp.Header{Version: 2, Command: cmd, TransportProtocol: proto, SourceAddr: src, DestinationAddr: dst}
	if tlvs != nil {
		if err := h.SetTLVs(tlvs); err != nil {
			t.Fatal(err)
		}
	}
	b, err := h.Format()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

const get = "GET /a HTTP/1.1\r\nHost: x\r\n\r\n"
const getClose = "GET /b HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"

func TestTrustedHeaders(t *testing.T) {
	t.Parallel()
	tcp := func(s string) *net.TCPAddr { return net.TCPAddrFromAddrPort(netip.MustParseAddrPort(s)) }
	tests := []struct {
		name   string
		header []byte
		want   string // announced address; "peer" for the TCP peer
	}{
		{"v1 tcp4", []byte("PROXY TCP4 192.0.2.1 192.0.2.2 5000 80\r\n"), "192.0.2.1:5000"},
		{"v1 tcp6", []byte("PROXY TCP6 2001:db8::1 2001:db8::2 5001 443\r\n"), "[2001:db8::1]:5001"},
		{"v1 unknown", []byte("PROXY UNKNOWN\r\n"), "peer"},
		{"v2 tcp4", v2(t, pp.PROXY, pp.TCPv4, tcp("198.51.100.7:4000"), tcp("198.51.100.8:80"), nil), "198.51.100.7:4000"},
		{"v2 tcp6", v2(t, pp.PROXY, pp.TCPv6, tcp("[2001:db8::7]:4001"), tcp("[2001:db8::8]:80"), nil), "[2001:db8::7]:4001"},
		{"v2 tlvs ignored", v2(t, pp.PROXY, pp.TCPv4, tcp("198.51.100.9:4002"), tcp("198.51.100.8:80"),
			[]pp.TLV{{Type: pp.PP2_TYPE_AUTHORITY, Value: []byte("example.com")}, {Type: pp.PP2_TYPE_NOOP, Value: make([]byte, 300)}}), "198.51.100.9:4002"},
		{"v2 local", v2(t, pp.LOCAL, pp.UNSPEC, nil, nil, nil), "peer"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := startEcho(t, loopback, 10*time.Second)
			// Two pipelined requests: the header is consumed once and
			// never seen as request bytes.
			got := bodies(t, exchange(t, e.addr, append(append([]byte{}, tc.header...), get+getClose...)))
			if len(got) != 2 {
				t.Fatalf("got %d answers %q; want 2", len(got), got)
			}
			for i, path := range []string{"/a", "/b"} {
				addr, p, _ := strings.Cut(got[i], " ")
				if p != path {
					t.Errorf("answer %d path = %q; want %q", i, p, path)
				}
				if tc.want == "peer" {
					if !strings.HasPrefix(addr, "127.0.0.1:") {
						t.Errorf("answer %d remote = %q; want the peer 127.0.0.1", i, addr)
					}
				} else if addr != tc.want {
					t.Errorf("answer %d remote = %q; want %q", i, addr, tc.want)
				}
			}
		})
	}
}

func TestRefused(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		trusted []netip.Prefix
		payload string
	}{
		{"untrusted v1", elsewhere, "PROXY TCP4 192.0.2.1 192.0.2.2 5000 80\r\n" + getClose},
		{"untrusted v2", elsewhere, string(v2(t, pp.PROXY, pp.TCPv4,
			&net.TCPAddr{IP: net.IPv4(192, 0, 2, 1), Port: 1}, &net.TCPAddr{IP: net.IPv4(192, 0, 2, 2), Port: 2}, nil)) + getClose},
		{"untrusted malformed", elsewhere, "PROXY TCP4 nonsense\r\n" + getClose},
		{"trusted without header", loopback, getClose},
		{"trusted malformed v1", loopback, "PROXY TCP4 192.0.2.1 5000 80\r\n" + getClose},
		{"trusted bad v1 address", loopback, "PROXY TCP4 999.0.2.1 192.0.2.2 5000 80\r\n" + getClose},
		{"trusted v1 without CRLF", loopback, "PROXY TCP4 192.0.2.1 192.0.2.2 5000 80\n" + getClose},
		{"trusted v1 too long", loopback, "PROXY TCP4 " + strings.Repeat("1", 200) + "\r\n" + getClose},
		{"trusted v2 bad version", loopback, "\r\n\r\n\x00\r\nQUIT\n\x31\x11\x00\x0c" + strings.Repeat("\x00", 12) + getClose},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := startEcho(t, tc.trusted, 10*time.Second)
			if got := exchange(t, e.addr, []byte(tc.payload)); got != "" {
				t.Errorf("got answer %q; want the connection closed without one", got)
			}
			if n := e.hits.Load(); n != 0 {
				t.Errorf("handler ran %d times; want 0", n)
			}
		})
	}
}

func TestUntrustedPlainServed(t *testing.T) {
	t.Parallel()
	e := startEcho(t, elsewhere, 10*time.Second)
	for _, payload := range []string{getClose, "POST /b HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"} {
		got := bodies(t, exchange(t, e.addr, []byte(payload)))
		if len(got) != 1 || !strings.HasPrefix(got[0], "127.0.0.1:") || !strings.HasSuffix(got[0], " /b") {
			t.Errorf("got %q; want one answer from the peer 127.0.0.1 for /b", got)
		}
	}
}

func TestSlowHeaderCut(t *testing.T) {
	t.Parallel()
	// The exchange's 20 s deadline is far beyond the 100 ms header
	// timeout: a close (not a client timeout) proves the cut.
	e := startEcho(t, loopback, 100*time.Millisecond)
	for _, partial := range []string{"", "PRO", "PROXY TCP4 192.0.2.1", "\r\n\r\n\x00\r\nQUIT\n\x21\x11\x00\x0c"} {
		if got := exchange(t, e.addr, []byte(partial)); got != "" {
			t.Errorf("partial %q: got %q; want the connection closed", partial, got)
		}
	}
	if n := e.hits.Load(); n != 0 {
		t.Errorf("handler ran %d times; want 0", n)
	}
}

// fakeConn replays fixed bytes from a trusted peer.
type fakeConn struct {
	net.Conn
	r io.Reader
}

func (f *fakeConn) Read(b []byte) (int, error)         { return f.r.Read(b) }
func (f *fakeConn) RemoteAddr() net.Addr               { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 9} }
func (f *fakeConn) LocalAddr() net.Addr                { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 80} }
func (f *fakeConn) SetReadDeadline(time.Time) error    { return nil }
func (f *fakeConn) Close() error                       { return nil }
func (f *fakeConn) Write(b []byte) (int, error)        { return len(b), nil }
func (f *fakeConn) SetDeadline(t time.Time) error      { return nil }
func (f *fakeConn) SetWriteDeadline(t time.Time) error { return nil }

// FuzzTrustedConn checks that whatever a trusted peer sends, the wrapper
// either refuses it or passes on exactly the bytes after a header.
func FuzzTrustedConn(f *testing.F) {
	f.Add([]byte("PROXY TCP4 192.0.2.1 192.0.2.2 5000 80\r\nGET / HTTP/1.1\r\n\r\n"))
	f.Add([]byte("PROXY TCP6 ::1 ::2 1 2\r\nx"))
	f.Add([]byte("PROXY UNKNOWN\r\n"))
	f.Add([]byte("\r\n\r\n\x00\r\nQUIT\n\x21\x11\x00\x0c\xc0\x00\x02\x01\xc0\x00\x02\x02\x13\x88\x00\x50body"))
	f.Add([]byte("\r\n\r\n\x00\r\nQUIT\n\x20\x00\x00\x00rest"))
	f.Add([]byte("GET / HTTP/1.1\r\n\r\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		c := &conn{Conn: &fakeConn{r: bytes.NewReader(in)}, trusted: true, timeout: time.Second}
		out, err := io.ReadAll(c)
		if err != nil {
			if len(out) != 0 {
				t.Fatalf("refused connection passed %q on", out)
			}
			return
		}
		if !bytes.HasSuffix(in, out) {
			t.Fatalf("passed %q; not a suffix of the input", out)
		}
		if len(out) == len(in) && len(in) > 0 {
			t.Fatalf("passed all %d input bytes: the header was not consumed", len(in))
		}
		if ta, ok := c.RemoteAddr().(*net.TCPAddr); !ok || ta.IP == nil {
			t.Fatalf("RemoteAddr = %v; want a TCP address", c.RemoteAddr())
		}
	})
}
