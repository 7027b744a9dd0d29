package gateway

import (
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
)

func baseConfig(upstreamURL string, routes string) string {
	return fmt.Sprintf(`
listeners: [{ address: "127.0.0.1:0" }]
observability: { access_log: { path: "off" } }
upstreams:
  - name: up
    targets: [{ url: %q }]
routes:
%s`, upstreamURL, routes)
}

func TestRoutingAnswers(t *testing.T) {
	t.Parallel()
	up := newUpstream(t, "up")
	g := startGateway(t, baseConfig(up.URL, `
  - name: users
    match: { path: "/users/{id}", methods: [GET, PUT] }
    upstream: up
  - name: files
    match: { path_prefix: /files }
    upstream: up
    allow_encoded_slash: true
  - name: ping
    match: { path: /ping }
    respond: { status: 200, body: pong, headers: { Content-Type: text/plain, X-Route: "{route}" } }
`))

	t.Run("404 problem", func(t *testing.T) {
		resp := g.do("GET", "/nowhere", nil, "")
		if resp.StatusCode != 404 {
			t.Fatalf("status = %d; want 404", resp.StatusCode)
		}
		p := readProblem(t, resp)
		if p.Type != "urn:portunus:problem:no-route" || p.Status != 404 || p.RequestID == "" {
			t.Errorf("problem = %+v; want no-route 404 with request_id", p)
		}
		if p.RequestID != resp.Header.Get("X-Request-Id") {
			t.Errorf("request_id %q != X-Request-Id %q", p.RequestID, resp.Header.Get("X-Request-Id"))
		}
	})
	t.Run("405 with Allow", func(t *testing.T) {
		resp := g.do("DELETE", "/users/7", nil, "")
		if resp.StatusCode != 405 {
			t.Fatalf("status = %d; want 405", resp.StatusCode)
		}
		if got := resp.Header.Get("Allow"); got != "GET, HEAD, PUT" {
			t.Errorf("Allow = %q; want %q", got, "GET, HEAD, PUT")
		}
		if p := readProblem(t, resp); p.Type != "urn:portunus:problem:method-not-allowed" {
			t.Errorf("type = %q", p.Type)
		}
	})
	t.Run("HEAD matches GET route", func(t *testing.T) {
		resp := g.do("HEAD", "/users/7", nil, "")
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("status = %d; want 200", resp.StatusCode)
		}
	})
	t.Run("normalized path is what the upstream sees", func(t *testing.T) {
		s := readSeen(t, g.do("GET", "/files/a/../b//c/%2e/d", nil, ""))
		if s.RawPath != "/files/b/c/d" {
			t.Errorf("upstream path = %q; want /files/b/c/d", s.RawPath)
		}
	})
	t.Run("encoded slash refused unless allowed", func(t *testing.T) {
		resp := g.do("GET", "/users/a%2Fb", nil, "")
		if resp.StatusCode != 400 {
			t.Fatalf("status = %d; want 400", resp.StatusCode)
		}
		if p := readProblem(t, resp); p.Type != "urn:portunus:problem:invalid-path" {
			t.Errorf("type = %q", p.Type)
		}
		s := readSeen(t, g.do("GET", "/files/a%2fb", nil, ""))
		if s.RawPath != "/files/a%2Fb" {
			t.Errorf("upstream path = %q; want /files/a%%2Fb", s.RawPath)
		}
	})
	t.Run("respond", func(t *testing.T) {
		resp := g.do("GET", "/ping", nil, "")
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(b) != "pong" || resp.Header.Get("X-Route") != "ping" {
			t.Errorf("got %d %q X-Route=%q; want 200 pong ping", resp.StatusCode, b, resp.Header.Get("X-Route"))
		}
	})
	t.Run("CONNECT 405", func(t *testing.T) {
		status := rawRequest(t, g.url, "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n")
		if !strings.HasPrefix(status, "HTTP/1.1 405") {
			t.Errorf("status line = %q; want 405", status)
		}
	})
	t.Run("OPTIONS * answered locally", func(t *testing.T) {
		n := up.count()
		status := rawRequest(t, g.url, "OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n")
		if !strings.HasPrefix(status, "HTTP/1.1 200") {
			t.Errorf("status line = %q; want 200", status)
		}
		if up.count() != n {
			t.Error("OPTIONS * reached the upstream")
		}
	})
}

