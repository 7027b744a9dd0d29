package gateway

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/portunus-gw/portunus/internal/config"
)

// TestReload10kRoutesKeepsServing reloads a 10,000-route config several
// times while clients keep sending requests over real sockets to two of
// its routes (one with a rate limit, CORS and header rules, one plain).
// Every request must get the right answer from a config that was live
// while it ran: no errors, no 5xx, never a version that was not yet
// loaded or one older than the last reload finished before it was sent,
// never an older version after a newer one on the same client, and never
// the invalid config. And traffic must not stall: during each valid
// reload, some requests sent after the reload began must be answered by
// the previous config, which is only possible while the new one is still
// being compiled. The longest latency seen is logged, not asserted.
func TestReload10kRoutesKeepsServing(t *testing.T) {
	if testing.Short() {
		t.Skip("compiles a 10,000-route config several times")
	}
	t.Parallel()
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, r.URL.Path+"|"+r.Header.Get("X-Route")+"|"+r.Header.Get("X-Id"))
	}))
	t.Cleanup(up.Close)

	cfg := bigConfig{routes: 10000, policies: true, upstream: up.URL, version: 1}
	g := startGateway(t, cfg.yaml())
	if n := len(g.rt.gw.Snapshot().routes); n != cfg.routes {
		t.Fatalf("%d routes compiled; want %d", n, cfg.routes)
	}

	// loaded is the newest version whose Reload returned; started the
	// newest whose Reload began. A request sent after loaded was read must
	// be answered by a version in [loaded, started].
	var loaded, started atomic.Int64
	loaded.Store(1)
	started.Store(1)
	// Reload k installs version k+1; the last but one config is invalid
	// and must leave the previous version serving.
	reloads := 5
	if raceEnabled {
		reloads = 3
	}
	invalid := reloads - 1
	invalidVersion := int64(reloads)
	// reloadGen is 2k-1 while reload k runs and 2k after it. servedDuring[k]
	// counts requests sent while reload k ran (the config file already
	// rewritten) and answered by the config live before it.
	var reloadGen atomic.Int64
	servedDuring := make([]atomic.Int64, reloads+1)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16}, Timeout: time.Minute}
	t.Cleanup(client.CloseIdleConnections)
	var requests, failures atomic.Int64
	var firstErr atomic.Value
	fail := func(format string, args ...any) {
		failures.Add(1)
		firstErr.CompareAndSwap(nil, fmt.Sprintf(format, args...))
	}
	var mu sync.Mutex
	var maxLatency, maxLatencyInReload, maxLatencyNoReload time.Duration
	const clients = 8
	var wg sync.WaitGroup
	for c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Even clients use route r0 (policies), odd ones r1 (plain).
			route := c % 2
			last := int64(0)
			for i := 0; ctx.Err() == nil; i++ {
				id := strconv.Itoa(c*1_000_000 + i)
				req, err := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("%s/v1/res%d/%s", g.url, route, id), nil)
				if err != nil {
					fail("new request: %v", err)
					return
				}
				req.Host = fmt.Sprintf("h%d.example.com", route)
				lo := loaded.Load()
				gen := reloadGen.Load()
				t0 := time.Now()
				resp, err := client.Do(req)
				if err != nil {
					if ctx.Err() != nil {
						return
					}
					fail("GET %s: %v", req.URL.Path, err)
					continue
				}
				body, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				took := time.Since(t0)
				hi := started.Load()
				requests.Add(1)
				mu.Lock()
				maxLatency = maxDuration(maxLatency, took)
				if gen%2 == 1 || reloadGen.Load() != gen {
					maxLatencyInReload = maxDuration(maxLatencyInReload, took)
				} else {
					maxLatencyNoReload = maxDuration(maxLatencyNoReload, took)
				}
				mu.Unlock()
				if err != nil {
					fail("GET %s: reading the body: %v", req.URL.Path, err)
					continue
				}
				if resp.StatusCode != http.StatusOK {
					fail("GET %s: status %d: %s", req.URL.Path, resp.StatusCode, body)
					continue
				}
				want := "/res/" + id + "||"
				if route == 0 {
					want = "/res/" + id + "|r0|" + id
				}
				if string(body) != want {
					fail("GET %s: upstream saw %q; want %q", req.URL.Path, body, want)
				}
				if got, want := resp.Header.Get("X-Route"), map[int]string{0: "r0", 1: ""}[route]; got != want {
					fail("GET %s: X-Route %q; want %q", req.URL.Path, got, want)
				}
				if resp.Header.Get("Server") != "" {
					fail("GET %s: Server header %q was not removed", req.URL.Path, resp.Header.Get("Server"))
				}
				v, err := strconv.ParseInt(strings.TrimPrefix(resp.Header.Get("X-Config"), "v"), 10, 64)
				switch {
				case err != nil:
					fail("GET %s: X-Config %q", req.URL.Path, resp.Header.Get("X-Config"))
				case v < lo || v > hi || v == invalidVersion:
					fail("GET %s: answered by config v%d; want v%d..v%d and never the invalid v%d", req.URL.Path, v, lo, hi, invalidVersion)
				case v < last:
					fail("GET %s: answered by config v%d after v%d on the same client", req.URL.Path, v, last)
				default:
					last = v
					if gen%2 == 1 && v == lo {
						servedDuring[(gen+1)/2].Add(1)
					}
				}
			}
		}()
	}

	waitRequests := func(n int64) {
		t.Helper()
		for requests.Load() < n && failures.Load() == 0 {
			time.Sleep(time.Millisecond)
		}
	}
	waitRequests(clients * 10)

	valid := 0
	for i := 1; i <= reloads; i++ {
		version := int64(i + 1)
		cfg.version = int(version)
		text := cfg.yaml()
		if i == invalid {
			text = strings.Replace(text, "upstream: up99\n", "upstream: missing\n", 1)
		} else {
			started.Store(version)
		}
		g.rewrite(text)
		prev := loaded.Load()
		reloadGen.Add(1)
		err := g.rt.Reload("test")
		reloadGen.Add(1)
		during := servedDuring[i].Load()
		if i == invalid {
			var el config.ErrorList
			if !errors.As(err, &el) {
				t.Fatalf("reload %d: invalid config gave %v; want a config.ErrorList", i, err)
			}
		} else {
			if err != nil {
				t.Fatalf("reload %d: %v", i, err)
			}
			loaded.Store(version)
			valid++
		}
		switch {
		case i == invalid:
			t.Logf("reload %d (v%d, invalid): refused; the previous config kept serving", i, version)
		case during == 0:
			t.Errorf("reload %d (v%d): no request sent during it was answered before the swap; traffic stalled", i, version)
		default:
			t.Logf("reload %d (v%d): %d requests sent during it were answered by v%d before the swap", i, version, during, prev)
		}
		// Let the clients run on this config before the next reload.
		waitRequests(requests.Load() + clients*10)
	}
	cancel()
	wg.Wait()
	if f := failures.Load(); f != 0 {
		t.Fatalf("%d of %d requests failed; first: %v", f, requests.Load(), firstErr.Load())
	}
	if st, hash := g.rt.LastReload(), g.rt.gw.Snapshot().Hash; !st.OK || st.Hash != hash {
		t.Errorf("last reload = %+v; want OK with the live snapshot's hash %s", st, hash)
	}
	resp := g.do(http.MethodGet, "/v1/res1/final", map[string]string{"Host": "h1.example.com"}, "")
	resp.Body.Close()
	if got, want := resp.Header.Get("X-Config"), fmt.Sprintf("v%d", reloads+1); resp.StatusCode != http.StatusOK || got != want {
		t.Errorf("after the reloads: status %d, X-Config %q; want 200 and %q", resp.StatusCode, got, want)
	}
	t.Logf("%d requests from %d clients over %d reloads (%d valid), 0 failures; longest request %v: %v overlapping a reload, %v with none running",
		requests.Load(), clients, reloads, valid, maxLatency, maxLatencyInReload, maxLatencyNoReload)
}

func maxDuration(a, b time.Duration) time.Duration {
	if b > a {
		return b
	}
	return a
}
