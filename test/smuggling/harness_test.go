package smuggling

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/portunus-gw/portunus/internal/gateway"
)

// waitLimit bounds every wait so a regression fails instead of hanging.
const waitLimit = 20 * time.Second

// rawUpstream is a TCP server that speaks just enough HTTP/1.1 to answer
// (200 "ok" to every complete request) and records every byte it was
// sent, per connection, exactly as received.
type rawUpstream struct {
	ln    net.Listener
	mu    sync.Mutex
	conns []*upConn
	wg    sync.WaitGroup
}

type upConn struct {
	buf    bytes.Buffer
	idle   bool // waiting for the first byte of a request, nothing buffered
	closed bool
}

func newRawUpstream(t *testing.T) *rawUpstream {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u := &rawUpstream{ln: ln}
	u.wg.Add(1)
	go u.accept()
	t.Cleanup(func() {
		ln.Close()
		u.wg.Wait()
	})
	return u
}

func (u *rawUpstream) accept() {
	defer u.wg.Done()
	for {
		c, err := u.ln.Accept()
		if err != nil {
			return
		}
		uc := &upConn{}
		u.mu.Lock()
		u.conns = append(u.conns, uc)
		u.mu.Unlock()
		u.wg.Add(1)
		go u.serve(c, uc)
	}
}

// recorder appends what the upstream reads to its connection's buffer.
type recorder struct {
	u  *rawUpstream
	uc *upConn
}

func (r recorder) Write(p []byte) (int, error) {
	r.u.mu.Lock()
	defer r.u.mu.Unlock()
	return r.uc.buf.Write(p)
}

func (u *rawUpstream) setIdle(uc *upConn, idle bool) {
	u.mu.Lock()
	uc.idle = idle
	u.mu.Unlock()
}

func (u *rawUpstream) serve(c net.Conn, uc *upConn) {
	defer u.wg.Done()
	defer func() {
		c.Close()
		u.mu.Lock()
		uc.closed = true
		u.mu.Unlock()
	}()
	_ = c.SetDeadline(time.Now().Add(2 * waitLimit))
	br := bufio.NewReader(io.TeeReader(c, recorder{u, uc}))
	for {
		u.setIdle(uc, br.Buffered() == 0)
		if _, err := br.Peek(1); err != nil {
			return
		}
		u.setIdle(uc, false)
		req, err := http.ReadRequest(br)
		if err != nil {
			return
		}
		if _, err := io.Copy(io.Discard, req.Body); err != nil {
			return
		}
		if _, err := io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok"); err != nil {
			return
		}
	}
}

// settled reports whether every upstream connection is closed or waits
// between requests (and, with allClosed, is closed).
func (u *rawUpstream) settled(allClosed bool) bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	for _, c := range u.conns {
		if !c.closed && (allClosed || !c.idle) {
			return false
		}
	}
	return true
}

var requestID = regexp.MustCompile(`(?m)^X-Request-Id: [^\r\n]*`)

// transcript is every byte the upstream received, connections in the
// order they were opened, with the values that differ per run (its own
// address, the request id) replaced by <up> and <id>.
func (u *rawUpstream) transcript() string {
	u.mu.Lock()
	var b strings.Builder
	for i, c := range u.conns {
		if i > 0 {
			b.WriteString("|conn|")
		}
		b.Write(c.buf.Bytes())
	}
	u.mu.Unlock()
	s := strings.ReplaceAll(b.String(), u.ln.Addr().String(), "<up>")
	return requestID.ReplaceAllString(s, "X-Request-Id: <id>")
}

// waitSettled waits, up to waitLimit, for the upstream to finish what the
// gateway sent it.
func (u *rawUpstream) waitSettled(t *testing.T, allClosed bool) {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for !u.settled(allClosed) {
		if time.Now().After(deadline) {
			t.Fatalf("upstream did not settle within %v (allClosed=%v)", waitLimit, allClosed)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// startGateway starts a gateway in-process on 127.0.0.1:0 with the given
// listener limits, a /probe route answered locally, and everything else
// proxied to upstreamURL. It returns the listener's address.
func startGateway(t *testing.T, upstreamURL, limits string) string {
	t.Helper()
	return startGatewayWith(t, upstreamURL, limits, "")
}

// startGatewayWith is startGateway with extra upstream settings (YAML
// flow-mapping entries, e.g. "passive_health: {...}").
func startGatewayWith(t *testing.T, upstreamURL, limits, upstreamExtra string) string {
	t.Helper()
	if upstreamExtra != "" {
		upstreamExtra = "\n    " + upstreamExtra
	}
	cfg := fmt.Sprintf(`
listeners: [{ address: "127.0.0.1:0", limits: { %s } }]
observability: { access_log: { path: "off" } }
upstreams:
  - name: up
    targets: [{ url: %q }]%s
routes:
  - name: probe
    match: { path: /probe }
    respond: { status: 200, body: probe, headers: { Content-Type: text/plain } }
  - name: all
    match: { path_prefix: / }
    upstream: up
`, limits, upstreamURL, upstreamExtra)
	path := filepath.Join(t.TempDir(), "portunus.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() && os.Getenv("SMUGGLING_LOG") != "" {
		log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	rt, err := gateway.Start(gateway.Options{ConfigPath: path, Log: log})
	if err != nil {
		t.Fatalf("start gateway: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
		defer cancel()
		rt.Shutdown(ctx)
	})
	for _, a := range rt.ListenerAddrs() {
		return a
	}
	t.Fatal("gateway has no listener")
	return ""
}

// answer is one response as the client read it.
type answer struct {
	status      string // "HTTP/1.1 400 Bad Request"
	contentType string
	body        string
}

// dial opens a raw connection to addr with a generous deadline.
func dial(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, waitLimit)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(2 * waitLimit))
	return c
}

// readAnswers reads up to n responses from br; it stops early when the
// connection ends.
func readAnswers(br *bufio.Reader, n int) ([]answer, error) {
	var out []answer
	for range n {
		res, err := http.ReadResponse(br, nil)
		if err != nil {
			return out, err
		}
		b, err := io.ReadAll(res.Body)
		res.Body.Close()
		if err != nil {
			return out, err
		}
		out = append(out, answer{status: res.Proto + " " + res.Status, contentType: res.Header.Get("Content-Type"), body: string(b)})
	}
	return out, nil
}

// closedByPeer reads br to its end and reports whether the connection
// was closed with nothing more sent (true), or what arrived instead.
func closedByPeer(br *bufio.Reader) (bool, string) {
	rest, err := io.ReadAll(br)
	if len(rest) > 0 {
		return false, fmt.Sprintf("%d more bytes: %.80q", len(rest), rest)
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return false, "still open after " + (2 * waitLimit).String()
	}
	return true, ""
}
