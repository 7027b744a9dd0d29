package proxy_test

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/portunus-gw/portunus/internal/config"
	"github.com/portunus-gw/portunus/internal/pipeline"
	"github.com/portunus-gw/portunus/internal/proxy"
)

// startH2CUpstream serves h over plain TCP with HTTP/1.1 and HTTP/2 prior
// knowledge.
func startH2CUpstream(t *testing.T, h http.HandlerFunc) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var p http.Protocols
	p.SetHTTP1(true)
	p.SetUnencryptedHTTP2(true)
	srv := &http.Server{Handler: h, Protocols: &p, ReadHeaderTimeout: waitLimit}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return "http://" + ln.Addr().String()
}

// startH2Front is startFront over TLS with HTTP/2, so the client side
// speaks HTTP/2 to the proxy.
func startH2Front(t *testing.T, h pipeline.Handler) *httptest.Server {
	t.Helper()
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := &pipeline.State{RequestID: "req-h2", Start: time.Now(), Path: r.URL.EscapedPath(), RouteName: "h2"}
		proxy.SanitizeInbound(r.Header, false)
		h(w, r, s)
	}))
	srv.EnableHTTP2 = true
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv
}

// trailerEcho reports the protocol and the request trailer it got, and
// answers with an undeclared and a declared trailer, like gRPC servers.
func trailerEcho(w http.ResponseWriter, r *http.Request) {
	_, _ = io.Copy(io.Discard, r.Body)
	w.Header().Set("Trailer", "X-Declared")
	w.Header().Set("X-Proto", r.Proto)
	w.Header().Set("X-Req-Trailer", r.Trailer.Get("X-Req-Sum"))
	w.Header().Set("X-Te", r.Header.Get("Te"))
	w.WriteHeader(200)
	_, _ = io.WriteString(w, "body")
	w.Header().Set("X-Declared", "d")
	w.Header().Set(http.TrailerPrefix+"Grpc-Status", "0")
}

func TestHTTP2TrailersBothWays(t *testing.T) {
	t.Parallel()
	up := startH2CUpstream(t, trailerEcho)
	cases := []struct {
		name      string
		protocol  string
		h2Front   bool
		wantProto string
	}{
		{"h1 client, h2c upstream", "h2c", false, "HTTP/2.0"},
		{"h2 client, h2c upstream", "h2c", true, "HTTP/2.0"},
		{"h2 client, h1 upstream", "http1", true, "HTTP/1.1"},
		{"h1 client, auto upstream", "auto", false, "HTTP/1.1"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := proxy.New(proxy.Config{Pool: newPool(t, config.Upstream{Protocol: tc.protocol}, up)})
			var front *httptest.Server
			if tc.h2Front {
				front = startH2Front(t, h)
			} else {
				front = startFront(t, h, frontOpts{})
			}
			// A body of unknown length with a declared request trailer.
			pr, pw := io.Pipe()
			go func() {
				_, _ = io.WriteString(pw, "payload")
				pw.Close()
			}()
			req := mustRequest(t, "POST", front.URL+"/x", pr)
			req.ContentLength = -1
			req.Header.Set("Te", "trailers")
			req.Trailer = http.Header{"X-Req-Sum": {"abc"}}
			res, body := do(t, front, req)
			if res.StatusCode != 200 || body != "body" {
				t.Fatalf("got %d %q; want 200 body", res.StatusCode, body)
			}
			checks := []struct{ what, got, want string }{
				{"upstream protocol", res.Header.Get("X-Proto"), tc.wantProto},
				{"request trailer at upstream", res.Header.Get("X-Req-Trailer"), "abc"},
				{"TE at upstream", res.Header.Get("X-Te"), "trailers"},
				{"declared response trailer", res.Trailer.Get("X-Declared"), "d"},
				{"undeclared response trailer", res.Trailer.Get("Grpc-Status"), "0"},
			}
			for _, c := range checks {
				if c.got != c.want {
					t.Errorf("%s: got %q; want %q", c.what, c.got, c.want)
				}
			}
		})
	}
}

// A gRPC error answered by the proxy itself is a gRPC status, also over
// HTTP/2 where it must be a single HEADERS frame ending the stream.
func TestGRPCProxyErrors(t *testing.T) {
	t.Parallel()
	dead, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadURL := "http://" + dead.Addr().String()
	dead.Close()
	slow := startH2CUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(waitLimit):
		}
	})
	cases := []struct {
		name       string
		url        string
		timeout    string
		wantStatus string
	}{
		{"upstream down", deadURL, "", "14"},
		{"grpc-timeout passes", slow, "200m", "4"},
		{"malformed grpc-timeout", slow, "12", "13"},
		{"too many digits", slow, "123456789m", "13"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := proxy.New(proxy.Config{Pool: newPool(t, config.Upstream{Protocol: "h2c"}, tc.url)})
			front := startH2Front(t, h)
			req := mustRequest(t, "POST", front.URL+"/pkg.Svc/M", strings.NewReader("\x00\x00\x00\x00\x00"))
			req.Header.Set("Content-Type", "application/grpc")
			req.Header.Set("Te", "trailers")
			if tc.timeout != "" {
				req.Header.Set("Grpc-Timeout", tc.timeout)
			}
			res, body := do(t, front, req)
			if res.StatusCode != 200 || res.Header.Get("Content-Type") != "application/grpc" {
				t.Errorf("got %d %q; want 200 application/grpc", res.StatusCode, res.Header.Get("Content-Type"))
			}
			if got := res.Header.Get("Grpc-Status"); got != tc.wantStatus {
				t.Errorf("grpc-status: got %q (%q); want %q", got, res.Header.Get("Grpc-Message"), tc.wantStatus)
			}
			if got := res.Header.Get("Portunus-Request-Id"); got != "req-h2" {
				t.Errorf("portunus-request-id: got %q; want req-h2", got)
			}
			if body != "" {
				t.Errorf("body: got %q; want none", body)
			}
		})
	}
}
