package compress

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/andybalholm/brotli"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"

	"github.com/portunus-gw/portunus/internal/config"
	"github.com/portunus-gw/portunus/internal/pipeline"
)

// defaults is a route's compression: {} after config loading.
func defaults() config.Compression {
	return config.Compression{MinBytes: config.DefaultCompressMinBytes, Types: config.DefaultCompressTypes, Algorithms: config.DefaultCompressAlgorithms}
}

// serve runs h behind the middleware for c on a real socket.
func serve(t *testing.T, c config.Compression, h pipeline.Handler) string {
	t.Helper()
	mw, err := New(c)
	if err != nil {
		t.Fatal(err)
	}
	wrapped := mw(h)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		wrapped(w, r, &pipeline.State{})
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// rawClient never asks for or undoes compression by itself.
var rawClient = &http.Client{Transport: &http.Transport{DisableCompression: true}, Timeout: 30 * time.Second}

func fetch(t *testing.T, method, url string, hdr map[string]string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := rawClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

func decoder(t *testing.T, enc string, r io.Reader) io.Reader {
	t.Helper()
	switch enc {
	case "gzip":
		zr, err := gzip.NewReader(r)
		if err != nil {
			t.Fatal(err)
		}
		return zr
	case "br":
		return brotli.NewReader(r)
	case "zstd":
		zr, err := zstd.NewReader(r)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(zr.Close)
		return zr
	case "":
		return r
	}
	t.Fatalf("unknown Content-Encoding %q", enc)
	return nil
}

func decode(t *testing.T, enc string, b []byte) string {
	t.Helper()
	out, err := io.ReadAll(decoder(t, enc, bytes.NewReader(b)))
	if err != nil {
		t.Fatalf("decode %s: %v", enc, err)
	}
	return string(out)
}

var bigJSON = `{"items":[` + strings.Repeat(`{"name":"portunus","kind":"gateway"},`, 200) + `{}]}`

func TestRoundTrip(t *testing.T) {
	t.Parallel()
	url := serve(t, defaults(), func(w http.ResponseWriter, r *http.Request, _ *pipeline.State) {
		w.Header().Set("Content-Type", "application/json")
		// Several writes, some smaller than the encoders' buffers.
		for i := 0; i < len(bigJSON); i += 700 {
			_, _ = io.WriteString(w, bigJSON[i:min(i+700, len(bigJSON))])
		}
	})
	for _, enc := range []string{"gzip", "br", "zstd"} {
		t.Run(enc, func(t *testing.T) {
			t.Parallel()
			// Repeat so pooled encoders are reused.
			for range 3 {
				resp, b := fetch(t, "GET", url, map[string]string{"Accept-Encoding": enc})
				if got := resp.Header.Get("Content-Encoding"); got != enc {
					t.Fatalf("Content-Encoding = %q; want %q", got, enc)
				}
				if len(b) >= len(bigJSON) {
					t.Errorf("compressed size %d; want less than %d", len(b), len(bigJSON))
				}
				if got := decode(t, enc, b); got != bigJSON {
					t.Errorf("decoded body differs: got %d bytes; want %d", len(got), len(bigJSON))
				}
			}
		})
	}
}

// answer describes what a test handler sends.
type answer struct {
	status  int
	header  map[string]string
	body    string
	length  bool // set Content-Length
	noWrite bool
}

func TestMatrix(t *testing.T) {
	t.Parallel()
	big := strings.Repeat("hello portunus ", 200) // 3000 bytes
	small := "tiny"
	tests := []struct {
		name     string
		method   string
		ae       string
		ans      answer
		wantEnc  string
		wantVary string // "" means no Vary at all
		wantETag string
		wantCL   string // expected Content-Length ("-" for absent, "*" any but the original's)
	}{
		{"large known length gzip", "GET", "gzip", answer{header: map[string]string{"Content-Type": "text/plain"}, body: big, length: true}, "gzip", "Accept-Encoding", "", "*"},
		{"large unknown length zstd", "GET", "zstd", answer{header: map[string]string{"Content-Type": "text/html; charset=utf-8"}, body: big}, "zstd", "Accept-Encoding", "", "*"},
		{"below min known length", "GET", "gzip", answer{header: map[string]string{"Content-Type": "text/plain"}, body: small, length: true}, "", "Accept-Encoding", "", "4"},
		{"below min unknown length", "GET", "gzip", answer{header: map[string]string{"Content-Type": "text/plain"}, body: small}, "", "Accept-Encoding", "", "4"},
		{"non-compressible type", "GET", "gzip", answer{header: map[string]string{"Content-Type": "image/png"}, body: big}, "", "", "", "-"},
		{"no content type", "GET", "gzip", answer{body: big, length: true}, "", "", "", "3000"},
		{"already encoded", "GET", "gzip", answer{header: map[string]string{"Content-Type": "text/plain", "Content-Encoding": "br"}, body: big, length: true}, "br", "", "", "3000"},
		{"no-transform", "GET", "gzip", answer{header: map[string]string{"Content-Type": "text/plain", "Cache-Control": "public, No-Transform"}, body: big, length: true}, "", "", "", "3000"},
		{"no accept-encoding gets vary", "GET", "", answer{header: map[string]string{"Content-Type": "text/plain"}, body: big, length: true}, "", "Accept-Encoding", "", "3000"},
		{"identity only gets vary", "GET", "identity", answer{header: map[string]string{"Content-Type": "text/plain"}, body: big, length: true}, "", "Accept-Encoding", "", "3000"},
		{"head", "HEAD", "gzip", answer{header: map[string]string{"Content-Type": "text/plain"}, body: big, length: true}, "", "Accept-Encoding", "", "3000"},
		{"204", "GET", "gzip", answer{status: 204, header: map[string]string{"Content-Type": "text/plain"}, noWrite: true}, "", "", "", "-"},
		{"304", "GET", "gzip", answer{status: 304, header: map[string]string{"Content-Type": "text/plain", "ETag": `"v1"`}, noWrite: true}, "", "", `"v1"`, "-"},
		{"206", "GET", "gzip", answer{status: 206, header: map[string]string{"Content-Type": "text/plain", "Content-Range": "bytes 0-2999/9000"}, body: big, length: true}, "", "", "", "3000"},
		{"content-range on 200", "GET", "gzip", answer{header: map[string]string{"Content-Type": "text/plain", "Content-Range": "bytes 0-2999/3000"}, body: big, length: true}, "", "", "", "3000"},
		{"strong etag weakened", "GET", "br", answer{header: map[string]string{"Content-Type": "application/json", "ETag": `"abc"`}, body: big, length: true}, "br", "Accept-Encoding", `W/"abc"`, "*"},
		{"weak etag kept", "GET", "br", answer{header: map[string]string{"Content-Type": "application/json", "ETag": `W/"abc"`}, body: big, length: true}, "br", "Accept-Encoding", `W/"abc"`, "*"},
		{"vary merged", "GET", "gzip", answer{header: map[string]string{"Content-Type": "text/plain", "Vary": "Origin"}, body: big, length: true}, "gzip", "Origin, Accept-Encoding", "", "*"},
		{"vary already there", "GET", "gzip", answer{header: map[string]string{"Content-Type": "text/plain", "Vary": "accept-encoding, Origin"}, body: big, length: true}, "gzip", "accept-encoding, Origin", "", "*"},
		{"error status compressed", "GET", "gzip", answer{status: 500, header: map[string]string{"Content-Type": "application/problem+json"}, body: big, length: true}, "gzip", "Accept-Encoding", "", "*"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			url := serve(t, defaults(), func(w http.ResponseWriter, r *http.Request, _ *pipeline.State) {
				for k, v := range tc.ans.header {
					w.Header().Set(k, v)
				}
				if tc.ans.length {
					w.Header().Set("Content-Length", strconv.Itoa(len(tc.ans.body)))
				}
				status := tc.ans.status
				if status == 0 {
					status = 200
				}
				w.WriteHeader(status)
				if !tc.ans.noWrite {
					_, _ = io.WriteString(w, tc.ans.body)
				}
			})
			hdr := map[string]string{}
			if tc.ae != "" {
				hdr["Accept-Encoding"] = tc.ae
			}
			resp, b := fetch(t, tc.method, url, hdr)
			if got := resp.Header.Get("Content-Encoding"); got != tc.wantEnc {
				t.Errorf("Content-Encoding = %q; want %q", got, tc.wantEnc)
			}
			if got := strings.Join(resp.Header.Values("Vary"), ", "); got != tc.wantVary {
				t.Errorf("Vary = %q; want %q", got, tc.wantVary)
			}
			if got := resp.Header.Get("ETag"); got != tc.wantETag {
				t.Errorf("ETag = %q; want %q", got, tc.wantETag)
			}
			gotCL := "-"
			if v := resp.Header.Values("Content-Length"); len(v) > 0 {
				gotCL = v[0]
			}
			if tc.wantCL == "*" {
				if gotCL == strconv.Itoa(len(tc.ans.body)) {
					t.Errorf("Content-Length = %q; want anything but the uncompressed length", gotCL)
				}
			} else if gotCL != tc.wantCL {
				t.Errorf("Content-Length = %q; want %q", gotCL, tc.wantCL)
			}
			if tc.method == "HEAD" || tc.ans.noWrite {
				if len(b) != 0 {
					t.Errorf("body = %d bytes; want none", len(b))
				}
				return
			}
			enc := tc.wantEnc
			if enc == "br" && tc.ans.header["Content-Encoding"] == "br" {
				enc = "" // passed through untouched: compare raw bytes
			}
			if got := decode(t, enc, b); got != tc.ans.body {
				t.Errorf("body = %q...; want the original %d bytes", got[:min(len(got), 40)], len(tc.ans.body))
			}
		})
	}
}

func TestConfig(t *testing.T) {
	t.Parallel()
	big := strings.Repeat("z", 600)
	c := config.Compression{MinBytes: 500, Types: []string{"application/x-custom"}, Algorithms: []string{"gzip", "br"}}
	url := serve(t, c, func(w http.ResponseWriter, r *http.Request, _ *pipeline.State) {
		w.Header().Set("Content-Type", r.URL.Query().Get("ct"))
		_, _ = io.WriteString(w, big)
	})
	tests := []struct {
		name, ct, ae, want string
	}{
		{"configured type", "application/x-custom", "zstd, br, gzip", "gzip"},
		{"zstd not configured", "application/x-custom", "zstd", ""},
		{"br when gzip refused", "application/x-custom", "gzip;q=0, br", "br"},
		{"default type not configured", "text/plain", "gzip", ""},
	}
	for _, tc := range tests {
		resp, b := fetch(t, "GET", url+"?ct="+tc.ct, map[string]string{"Accept-Encoding": tc.ae})
		if got := resp.Header.Get("Content-Encoding"); got != tc.want {
			t.Errorf("%s: Content-Encoding = %q; want %q", tc.name, got, tc.want)
		}
		if got := decode(t, tc.want, b); got != big {
			t.Errorf("%s: decoded body differs", tc.name)
		}
	}
	for _, bad := range []config.Compression{
		{Algorithms: []string{"deflate"}},
		{Types: []string{"nonsense"}},
		{MinBytes: -1},
	} {
		if _, err := New(bad); err == nil {
			t.Errorf("New(%+v): got no error; want one", bad)
		}
	}
}

// TestUnknownLengthCrossesMin writes small pieces whose sum passes
// min_bytes: the buffered start must come out first, in order.
func TestUnknownLengthCrossesMin(t *testing.T) {
	t.Parallel()
	var want strings.Builder
	for i := range 400 {
		want.WriteString(strconv.Itoa(i) + ",")
	}
	url := serve(t, defaults(), func(w http.ResponseWriter, r *http.Request, _ *pipeline.State) {
		w.Header().Set("Content-Type", "text/csv")
		s := want.String()
		for i := 0; i < len(s); i += 7 {
			_, _ = io.WriteString(w, s[i:min(i+7, len(s))])
		}
	})
	resp, b := fetch(t, "GET", url, map[string]string{"Accept-Encoding": "gzip"})
	if got := resp.Header.Get("Content-Encoding"); got != "gzip" {
		t.Fatalf("Content-Encoding = %q; want gzip", got)
	}
	if got := decode(t, "gzip", b); got != want.String() {
		t.Errorf("decoded = %q; want %q", got, want.String())
	}
}

// TestEventStreamFlush reads the first event through a decompressor while
// the stream is still open: Flush must push it through the encoder.
func TestEventStreamFlush(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	url := serve(t, defaults(), func(w http.ResponseWriter, r *http.Request, _ *pipeline.State) {
		w.Header().Set("Content-Type", "text/event-stream")
		w.Header().Set("Cache-Control", "no-cache")
		rc := http.NewResponseController(w)
		_, _ = io.WriteString(w, "data: first\n\n")
		_ = rc.Flush()
		select {
		case <-release:
		case <-r.Context().Done():
			return
		}
		_, _ = io.WriteString(w, "data: second\n\n")
	})
	for _, enc := range []string{"gzip", "br", "zstd"} {
		t.Run(enc, func(t *testing.T) {
			req, _ := http.NewRequest("GET", url, nil)
			req.Header.Set("Accept-Encoding", enc)
			resp, err := rawClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if got := resp.Header.Get("Content-Encoding"); got != enc {
				t.Fatalf("Content-Encoding = %q; want %q", got, enc)
			}
			line, err := bufio.NewReader(decoder(t, enc, resp.Body)).ReadString('\n')
			if err != nil {
				t.Fatalf("reading the first event: %v", err)
			}
			if line != "data: first\n" {
				t.Errorf("first line = %q; want %q", line, "data: first\n")
			}
		})
	}
}

// TestHijack checks a WebSocket-style upgrade passes through a
// compressed route: the 101 and the raw bytes are untouched.
func TestHijack(t *testing.T) {
	t.Parallel()
	url := serve(t, defaults(), func(w http.ResponseWriter, r *http.Request, _ *pipeline.State) {
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		defer conn.Close()
		_, _ = brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\nraw-bytes")
		_ = brw.Flush()
	})
	c, err := net.Dial("tcp", strings.TrimPrefix(url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	_, _ = io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\nAccept-Encoding: gzip\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
	got, _ := io.ReadAll(c)
	if !strings.HasPrefix(string(got), "HTTP/1.1 101 ") || !strings.HasSuffix(string(got), "\r\n\r\nraw-bytes") || strings.Contains(string(got), "Content-Encoding") {
		t.Errorf("got %q; want the handler's 101 and raw bytes untouched", got)
	}
}

// TestTrailers checks trailers set after the body survive compression.
func TestTrailers(t *testing.T) {
	t.Parallel()
	url := serve(t, defaults(), func(w http.ResponseWriter, r *http.Request, _ *pipeline.State) {
		w.Header().Set("Content-Type", "text/plain")
		w.Header().Set("Trailer", "X-Checksum")
		_, _ = io.WriteString(w, strings.Repeat("t", 5000))
		w.Header().Set("X-Checksum", "ok")
	})
	resp, b := fetch(t, "GET", url, map[string]string{"Accept-Encoding": "gzip"})
	if got := decode(t, resp.Header.Get("Content-Encoding"), b); len(got) != 5000 {
		t.Errorf("body = %d bytes; want 5000", len(got))
	}
	if got := resp.Trailer.Get("X-Checksum"); got != "ok" {
		t.Errorf("trailer X-Checksum = %q; want ok", got)
	}
}
