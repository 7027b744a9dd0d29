package ratelimit

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/portunus-gw/portunus/internal/store/redistest"
)

// TestAccuracyAcrossInstances: three gateways on one Redis, 60 clients
// spread over them sending as fast as they can, limit 100 per hour (far
// too long a window to refill during the test): exactly 100 allowed.
func TestAccuracyAcrossInstances(t *testing.T) {
	t.Parallel()
	addr := redistest.Start(t)
	prefix := redistest.KeyPrefix(t)
	up := newUpstream(t)
	const (
		limit     = 100
		clients   = 60
		perClient = 12
	)
	var gws []*instance
	for range 3 {
		gws = append(gws, startInstance(t, gatewayConfig(up.URL, addr, prefix, "fail_closed", limit)))
	}
	var allowed, limited atomic.Int64
	var mu sync.Mutex
	var others []string
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := newClient()
			defer c.CloseIdleConnections()
			url := gws[i%len(gws)].url + "/limited"
			<-start
			for range perClient {
				a := get(c, url)
				switch {
				case a.err == nil && a.status == 200:
					allowed.Add(1)
				case a.err == nil && a.status == 429:
					limited.Add(1)
				default:
					mu.Lock()
					others = append(others, fmt.Sprintf("status %d err %v", a.status, a.err))
					mu.Unlock()
				}
			}
		}()
	}
	close(start)
	wg.Wait()
	if len(others) > 0 {
		t.Fatalf("%d answers neither 200 nor 429, e.g. %s", len(others), others[0])
	}
	if got := allowed.Load(); got != limit {
		t.Errorf("allowed %d of %d; want exactly %d", got, clients*perClient, limit)
	}
	if got := limited.Load(); got != clients*perClient-limit {
		t.Errorf("limited %d; want %d", got, clients*perClient-limit)
	}
}

// load sends requests to every instance from a few goroutines until stop
// is closed, and counts the answers by status (-1: transport error).
type load struct {
	stop chan struct{}
	wg   sync.WaitGroup
	mu   sync.Mutex
	bySt map[int]int
}

func startLoad(gws []*instance, workers int) *load {
	l := &load{stop: make(chan struct{}), bySt: map[int]int{}}
	for i := range workers {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			c := newClient()
			defer c.CloseIdleConnections()
			url := gws[i%len(gws)].url + "/limited"
			for {
				select {
				case <-l.stop:
					return
				default:
				}
				a := get(c, url)
				st := a.status
				if a.err != nil {
					st = -1
				}
				l.mu.Lock()
				l.bySt[st]++
				l.mu.Unlock()
				time.Sleep(time.Millisecond) // keep the 2-core box responsive
			}
		}()
	}
	return l
}

func (l *load) finish() map[int]int {
	close(l.stop)
	l.wg.Wait()
	return l.bySt
}

// waitStatus polls url until it answers want, within waitLimit.
func waitStatus(t *testing.T, url string, want int) {
	t.Helper()
	c := newClient()
	defer c.CloseIdleConnections()
	deadline := time.Now().Add(waitLimit)
	for {
		a := get(c, url)
		if a.err == nil && a.status == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: last answer %d (%v); want %d within %v", url, a.status, a.err, want, waitLimit)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// drain sends to the instances in turn until every one answers 429 and
// returns how many were allowed meanwhile.
func drain(t *testing.T, gws []*instance, max int) int {
	t.Helper()
	c := newClient()
	defer c.CloseIdleConnections()
	allowed := 0
	done := make([]bool, len(gws))
	for n := 0; n < max; n++ {
		i := n % len(gws)
		if done[i] {
			if all(done) {
				return allowed
			}
			continue
		}
		a := get(c, gws[i].url+"/limited")
		switch {
		case a.err != nil:
			t.Fatalf("instance %d: %v", i, a.err)
		case a.status == 200:
			allowed++
		case a.status == 429:
			done[i] = true
		default:
			t.Fatalf("instance %d: status %d; want 200 or 429", i, a.status)
		}
	}
	if !all(done) {
		t.Fatalf("instances still allowing after %d requests", max)
	}
	return allowed
}

func all(b []bool) bool {
	for _, v := range b {
		if !v {
			return false
		}
	}
	return true
}

// TestRedisFault stops Redis under load and restarts it, for both
// on_error modes, with two instances sharing it.
func TestRedisFault(t *testing.T) {
	t.Parallel()
	for _, mode := range []string{"fail_open", "fail_closed"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			srv := redistest.StartServer(t)
			prefix := redistest.KeyPrefix(t)
			up := newUpstream(t)
			const limit = 20
			gws := []*instance{
				startInstance(t, gatewayConfig(up.URL, srv.Addr(), prefix, mode, limit)),
				startInstance(t, gatewayConfig(up.URL, srv.Addr(), prefix, mode, limit)),
			}

			// Redis up: one limit shared by both instances.
			if got := drain(t, gws, 200); got != limit {
				t.Fatalf("redis up: allowed %d across instances; want %d", got, limit)
			}

			// Stop Redis while clients keep sending.
			l := startLoad(gws, 4)
			time.Sleep(100 * time.Millisecond)
			srv.Stop()
			time.Sleep(300 * time.Millisecond)
			byStatus := l.finish()
			if byStatus[-1] > 0 || byStatus[500] > 0 || byStatus[502] > 0 {
				t.Errorf("answers while Redis stopped: %v; want no transport errors, 500 or 502", byStatus)
			}
			switch mode {
			case "fail_open":
				// The local limiters decide, per instance: each allows
				// at most its own burst, and then refuses.
				if byStatus[503] > 0 {
					t.Errorf("fail_open answered 503 %d times; want none", byStatus[503])
				}
				got := drain(t, gws, 400)
				total := got + byStatus[200]
				if total < 1 || total > len(gws)*limit {
					t.Errorf("fail_open: allowed %d with Redis down; want 1..%d (per-instance limits)", total, len(gws)*limit)
				}
			case "fail_closed":
				if byStatus[503] == 0 {
					t.Errorf("fail_closed: no 503 while Redis stopped (%v)", byStatus)
				}
				c := newClient()
				for i, g := range gws {
					a := get(c, g.url+"/limited")
					if a.err != nil || a.status != 503 || a.retryAfter != "1" {
						t.Errorf("instance %d with Redis down: status %d, Retry-After %q, err %v; want 503, 1", i, a.status, a.retryAfter, a.err)
					}
				}
				c.CloseIdleConnections()
			}

			// Restart Redis (empty): decisions go back to it by
			// themselves, and the limit is shared again.
			srv.Restart()
			for _, g := range gws {
				waitStatus(t, g.url+"/limited", 200)
			}
			if got := drain(t, gws, 200); got != limit-len(gws) {
				t.Errorf("redis back: allowed %d more across instances; want %d (shared limit, %d used while waiting)", got, limit-len(gws), len(gws))
			}
		})
	}
}
