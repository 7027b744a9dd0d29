package proxy

import (
	"fmt"
	"net/http"
	"reflect"
	"testing"
)

func TestSanitizeInbound(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		trusted bool
		in      http.Header
		want    http.Header
	}{
		{
			name: "hop-by-hop and connection-named",
			in: http.Header{
				"Connection": {"close, X-Foo", "x-bar"}, "X-Foo": {"1"}, "X-Bar": {"2"}, "Keep-Alive": {"300"},
				"Proxy-Connection": {"keep-alive"}, "Proxy-Authorization": {"Basic x"}, "Proxy-Authenticate": {"x"},
				"Trailer": {"X-T"}, "Transfer-Encoding": {"chunked"}, "Upgrade": {"h2c"}, "Accept": {"*/*"},
			},
			want: http.Header{"Accept": {"*/*"}},
		},
		{
			name: "te trailers kept alone",
			in:   http.Header{"Te": {"deflate, trailers;q=1"}},
			want: http.Header{"Te": {"trailers"}},
		},
		{
			name: "te without trailers dropped",
			in:   http.Header{"Te": {"deflate"}},
			want: http.Header{},
		},
		{
			name: "websocket upgrade kept",
			in:   http.Header{"Connection": {"keep-alive, Upgrade"}, "Upgrade": {"WebSocket"}, "Sec-Websocket-Key": {"k"}},
			want: http.Header{"Connection": {"Upgrade"}, "Upgrade": {"websocket"}, "Sec-Websocket-Key": {"k"}},
		},
		{
			name: "other upgrade dropped",
			in:   http.Header{"Connection": {"Upgrade"}, "Upgrade": {"h2c"}},
			want: http.Header{},
		},
		{
			name: "h2c settings dropped even when not named in Connection",
			in:   http.Header{"Connection": {"Upgrade"}, "Upgrade": {"h2c"}, "Http2-Settings": {"AAMAAABkAARAAAAAAAIAAAAA"}},
			want: http.Header{},
		},
		{
			name: "identity and twins",
			in: http.Header{
				"X-Consumer-Name": {"e"}, "X_consumer_name": {"e"}, "X-Consumer-Roles": {"e"}, "X_CONSUMER_ID": {"e"},
				"X-Authenticated-Userid": {"e"}, "X_authenticated_scope": {"e"}, "X-Real-Ip": {"e"},
				"X-Http-Method-Override": {"DELETE"}, "X-Http-Method": {"DELETE"}, "X-Method-Override": {"DELETE"},
				"X_request_id": {"e"}, "X-Request-Id": {"rid"}, "X-Consumer": {"kept"},
			},
			want: http.Header{"X-Request-Id": {"rid"}, "X-Consumer": {"kept"}},
		},
		{
			name: "forwarded from untrusted",
			in: http.Header{
				"Forwarded": {"for=x"}, "X-Forwarded-For": {"1.1.1.1"}, "X-Forwarded-Proto": {"https"},
				"X-Forwarded-Host": {"h"}, "X-Forwarded-Port": {"1"}, "X-Forwarded-Prefix": {"/p"}, "X-Forwarded-Other": {"kept"},
			},
			want: http.Header{"X-Forwarded-Other": {"kept"}},
		},
		{
			name:    "forwarded from trusted kept, twins not",
			trusted: true,
			in:      http.Header{"Forwarded": {"for=x"}, "X-Forwarded-For": {"1.1.1.1"}, "X_forwarded_for": {"2.2.2.2"}},
			want:    http.Header{"Forwarded": {"for=x"}, "X-Forwarded-For": {"1.1.1.1"}},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			SanitizeInbound(c.in, c.trusted)
			if !reflect.DeepEqual(c.in, c.want) {
				t.Errorf("got %v; want %v", c.in, c.want)
			}
		})
	}
}

