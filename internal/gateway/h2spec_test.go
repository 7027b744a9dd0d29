package gateway

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/summerwind/h2spec/config"
	"github.com/summerwind/h2spec/generic"
	h2spechpack "github.com/summerwind/h2spec/hpack"
	h2spechttp2 "github.com/summerwind/h2spec/http2"
	"github.com/summerwind/h2spec/spec"
)

// h2specKnownDeviations are h2spec cases Go's own HTTP/2 server (which
// every listener uses) fails, by h2spec id, each with the reason. They
// are documented in docs/http2.md; any other failure fails TestH2Spec.
var h2specKnownDeviations = map[string]string{
	"http2/6.5.3/1":   "a SETTINGS frame repeating a setting is answered with a PROTOCOL_ERROR connection error instead of the last value being applied",
	"http2/8.1.2.2/1": "a request with a connection-specific header field is answered 400 Bad Request instead of a PROTOCOL_ERROR stream reset; it never reaches the gateway",
	"http2/8.1.2.2/2": "a request with TE other than \"trailers\" is answered 400 Bad Request instead of a PROTOCOL_ERROR stream reset; it never reaches the gateway",
}

// h2specResult is one h2spec case's outcome.
type h2specResult struct {
	id, desc string
	failed   bool
	skipped  bool
	err      error
}

// collectH2Spec walks a test group the way h2spec numbers its cases:
// "group-id/seq", seq counting normal then strict cases from 1.
func collectH2Spec(tg *spec.TestGroup, out *[]h2specResult) {
	for i, tc := range append(append([]*spec.TestCase{}, tg.Tests...), tg.StrictTests...) {
		if tc.Result == nil {
			continue
		}
		*out = append(*out, h2specResult{
			id: tg.ID() + "/" + strconv.Itoa(i+1), desc: tc.Desc,
			failed: tc.Result.Failed, skipped: tc.Result.Skipped, err: tc.Result.Error,
		})
	}
	for _, g := range tg.Groups {
		collectH2Spec(g, out)
	}
}

// TestH2Spec runs h2spec's generic, http2 and hpack suites (as a library)
// against a TLS listener with a generated certificate.
func TestH2Spec(t *testing.T) {
	if testing.Short() {
		t.Skip("h2spec takes several seconds")
	}
	ca := lsNewCA(t)
	certFile, keyFile := ca.leaf(t, t.TempDir(), "server", "localhost", "127.0.0.1")
	lsRequireTLSManager(t, certFile, keyFile)
	// The upstream reads the whole request body before answering, as a
	// real service does: h2spec's body, flow-control and content-length
	// cases need the stream still open while their frames arrive.
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		_, _ = io.WriteString(w, "h2spec")
	}))
	t.Cleanup(up.Close)
	g := startGateway(t, fmt.Sprintf(`
listeners:
  - address: "127.0.0.1:0"
    tls: { certificates: [{ cert_file: %q, key_file: %q }] }
observability: { access_log: { path: "off" } }
upstreams: [{ name: up, targets: [{ url: %q }] }]
routes:
  - name: all
    match: { path_prefix: / }
    upstream: up
`, certFile, keyFile, up.URL))
	addr := g.lsAddr("127.0.0.1:0")
	host, portStr, _ := net.SplitHostPort(addr)
	port, _ := strconv.Atoi(portStr)
	// h2spec exits the process when it cannot connect: make sure it can.
	c, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		t.Fatalf("listener not reachable: %v", err)
	}
	c.Close()

	cfg := &config.Config{
		Host: host, Port: port, Path: "/", Timeout: 6 * time.Second, // generous: CI runs packages in parallel on 2 cores under -race
		MaxHeaderLen: 4000, TLS: true, Insecure: true,
	}
	var results []h2specResult
	for _, s := range []*spec.TestGroup{generic.Spec(), h2spechttp2.Spec(), h2spechpack.Spec()} {
		s.Test(cfg)
		collectH2Spec(s, &results)
	}
	if len(results) < 100 {
		t.Fatalf("h2spec ran %d cases; want the whole suite (over 100)", len(results))
	}
	passed, skipped := 0, 0
	var unexpected, deviations []string
	seenDeviation := map[string]bool{}
	for _, r := range results {
		switch {
		case r.skipped:
			skipped++
		case !r.failed:
			passed++
		case h2specKnownDeviations[r.id] != "":
			seenDeviation[r.id] = true
			deviations = append(deviations, r.id)
		default:
			unexpected = append(unexpected, fmt.Sprintf("%s %s: %v", r.id, r.desc, r.err))
		}
	}
	t.Logf("h2spec: %d cases, %d passed, %d skipped, %d known deviations %v", len(results), passed, skipped, len(deviations), deviations)
	for id, why := range h2specKnownDeviations {
		if !seenDeviation[id] {
			t.Logf("known deviation %s (%s) no longer fails: remove it from the list and docs/http2.md", id, why)
		}
	}
	sort.Strings(unexpected)
	if len(unexpected) > 0 {
		t.Errorf("h2spec failures not in the known-deviation list:\n%s", strings.Join(unexpected, "\n"))
	}
}
