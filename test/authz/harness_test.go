package authz

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/portunus-gw/portunus/internal/gateway"
	"github.com/portunus-gw/portunus/internal/gateway/gatewaytest"
	"golang.org/x/crypto/bcrypt"
)

// waitLimit bounds every wait so a regression fails instead of hanging.
const waitLimit = 20 * time.Second

// upstreamSaw is what the recording upstream received, echoed back as
// its JSON body, so each request's answer says what reached the upstream.
type upstreamSaw struct {
	Path   string      `json:"path"`
	Query  string      `json:"query"`
	Header http.Header `json:"header"`
}

// newEchoUpstream answers every request with what it saw and the header
// X-Upstream: reached, which the gateway never sets itself.
func newEchoUpstream(t *testing.T) *httptest.Server {
	t.Helper()
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Upstream", "reached")
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(upstreamSaw{Path: r.URL.EscapedPath(), Query: r.URL.RawQuery, Header: r.Header})
	}))
	t.Cleanup(up.Close)
	return up
}

// startGateway runs a gateway in-process with cfg and returns it.
func startGateway(t *testing.T, cfg string) *gateway.Runtime { return gatewaytest.Start(t, cfg) }

// onlyAddr is the address of a gateway's single listener.
func onlyAddr(t *testing.T, rt *gateway.Runtime) string {
	t.Helper()
	for _, a := range rt.ListenerAddrs() {
		return a
	}
	t.Fatal("gateway has no listener")
	return ""
}

func sha256Key(k string) string {
	s := sha256.Sum256([]byte(k))
	return "sha256:" + hex.EncodeToString(s[:])
}

func bcryptHash(t *testing.T, pw string) string {
	t.Helper()
	h, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	return string(h)
}

// answer is one response as the client read it.
type answer struct {
	status   int
	header   http.Header
	body     string
	reached  bool
	upstream upstreamSaw
}

// rawRequest sends request line target and the given header lines over a
// fresh connection exactly as written (no client-side normalization of
// the path) and reads one response.
func rawRequest(t *testing.T, addr, method, target string, headers []string) answer {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, waitLimit)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(waitLimit))
	var b strings.Builder
	b.WriteString(method + " " + target + " HTTP/1.1\r\nHost: gw.test\r\nConnection: close\r\n")
	for _, h := range headers {
		b.WriteString(h + "\r\n")
	}
	b.WriteString("\r\n")
	if _, err := io.WriteString(c, b.String()); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("%s %s: read response: %v", method, target, err)
	}
	return readAnswer(t, resp)
}

func readAnswer(t *testing.T, resp *http.Response) answer {
	t.Helper()
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	a := answer{status: resp.StatusCode, header: resp.Header, body: string(body), reached: resp.Header.Get("X-Upstream") == "reached"}
	if a.reached {
		if err := json.Unmarshal(body, &a.upstream); err != nil {
			t.Fatalf("upstream echo: %v", err)
		}
	}
	return a
}

// httpNewRequest is a request with extra headers.
func httpNewRequest(method, url string, header map[string]string) (*http.Request, error) {
	r, err := http.NewRequest(method, url, nil)
	if err != nil {
		return nil, err
	}
	for k, v := range header {
		r.Header.Set(k, v)
	}
	return r, nil
}