func TestStripPrefix(t *testing.T) {
	t.Parallel()
	cases := []struct{ path, prefix, want string }{
		{"/v1/users/7", "/v1", "/users/7"},
		{"/v1", "/v1", "/"},
		{"/v1/", "/v1", "/"},
		{"/v10/x", "/v1", "/v10/x"},
		{"/other", "/v1", "/other"},
	}
	for _, c := range cases {
		if got := stripPrefix(c.path, c.prefix); got != c.want {
			t.Errorf("stripPrefix(%q, %q): got %q; want %q", c.path, c.prefix, got, c.want)
		}
	}
}

func FuzzSanitizeInbound(f *testing.F) {
	f.Add("X-Foo, close", "websocket", "X_Consumer_Name", "trailers")
	f.Add("Upgrade", "WebSocket", "x-authenticated-user", "")
	f.Add(",,", "h2c", "X-Forwarded-For", "trailers, gzip")
	f.Fuzz(func(t *testing.T, conn, upgrade, name, te string) {
		h := http.Header{"Connection": {conn}, "Upgrade": {upgrade}, name: {"v"}, "Te": {te}, "Keep-Alive": {"1"}}
		SanitizeInbound(h, false)
		for _, k := range []string{"Keep-Alive", "Proxy-Connection", "Transfer-Encoding", "Trailer"} {
			if _, ok := h[k]; ok {
				t.Fatalf("%s survived: %v", k, h)
			}
		}
		if v, ok := h["Upgrade"]; ok && !reflect.DeepEqual(v, valWebSocket) {
			t.Fatalf("non-websocket Upgrade survived: %v", h)
		}
		if v, ok := h["Te"]; ok && !reflect.DeepEqual(v, valTrailers) {
			t.Fatalf("TE other than trailers survived: %v", h)
		}
		for k := range h {
			if classify(k) != spoofNone {
				t.Fatalf("spoofable %q survived: %v", k, h)
			}
		}
	})
}

func BenchmarkSanitizeInbound(b *testing.B) {
	src := http.Header{
		"Host":            {"api.example.com"},
		"User-Agent":      {"curl/8.0"},
		"Accept":          {"*/*"},
		"Accept-Encoding": {"gzip"},
		"Authorization":   {"Bearer x"},
		"Content-Type":    {"application/json"},
		"X-Request-Id":    {"abc"},
		"X-Forwarded-For": {"1.2.3.4"},
		"Connection":      {"keep-alive"},
	}
	h := make(http.Header, len(src))
	b.ReportAllocs()
	for b.Loop() {
		clear(h)
		for k, v := range src {
			h[k] = v
		}
		SanitizeInbound(h, false)
	}
}

// isHopByHop and the hopByHop list name the same fields, and both ways
// of removing them (a walk for small headers, deletions for large ones)
// leave none behind, on requests and on responses.
func TestHopByHopSmallAndLargeHeaders(t *testing.T) {
	for _, k := range hopByHop {
		if !isHopByHop(k) {
			t.Errorf("isHopByHop(%q) = false", k)
		}
	}
	if isHopByHop("Content-Type") || isHopByHop("connection") {
		t.Error("isHopByHop takes a field it should not (names are canonical)")
	}
	for _, extra := range []int{0, 2, 20} {
		build := func() http.Header {
			h := http.Header{"Content-Type": {"text/plain"}}
			for _, k := range hopByHop {
				if k != "Te" && k != "Upgrade" {
					h[k] = []string{"x"}
				}
			}
			h["Connection"] = []string{"X-Secret"}
			h["X-Secret"] = []string{"s"}
			for i := range extra {
				h[fmt.Sprintf("X-Extra-%d", i)] = []string{"v"}
			}
			return h
		}
		for name, strip := range map[string]func(http.Header){
			"request":  func(h http.Header) { SanitizeInbound(h, false) },
			"response": removeHopByHop,
		} {
			h := build()
			strip(h)
			for k := range h {
				if isHopByHop(k) || k == "X-Secret" {
					t.Errorf("%s with %d extra fields: %s survived", name, extra, k)
				}
			}
			if h.Get("Content-Type") != "text/plain" || len(h) != 1+extra {
				t.Errorf("%s with %d extra fields: left %v", name, extra, h)
			}
		}
	}
}
