package aggregate

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/portunus-gw/portunus/internal/gateway"
)

// waitLimit bounds every wait so a regression fails instead of hanging.
const waitLimit = 10 * time.Second

// startExample runs examples/<name> in-process. subst maps each upstream
// URL the example names to the real server that stands in for it; the
// listener moves to a free port. It returns the gateway's base URL.
func startExample(t *testing.T, name string, subst map[string]string) string {
	t.Helper()
	_, base := startExampleWith(t, name, subst, "")
	return base
}

// startExampleWith is startExample with extra top-level YAML appended
// (e.g. an admin listener) and the runtime returned too.
func startExampleWith(t *testing.T, name string, subst map[string]string, extra string) (*gateway.Runtime, string) {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("..", "..", "examples", name))
	if err != nil {
		t.Fatal(err)
	}
	cfg := strings.Replace(string(raw), `address: "127.0.0.1:8080"`, `address: "127.0.0.1:0"`, 1)
	for from, to := range subst {
		if !strings.Contains(cfg, from) {
			t.Fatalf("%s does not name %s", name, from)
		}
		cfg = strings.ReplaceAll(cfg, `"`+from+`"`, `"`+to+`"`)
	}
	cfg += "\n" + extra
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	rt, err := gateway.Start(gateway.Options{ConfigPath: path, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatalf("start gateway with %s: %v", name, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
		defer cancel()
		rt.Shutdown(ctx)
	})
	for _, a := range rt.ListenerAddrs() {
		return rt, "http://" + a
	}
	t.Fatal("gateway has no listener")
	return nil, ""
}

// server starts a real upstream.
func server(t *testing.T, h http.HandlerFunc) *httptest.Server {
	t.Helper()
	s := httptest.NewServer(h)
	t.Cleanup(func() {
		s.CloseClientConnections()
		s.Close()
	})
	return s
}

// seen is what an upstream received.
type seen struct {
	Method string
	Path   string
	Query  string
	Header http.Header
}

// recorder is an upstream that records each request on a channel and
// answers with answer.
func recorder(t *testing.T, answer http.HandlerFunc) (*httptest.Server, chan seen) {
	ch := make(chan seen, 64)
	s := server(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case ch <- seen{r.Method, r.URL.EscapedPath(), r.URL.RawQuery, r.Header.Clone()}:
		default:
		}
		answer(w, r)
	})
	return s, ch
}

func jsonAnswer(body string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, body)
	}
}

type response struct {
	status int
	header http.Header
	body   []byte
}

func do(t *testing.T, ctx context.Context, method, url string, hdr ...string) response {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, kv := range hdr {
		k, v, _ := strings.Cut(kv, ": ")
		req.Header.Add(k, v)
	}
	c := &http.Client{Timeout: waitLimit}
	res, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{res.StatusCode, res.Header, b}
}

func (r response) object(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("body %q: %v", r.body, err)
	}
	return m
}

func next(t *testing.T, ch chan seen, who string) seen {
	t.Helper()
	select {
	case s := <-ch:
		return s
	case <-time.After(waitLimit):
		t.Fatalf("%s received nothing", who)
		return seen{}
	}
}
