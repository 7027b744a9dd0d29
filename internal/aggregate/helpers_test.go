package aggregate

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/portunus-gw/portunus/internal/config"
	"github.com/portunus-gw/portunus/internal/pipeline"
	"github.com/portunus-gw/portunus/internal/upstream"
)

// TestMain fails the package if any test leaves a goroutine behind: every
// fan-out must have ended when its handler returned, and every pool's
// connections are closed in cleanups.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// backend starts a real upstream server and a pool named name for it.
func backend(t *testing.T, name string, h http.HandlerFunc) *upstream.Pool {
	t.Helper()
	srv := httptest.NewServer(h)
	pool, err := upstream.NewPool(config.Upstream{Name: name, Targets: []config.Target{{URL: srv.URL}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		srv.CloseClientConnections()
		srv.Close()
		pool.Close()
	})
	return pool
}

// jsonAnswer answers body as JSON.
func jsonAnswer(body string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(body))
	}
}

// waitCancelled blocks until the client cancels the request (or 10 s),
// and reports on seen that it saw the cancellation.
func waitCancelled(seen chan<- string, name string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
			seen <- name
		case <-time.After(10 * time.Second):
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte(`{"late":true}`))
		}
	}
}

func plan(t *testing.T, c config.Aggregate, pools map[string]*upstream.Pool, params ...string) *Plan {
	t.Helper()
	p, err := Compile(&c, Options{Pools: pools, Params: params})
	if err != nil {
		t.Fatalf("Compile: %v", err)
	}
	return p
}

// serve runs p for a GET of target with the route params given in pairs.
func serve(p *Plan, ctx context.Context, method, target string, params ...string) *httptest.ResponseRecorder {
	r := httptest.NewRequestWithContext(ctx, method, target, nil)
	s := &pipeline.State{RequestID: "req-1"}
	for i := 0; i+1 < len(params); i += 2 {
		s.Params.Add(params[i], params[i+1])
	}
	s.Consumer = "alice"
	w := httptest.NewRecorder()
	p.Handler()(w, r, s)
	return w
}

func decodeBody(t *testing.T, w *httptest.ResponseRecorder) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(w.Body.Bytes(), &m); err != nil {
		t.Fatalf("body %q is not a JSON object: %v", w.Body.String(), err)
	}
	return m
}
