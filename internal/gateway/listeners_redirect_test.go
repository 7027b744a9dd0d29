package gateway

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/portunus-gw/portunus/internal/config"
)

// lsRawResponse sends req as written on a new connection to addr and reads
// the answer.
func lsRawResponse(t *testing.T, addr, req string) *http.Response {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	_ = conn.SetDeadline(time.Now().Add(20 * time.Second))
	if _, err := io.WriteString(conn, req); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("reading the answer to %q: %v", req, err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp
}

func TestRedirectHTTPS(t *testing.T) {
	t.Parallel()
	up := newUpstream(t, "up")
	g := startGateway(t, `
listeners:
  - { address: "127.0.0.1:0", redirect_https: { port: 8443, status: 308 } }
  - { address: "127.0.0.1:0", redirect_https: { port: 443, status: 308 } }
  - { address: "127.0.0.1:0", redirect_https: { port: 443, status: 301 } }
observability: { access_log: { path: "off" } }
upstreams: [{ name: up, targets: [{ url: "`+up.URL+`" }] }]
routes: [{ match: { path_prefix: / }, upstream: up }]
`)
	port8443 := g.lsAddr("127.0.0.1:0")
	port443 := g.lsAddr("127.0.0.1:0#1")
	status301 := g.lsAddr("127.0.0.1:0#2")

	cases := []struct {
		name     string
		addr     string
		request  string
		status   int
		location string
	}{
		{"path and query kept raw", port8443, "GET /a/b%2Fc?x=1&y=%2F HTTP/1.1\r\nHost: good.example\r\n\r\n", 308, "https://good.example:8443/a/b%2Fc?x=1&y=%2F"},
		{"host port dropped", port8443, "GET / HTTP/1.1\r\nHost: good.example:8080\r\n\r\n", 308, "https://good.example:8443/"},
		{"host lower-cased", port8443, "GET /x HTTP/1.1\r\nHost: Good.EXAMPLE\r\n\r\n", 308, "https://good.example:8443/x"},
		{"port 443 omitted", port443, "GET /x?q HTTP/1.1\r\nHost: good.example:80\r\n\r\n", 308, "https://good.example/x?q"},
		{"POST keeps 308", port443, "POST /form HTTP/1.1\r\nHost: good.example\r\nContent-Length: 3\r\n\r\nabc", 308, "https://good.example/form"},
		{"configured 301", status301, "GET /old HTTP/1.1\r\nHost: good.example\r\n\r\n", 301, "https://good.example/old"},
		{"IPv4 host", port443, "GET /x HTTP/1.1\r\nHost: 192.0.2.7:80\r\n\r\n", 308, "https://192.0.2.7/x"},
		{"IPv6 host", port8443, "GET /x HTTP/1.1\r\nHost: [2001:db8::1]:80\r\n\r\n", 308, "https://[2001:db8::1]:8443/x"},
		{"double slash path stays a path", port443, "GET //evil.com/path HTTP/1.1\r\nHost: good.example\r\n\r\n", 308, "https://good.example//evil.com/path"},
		{"dot segments kept as sent", port443, "GET /%2e%2e/x/../y HTTP/1.1\r\nHost: good.example\r\n\r\n", 308, "https://good.example/%2e%2e/x/../y"},
		{"absolute-form", port443, "GET http://good.example/p?q=1 HTTP/1.1\r\nHost: good.example\r\n\r\n", 308, "https://good.example/p?q=1"},
		{"userinfo trick refused", port443, "GET /x HTTP/1.1\r\nHost: evil.com@good.example\r\n\r\n", 400, ""},
		{"backslash refused", port443, "GET /x HTTP/1.1\r\nHost: good.example\\evil.com\r\n\r\n", 400, ""},
		{"path in host refused", port443, "GET /x HTTP/1.1\r\nHost: evil.com/good.example\r\n\r\n", 400, ""},
		{"two ports refused", port443, "GET /x HTTP/1.1\r\nHost: good.example:80:81\r\n\r\n", 400, ""},
		{"empty label refused", port443, "GET /x HTTP/1.1\r\nHost: good..example\r\n\r\n", 400, ""},
		{"zone refused", port443, "GET /x HTTP/1.1\r\nHost: [fe80::1%25eth0]\r\n\r\n", 400, ""},
		{"missing host", port443, "GET /x HTTP/1.1\r\n\r\n", 400, ""},
		{"empty host", port443, "GET /x HTTP/1.0\r\n\r\n", 400, ""},
		{"OPTIONS * answered", port443, "OPTIONS * HTTP/1.1\r\nHost: good.example\r\n\r\n", 200, ""},
		{"GET * refused", port443, "GET * HTTP/1.1\r\nHost: good.example\r\n\r\n", 400, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			resp := lsRawResponse(t, tc.addr, tc.request)
			if resp.StatusCode != tc.status {
				t.Errorf("status = %d; want %d", resp.StatusCode, tc.status)
			}
			if got := resp.Header.Get("Location"); got != tc.location {
				t.Errorf("Location = %q; want %q", got, tc.location)
			}
			if got := resp.Header.Get("Strict-Transport-Security"); got != "" {
				t.Errorf("Strict-Transport-Security = %q on a plain listener; want none", got)
			}
		})
	}
	t.Run("upstream never asked", func(t *testing.T) {
		t.Parallel()
		_ = lsRawResponse(t, port443, "GET /x HTTP/1.1\r\nHost: good.example\r\n\r\n")
		if n := up.count(); n != 0 {
			t.Errorf("upstream received %d requests; want 0 (redirect listeners do not route)", n)
		}
	})
}