// rawRequest sends raw bytes and returns the status line of the answer.
func rawRequest(t *testing.T, base, raw string) string {
	t.Helper()
	c, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := io.WriteString(c, raw); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 512)
	n, _ := io.ReadAtLeast(c, buf, 12)
	line, _, _ := strings.Cut(string(buf[:n]), "\r\n")
	return line
}

func TestRequestIDAndForwardedHeaders(t *testing.T) {
	t.Parallel()
	up := newUpstream(t, "up")
	g := startGateway(t, baseConfig(up.URL, `
  - match: { path_prefix: / }
    upstream: up
`))
	cases := []struct {
		desc string
		sent string
		keep bool
	}{
		{"valid id kept", "abc-123_x.y:z", true},
		{"too long replaced", strings.Repeat("a", 129), false},
		{"bad characters replaced", "abc def", false},
		{"none sent", "", false},
	}
	for _, tc := range cases {
		t.Run(tc.desc, func(t *testing.T) {
			h := map[string]string{"X-Forwarded-For": "6.6.6.6", "X-Consumer-Name": "admin", "X-Real-IP": "6.6.6.6"}
			if tc.sent != "" {
				h["X-Request-Id"] = tc.sent
			}
			resp := g.do("GET", "/x", h, "")
			s := readSeen(t, resp)
			got := resp.Header.Get("X-Request-Id")
			if tc.keep && got != tc.sent {
				t.Errorf("X-Request-Id = %q; want %q", got, tc.sent)
			}
			if !tc.keep && (got == "" || got == tc.sent) {
				t.Errorf("X-Request-Id = %q; want a new id", got)
			}
			if up := s.Header["X-Request-Id"]; len(up) != 1 || up[0] != got {
				t.Errorf("upstream X-Request-Id = %v; want [%s]", up, got)
			}
			if xff := s.Header["X-Forwarded-For"]; len(xff) != 1 || xff[0] != "127.0.0.1" {
				t.Errorf("upstream X-Forwarded-For = %v; want [127.0.0.1] (untrusted peer's list dropped)", xff)
			}
			if v := s.Header["X-Consumer-Name"]; v != nil {
				t.Errorf("spoofed X-Consumer-Name reached the upstream: %v", v)
			}
			if v := s.Header["X-Real-Ip"]; v != nil {
				t.Errorf("X-Real-IP reached the upstream: %v", v)
			}
		})
	}
}

func TestTrustedProxyXFF(t *testing.T) {
	t.Parallel()
	up := newUpstream(t, "up")
	g := startGateway(t, `
listeners: [{ address: "127.0.0.1:0" }]
trusted_proxies: [127.0.0.0/8]
observability: { access_log: { path: "off" } }
upstreams: [{ name: up, targets: [{ url: "`+up.URL+`" }] }]
routes: [{ match: { path_prefix: / }, upstream: up }]
`)
	s := readSeen(t, g.do("GET", "/", map[string]string{"X-Forwarded-For": "203.0.113.9, 10.1.1.1", "X-Forwarded-Proto": "https"}, ""))
	if xff := strings.Join(s.Header["X-Forwarded-For"], ","); xff != "203.0.113.9, 10.1.1.1, 127.0.0.1" {
		t.Errorf("X-Forwarded-For = %q; want the trusted list with the peer appended", xff)
	}
	if p := strings.Join(s.Header["X-Forwarded-Proto"], ","); p != "https" {
		t.Errorf("X-Forwarded-Proto = %q; want the trusted peer's https", p)
	}
}

func TestMethodOverride(t *testing.T) {
	t.Parallel()
	up := newUpstream(t, "up")
	g := startGateway(t, baseConfig(up.URL, `
  - name: allowed
    match: { path_prefix: /allowed, methods: [PUT, POST] }
    upstream: up
    allow_method_override: true
  - name: plain
    match: { path_prefix: /plain, methods: [PUT, POST] }
    upstream: up
`))
	s := readSeen(t, g.do("POST", "/allowed", map[string]string{"X-HTTP-Method-Override": "PUT"}, "x"))
	if s.Method != "PUT" {
		t.Errorf("allowed route: upstream method = %s; want PUT", s.Method)
	}
	s = readSeen(t, g.do("POST", "/plain", map[string]string{"X-HTTP-Method-Override": "PUT"}, "x"))
	if s.Method != "POST" {
		t.Errorf("plain route: upstream method = %s; want POST", s.Method)
	}
	if v := s.Header["X-Http-Method-Override"]; v != nil {
		t.Errorf("override header forwarded on a route that does not allow it: %v", v)
	}
}

