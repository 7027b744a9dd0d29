package upstreams

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/portunus-gw/portunus/internal/gateway/gatewaytest"
)

// waitLimit bounds every wait so a regression fails instead of hanging.
const waitLimit = 20 * time.Second

// startGateway starts a gateway on the YAML config cfg and returns its
// base URL.
func startGateway(t *testing.T, cfg string) string {
	return gatewaytest.URL(t, gatewaytest.Start(t, cfg))
}

// target is a test upstream that counts what reaches it.
type target struct {
	url  string
	hits atomic.Int64
}

// healthy answers 200 with its name.
func healthy(t *testing.T, name string) *target {
	t.Helper()
	tg := &target{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tg.hits.Add(1)
		io.WriteString(w, name)
	}))
	t.Cleanup(srv.Close)
	tg.url = srv.URL
	return tg
}

// slowTarget answers 200 after delay.
func slowTarget(t *testing.T, delay time.Duration) *target {
	t.Helper()
	tg := &target{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tg.hits.Add(1)
		select {
		case <-time.After(delay):
		case <-r.Context().Done():
			return
		}
		io.WriteString(w, "slow")
	}))
	t.Cleanup(srv.Close)
	tg.url = srv.URL
	return tg
}

// load sends n GETs from workers concurrent clients and returns how many
// did not get a 200, with one example of a failure.
func load(t *testing.T, base string, workers, n int) (failed int64, example string) {
	t.Helper()
	failed, example, _ = loadHooked(t, base, workers, n, 0, nil)
	return failed, example
}

// loadTimed is load that also reports the longest a request took.
func loadTimed(t *testing.T, base string, workers, n int) (failed int64, example string, longest time.Duration) {
	t.Helper()
	return loadHooked(t, base, workers, n, 0, nil)
}

// loadHooked is loadTimed that calls mid (when not nil) once, from the
// worker whose request completes the at-th answer, while the other
// workers go on sending: a fault injected during load.
func loadHooked(t *testing.T, base string, workers, n int, at int64, mid func()) (failed int64, example string, longest time.Duration) {
	t.Helper()
	var slowest atomic.Int64
	client := &http.Client{Timeout: waitLimit}
	defer client.CloseIdleConnections()
	var bad atomic.Int64
	var ex atomic.Value
	var next, done atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(n) {
				st := time.Now()
				res, err := client.Get(base + "/svc/item")
				d := time.Since(st)
				for {
					old := slowest.Load()
					if int64(d) <= old || slowest.CompareAndSwap(old, int64(d)) {
						break
					}
				}
				if err != nil {
					bad.Add(1)
					ex.Store(err.Error())
				} else {
					b, _ := io.ReadAll(res.Body)
					res.Body.Close()
					if res.StatusCode != 200 {
						bad.Add(1)
						ex.Store(fmt.Sprintf("%d %s", res.StatusCode, b))
					}
				}
				if done.Add(1) == at && mid != nil {
					mid()
				}
			}
		}()
	}
	wg.Wait()
	if v := ex.Load(); v != nil {
		example = v.(string)
	}
	return bad.Load(), example, time.Duration(slowest.Load())
}

// poll waits up to waitLimit for cond.
func poll(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
