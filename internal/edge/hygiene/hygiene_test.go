package hygiene_test

import (
	"encoding/base64"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/portunus-gw/portunus/internal/edge/hygiene"
)

func TestMustClose(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name         string
		major, minor int
		te           []string
		want         bool
	}{
		{"HTTP/1.1 no body coding", 1, 1, nil, false},
		{"HTTP/1.1 chunked", 1, 1, []string{"chunked"}, true},
		{"HTTP/1.0 plain", 1, 0, nil, true},
		{"HTTP/2 chunked flag ignored", 2, 0, []string{"chunked"}, false},
		{"HTTP/1.1 identity", 1, 1, []string{"identity"}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := &http.Request{ProtoMajor: tc.major, ProtoMinor: tc.minor, TransferEncoding: tc.te}
			if got := hygiene.MustClose(r); got != tc.want {
				t.Errorf("MustClose: got %v; want %v", got, tc.want)
			}
		})
	}
}

func TestCheckUpgrade(t *testing.T) {
	t.Parallel()
	const key = "dGhlIHNhbXBsZSBub25jZQ=="
	valid := func() http.Header {
		return http.Header{
			"Connection":            {"keep-alive, Upgrade"},
			"Upgrade":               {"websocket"},
			"Sec-Websocket-Key":     {key},
			"Sec-Websocket-Version": {"13"},
		}
	}
	cases := []struct {
		name   string
		method string
		minor  int
		edit   func(h http.Header)
		ok     bool
	}{
		{"valid", "GET", 1, func(http.Header) {}, true},
		{"not an upgrade: no Connection token", "POST", 0, func(h http.Header) { h["Connection"] = []string{"keep-alive"} }, true},
		{"not websocket: h2c", "POST", 1, func(h http.Header) { h["Upgrade"] = []string{"h2c"} }, true},
		{"case-insensitive tokens", "GET", 1, func(h http.Header) { h["Upgrade"] = []string{"WebSocket"}; h["Connection"] = []string{"UPGRADE"} }, true},
		{"no key", "GET", 1, func(h http.Header) { delete(h, "Sec-Websocket-Key") }, false},
		{"two keys", "GET", 1, func(h http.Header) { h["Sec-Websocket-Key"] = []string{key, key} }, false},
		{"short key", "GET", 1, func(h http.Header) { h["Sec-Websocket-Key"] = []string{"c2hvcnQ="} }, false},
		{"17-byte key", "GET", 1, func(h http.Header) {
			h["Sec-Websocket-Key"] = []string{base64.StdEncoding.EncodeToString(make([]byte, 17))}
		}, false},
		{"key not base64", "GET", 1, func(h http.Header) { h["Sec-Websocket-Key"] = []string{"!!!!!!!!!!!!!!!!!!!!!!=="} }, false},
		{"url-safe alphabet", "GET", 1, func(h http.Header) { h["Sec-Websocket-Key"] = []string{"-_-_-_-_-_-_-_-_-_-_-w=="} }, false},
		{"no version", "GET", 1, func(h http.Header) { delete(h, "Sec-Websocket-Version") }, false},
		{"version 8", "GET", 1, func(h http.Header) { h["Sec-Websocket-Version"] = []string{"8"} }, false},
		{"version list", "GET", 1, func(h http.Header) { h["Sec-Websocket-Version"] = []string{"13, 8"} }, false},
		{"POST", "POST", 1, func(http.Header) {}, false},
		{"HTTP/1.0", "GET", 0, func(http.Header) {}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := valid()
			tc.edit(h)
			r := &http.Request{Method: tc.method, ProtoMajor: 1, ProtoMinor: tc.minor, Header: h}
			got := hygiene.CheckUpgrade(r)
			if (got == "") != tc.ok {
				t.Errorf("CheckUpgrade: got %q; want ok=%v", got, tc.ok)
			}
		})
	}
}

func FuzzValidWebSocketKey(f *testing.F) {
	for _, s := range []string{"dGhlIHNhbXBsZSBub25jZQ==", "", "c2hvcnQ=", "AAAAAAAAAAAAAAAAAAAAAA==", "AAAAAAAAAAAAAAAAAAAAAB==", " dGhlIHNhbXBsZSBub25jZQ== ", "dGhlIHNhbXBsZSBub25jZQ"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, k string) {
		got := hygiene.ValidWebSocketKey(k)
		// The decoder skips CR and LF; a key is exactly 24 characters.
		b, err := base64.StdEncoding.Strict().DecodeString(trim(k))
		want := err == nil && len(b) == 16 && len(trim(k)) == 24
		if got != want {
			t.Errorf("ValidWebSocketKey(%q): got %v; want %v", k, got, want)
		}
	})
}

// trim is the OWS trim a header value gets (space and tab).
func trim(s string) string {
	for len(s) > 0 && (s[0] == ' ' || s[0] == '\t') {
		s = s[1:]
	}
	for len(s) > 0 && (s[len(s)-1] == ' ' || s[len(s)-1] == '\t') {
		s = s[:len(s)-1]
	}
	return s
}

func BenchmarkFrontChecks(b *testing.B) {
	r := &http.Request{Method: "GET", ProtoMajor: 1, ProtoMinor: 1, Header: http.Header{
		"Accept": {"*/*"}, "User-Agent": {"bench"}, "Connection": {"keep-alive"},
	}, Body: http.NoBody}
	b.ReportAllocs()
	for b.Loop() {
		if hygiene.MustClose(r) || hygiene.CheckUpgrade(r) != "" {
			b.Fatal("plain GET refused")
		}
		r2, release := hygiene.WatchBody(nil, r, 30e9)
		release()
		if r2 != r {
			b.Fatal("body-less request copied")
		}
	}
}

func TestWatchBodySkips(t *testing.T) {
	t.Parallel()
	body := io.NopCloser(strings.NewReader("x"))
	cases := []struct {
		name  string
		r     *http.Request
		d     time.Duration
		watch bool
	}{
		{"no body", &http.Request{ProtoMajor: 1, ProtoMinor: 1, Body: http.NoBody, Header: http.Header{}}, time.Second, false},
		{"zero timeout", &http.Request{ProtoMajor: 1, ProtoMinor: 1, Body: body, ContentLength: 1, Header: http.Header{}}, 0, false},
		{"gRPC over HTTP/2", &http.Request{ProtoMajor: 2, Body: body, ContentLength: -1, Header: http.Header{"Content-Type": {"application/grpc+proto"}}}, time.Second, false},
		{"gRPC-Web over HTTP/2", &http.Request{ProtoMajor: 2, Body: body, ContentLength: -1, Header: http.Header{"Content-Type": {"application/grpc-web+proto"}}}, time.Second, true},
		{"gRPC content type on HTTP/1.1", &http.Request{ProtoMajor: 1, ProtoMinor: 1, Body: body, ContentLength: 1, Header: http.Header{"Content-Type": {"application/grpc"}}}, time.Second, true},
		{"HTTP/1.1 body", &http.Request{ProtoMajor: 1, ProtoMinor: 1, Body: body, ContentLength: 1, Header: http.Header{}}, time.Second, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r2, release := hygiene.WatchBody(httptest.NewRecorder(), tc.r, tc.d)
			defer release()
			if watched := r2 != tc.r; watched != tc.watch {
				t.Errorf("watched: got %v; want %v", watched, tc.watch)
			}
		})
	}
}