func TestRedirectHost(t *testing.T) {
	t.Parallel()
	cases := []struct {
		in   string
		want string
		ok   bool
	}{
		{"example.com", "example.com", true},
		{"EXAMPLE.com.", "example.com.", true},
		{"a-b.example:8080", "a-b.example", true},
		{"127.0.0.1", "127.0.0.1", true},
		{"[::1]", "[::1]", true},
		{"[::ffff:1.2.3.4]:80", "[::ffff:1.2.3.4]", true},
		{"", "", false},
		{"-a.example", "", false},
		{"a-.example", "", false},
		{"a_b.example", "a_b.example", true},
		{"evil.com@good", "", false},
		{"evil.com#good", "", false},
		{"evil.com?good", "", false},
		{"good:", "", false},
		{"good:port", "", false},
		{"good:123456", "", false},
		{"[::1", "", false},
		{"[::1]x", "", false},
		{"[1.2.3.4]", "", false},
		{".", "", false},
		{"a..b", "", false},
		{"\x00", "", false},
		{"é.example", "", false},
	}
	for _, tc := range cases {
		got, ok := redirectHost(tc.in)
		if got != tc.want || ok != tc.ok {
			t.Errorf("redirectHost(%q) = %q, %v; want %q, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}

func FuzzRedirectHost(f *testing.F) {
	for _, s := range []string{"example.com", "a:80", "[::1]:443", "evil@good", "1.2.3.4", "x..y", "[fe80::1%eth0]"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		host, ok := redirectHost(in)
		if !ok {
			return
		}
		// Whatever is accepted must parse back as exactly that host in
		// an https URL: no userinfo, path or port smuggled in.
		u, err := http.NewRequest("GET", "https://"+host+"/p", nil)
		if err != nil {
			t.Fatalf("redirectHost(%q) = %q, which is not a URL host: %v", in, host, err)
		}
		if u.URL.Host != host || u.URL.User != nil || u.URL.Path != "/p" {
			t.Fatalf("redirectHost(%q) = %q; URL parsed as host %q user %v path %q", in, host, u.URL.Host, u.URL.User, u.URL.Path)
		}
	})
}

// lsRawResponseOrClosed is lsRawResponse for requests the server may
// refuse by closing the connection: it returns the status, or 0.
func lsRawResponseOrClosed(t *testing.T, addr, req string) int {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(20 * time.Second))
	if _, err := io.WriteString(conn, req); err != nil {
		return 0
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// lsBenchWriter is a reusable ResponseWriter for handler benchmarks.
type lsBenchWriter struct{ h http.Header }

func (w *lsBenchWriter) Header() http.Header         { return w.h }
func (w *lsBenchWriter) Write(p []byte) (int, error) { return len(p), nil }
func (w *lsBenchWriter) WriteHeader(int)             {}

func BenchmarkRedirectHandler(b *testing.B) {
	h := newRedirectHandler(&config.RedirectHTTPS{Port: 8443, Status: 308}, 8192)
	r, _ := http.ReadRequest(bufio.NewReader(strings.NewReader("GET /a/b?c=d HTTP/1.1\r\nHost: www.example.com:80\r\n\r\n")))
	w := &lsBenchWriter{h: http.Header{}}
	b.ReportAllocs()
	for b.Loop() {
		h.ServeHTTP(w, r)
	}
}

func BenchmarkHSTSHandler(b *testing.B) {
	h := newHSTSHandler(&config.HSTS{MaxAge: config.DefaultHSTSMaxAge, IncludeSubdomains: true}, http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	r, _ := http.NewRequest("GET", "https://example.com/", nil)
	w := &lsBenchWriter{h: http.Header{}}
	b.ReportAllocs()
	for b.Loop() {
		h.ServeHTTP(w, r)
	}
}
