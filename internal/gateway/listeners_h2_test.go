package gateway

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// lsH2CConfig is a gateway whose only listener speaks h2c with prior
// knowledge, with a stream limit of streams.
func lsH2CConfig(upstreamURL string, streams int) string {
	return fmt.Sprintf(`
listeners: [{ address: "127.0.0.1:0", h2c: true, limits: { max_concurrent_streams: %d } }]
observability: { access_log: { path: "off" } }
upstreams:
  - name: up
    targets: [{ url: %q }]
routes:
  - name: ping
    match: { path: /ping }
    respond: { status: 200, body: pong }
  - name: echo
    match: { path_prefix: / }
    upstream: up
`, streams, upstreamURL)
}

// lsH2CClient speaks HTTP/2 with prior knowledge over plain TCP.
func lsH2CClient() *http.Client {
	return &http.Client{Timeout: 20 * time.Second, Transport: &http2.Transport{
		AllowHTTP: true,
		DialTLSContext: func(ctx context.Context, network, addr string, _ *tls.Config) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, addr)
		},
	}}
}

func TestH2CPriorKnowledge(t *testing.T) {
	t.Parallel()
	up := newUpstream(t, "up")
	g := startGateway(t, lsH2CConfig(up.URL, 10))
	c := lsH2CClient()
	for _, path := range []string{"/ping", "/echo/x"} {
		resp, err := c.Get(g.url + path)
		if err != nil {
			t.Fatalf("h2c GET %s: %v", path, err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || resp.Proto != "HTTP/2.0" {
			t.Errorf("GET %s: got %d %s; want 200 HTTP/2.0", path, resp.StatusCode, resp.Proto)
		}
	}
	// The same listener still serves HTTP/1.1.
	resp := g.do("GET", "/ping", nil, "")
	resp.Body.Close()
	if resp.Proto != "HTTP/1.1" || resp.StatusCode != 200 {
		t.Errorf("HTTP/1.1 on the h2c listener: got %d %s; want 200 HTTP/1.1", resp.StatusCode, resp.Proto)
	}
}

func TestH2CNotOnPlainListener(t *testing.T) {
	t.Parallel()
	up := newUpstream(t, "up")
	g := startGateway(t, baseConfig(up.URL, `
  - name: ping
    match: { path: /ping }
    respond: { status: 200, body: pong }
`))
	_, err := lsH2CClient().Get(g.url + "/ping")
	if err == nil {
		t.Fatal("h2c prior knowledge on a listener without h2c succeeded; want an error")
	}
}

// TestH2CUpgradeRefused: "Upgrade: h2c" is never honoured; the request is
// served as HTTP/1.1 and the Upgrade never reaches the upstream.
func TestH2CUpgradeRefused(t *testing.T) {
	t.Parallel()
	up := newUpstream(t, "up")
	g := startGateway(t, lsH2CConfig(up.URL, 10))
	conn, err := net.Dial("tcp", strings.TrimPrefix(g.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(20 * time.Second))
	_, err = io.WriteString(conn, "GET /echo/up HTTP/1.1\r\nHost: example.com\r\n"+
		"Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n")
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	s := readSeen(t, resp)
	if resp.StatusCode != 200 || resp.Proto != "HTTP/1.1" {
		t.Errorf("answer: got %d %s; want 200 HTTP/1.1 (no 101 Switching Protocols)", resp.StatusCode, resp.Proto)
	}
	for _, h := range []string{"Upgrade", "Http2-Settings"} {
		if v, ok := s.Header[h]; ok {
			t.Errorf("upstream received %s: %v; want it removed", h, v)
		}
	}
}

// lsH2Conn is a raw HTTP/2 client connection for frame-level assertions.
type lsH2Conn struct {
	t   *testing.T
	c   net.Conn
	fr  *http2.Framer
	enc *hpack.Encoder
	buf bytes.Buffer
}

func lsDialH2C(t *testing.T, addr string) *lsH2Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	if _, err := io.WriteString(c, http2.ClientPreface); err != nil {
		t.Fatal(err)
	}
	h := &lsH2Conn{t: t, c: c, fr: http2.NewFramer(c, c)}
	h.enc = hpack.NewEncoder(&h.buf)
	if err := h.fr.WriteSettings(); err != nil {
		t.Fatal(err)
	}
	return h
}

// serverSettings reads frames up to the server's first SETTINGS and
// returns it (and acknowledges it).
func (h *lsH2Conn) serverSettings() *http2.SettingsFrame {
	h.t.Helper()
	for {
		f, err := h.fr.ReadFrame()
		if err != nil {
			h.t.Fatalf("reading server SETTINGS: %v", err)
		}
		if sf, ok := f.(*http2.SettingsFrame); ok && !sf.IsAck() {
			if err := h.fr.WriteSettingsAck(); err != nil {
				h.t.Fatal(err)
			}
			return sf
		}
	}
}

func (h *lsH2Conn) get(streamID uint32, authority, path string) {
	h.t.Helper()
	h.buf.Reset()
	for _, kv := range [][2]string{{":method", "GET"}, {":scheme", "http"}, {":authority", authority}, {":path", path}} {
		_ = h.enc.WriteField(hpack.HeaderField{Name: kv[0], Value: kv[1]})
	}
	if err := h.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: streamID, BlockFragment: h.buf.Bytes(), EndStream: true, EndHeaders: true}); err != nil {
		h.t.Fatal(err)
	}
}