func TestPreflightMatchedWithRequestedMethod(t *testing.T) {
	t.Parallel()
	up := newUpstream(t, "up")
	g := startGateway(t, baseConfig(up.URL, `
  - name: get-only
    match: { path: /thing, methods: [GET] }
    upstream: up
`))
	resp := g.do("OPTIONS", "/thing", map[string]string{"Origin": "https://app.example.com", "Access-Control-Request-Method": "GET"}, "")
	resp.Body.Close()
	if resp.StatusCode == 405 {
		t.Fatalf("preflight for GET got 405; want it matched to the GET route")
	}
	resp = g.do("OPTIONS", "/thing", map[string]string{"Origin": "https://app.example.com", "Access-Control-Request-Method": "DELETE"}, "")
	resp.Body.Close()
	if resp.StatusCode != 405 {
		t.Errorf("preflight for DELETE: status %d; want 405", resp.StatusCode)
	}
	resp = g.do("OPTIONS", "/thing", nil, "")
	resp.Body.Close()
	if resp.StatusCode != 405 {
		t.Errorf("plain OPTIONS: status %d; want 405", resp.StatusCode)
	}
}

func TestBodyLimitAndTimeout(t *testing.T) {
	t.Parallel()
	slow := newSlowUpstream(t)
	g := startGateway(t, `
listeners: [{ address: "127.0.0.1:0" }]
observability: { access_log: { path: "off" } }
upstreams:
  - { name: slow, targets: [{ url: "`+slow.URL+`" }] }
  - { name: dead, targets: [{ url: "http://127.0.0.1:1" }] }
routes:
  - { match: { path: /small }, upstream: slow, max_body_bytes: 10 }
  - { match: { path: /slow }, upstream: slow, timeout: 100ms }
  - { match: { path: /dead }, upstream: dead }
`)
	resp := g.do("POST", "/small", nil, strings.Repeat("x", 100))
	if resp.StatusCode != 413 {
		t.Errorf("body over limit: %d; want 413", resp.StatusCode)
	}
	if p := readProblem(t, resp); p.Type != "urn:portunus:problem:body-too-large" {
		t.Errorf("type = %q", p.Type)
	}
	resp = g.do("GET", "/slow", nil, "")
	if resp.StatusCode != 504 {
		t.Errorf("slow upstream: %d; want 504", resp.StatusCode)
	}
	readProblem(t, resp)
	resp = g.do("GET", "/dead", nil, "")
	if resp.StatusCode != 502 {
		t.Errorf("closed port: %d; want 502", resp.StatusCode)
	}
	if p := readProblem(t, resp); p.Type != "urn:portunus:problem:upstream-unavailable" {
		t.Errorf("type = %q", p.Type)
	}
}

func TestListenerLimits(t *testing.T) {
	t.Parallel()
	up := newUpstream(t, "up")
	g := startGateway(t, `
listeners:
  - address: "127.0.0.1:0"
    limits: { max_uri_bytes: 64, max_headers: 5, max_header_bytes: 1KiB }
observability: { access_log: { path: "off" } }
upstreams: [{ name: up, targets: [{ url: "`+up.URL+`" }] }]
routes: [{ match: { path_prefix: / }, upstream: up }]
`)
	resp := g.do("GET", "/"+strings.Repeat("a", 80), nil, "")
	if resp.StatusCode != 414 {
		t.Errorf("long target: %d; want 414", resp.StatusCode)
	}
	if p := readProblem(t, resp); p.Type != "urn:portunus:problem:uri-too-long" || p.RequestID == "" {
		t.Errorf("problem = %+v", p)
	}
	h := map[string]string{}
	for i := 0; i < 6; i++ {
		h[fmt.Sprintf("X-H%d", i)] = "v"
	}
	resp = g.do("GET", "/", h, "")
	if resp.StatusCode != 431 {
		t.Errorf("too many headers: %d; want 431", resp.StatusCode)
	}
	readProblem(t, resp)
	resp = g.do("GET", "/", map[string]string{"X-Big": strings.Repeat("b", 4096)}, "")
	resp.Body.Close()
	if resp.StatusCode != 431 {
		t.Errorf("header block over max_header_bytes: %d; want 431", resp.StatusCode)
	}
	if n := up.count(); n != 0 {
		t.Errorf("upstream saw %d requests; want 0", n)
	}
}