// TestH2StreamLimit: the listener announces max_concurrent_streams in its
// SETTINGS, and a stream opened beyond it is reset while the others are
// still open.
func TestH2StreamLimit(t *testing.T) {
	t.Parallel()
	started := make(chan struct{}, 8)
	release := make(chan struct{})
	defer close(release)
	up := newHoldUpstream(t, started, release)
	const limit = 3
	g := startGateway(t, lsH2CConfig(up.URL, limit))
	addr := strings.TrimPrefix(g.url, "http://")
	h := lsDialH2C(t, addr)
	sf := h.serverSettings()
	v, ok := sf.Value(http2.SettingMaxConcurrentStreams)
	if !ok || v != limit {
		t.Fatalf("SETTINGS_MAX_CONCURRENT_STREAMS = %d (present %v); want %d", v, ok, limit)
	}
	if v, ok := sf.Value(http2.SettingMaxHeaderListSize); !ok || v < 64<<10 {
		t.Errorf("SETTINGS_MAX_HEADER_LIST_SIZE = %d (present %v); want at least the 64KiB max_header_bytes", v, ok)
	}
	// Streams 1, 3, 5 hold the upstream; 7 is one too many.
	for i := range limit {
		h.get(uint32(2*i+1), addr, "/hold")
	}
	for range limit {
		select {
		case <-started:
		case <-time.After(20 * time.Second):
			t.Fatal("held requests did not reach the upstream")
		}
	}
	h.get(2*limit+1, addr, "/ping")
	for {
		f, err := h.fr.ReadFrame()
		if err != nil {
			t.Fatalf("waiting for the excess stream's reset: %v", err)
		}
		switch f := f.(type) {
		case *http2.RSTStreamFrame:
			if f.StreamID != 2*limit+1 {
				t.Fatalf("RST_STREAM on stream %d; want %d", f.StreamID, 2*limit+1)
			}
			if f.ErrCode != http2.ErrCodeRefusedStream && f.ErrCode != http2.ErrCodeProtocol {
				t.Errorf("excess stream reset with %v; want REFUSED_STREAM or PROTOCOL_ERROR", f.ErrCode)
			}
			return
		case *http2.HeadersFrame:
			t.Fatalf("stream %d answered while %d streams were open; want the excess stream refused", f.StreamID, limit)
		case *http2.GoAwayFrame:
			t.Fatalf("GOAWAY %v; want only the excess stream reset", f.ErrCode)
		}
	}
}
