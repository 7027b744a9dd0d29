package upstream

import (
	"fmt"
	"math"
	"net/http"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/portunus-gw/portunus/internal/config"
	"github.com/portunus-gw/portunus/internal/pipeline"
)

var balancers = []string{"round_robin", "least_conn", "p2c_ewma", "consistent_hash", "random"}

// fakeClock is a stepped monotonic clock for ejection and breaker tests.
type fakeClock struct{ n atomic.Int64 }

func (c *fakeClock) now() int64              { return c.n.Load() }
func (c *fakeClock) advance(d time.Duration) { c.n.Add(int64(d)) }

func newTestPool(t testing.TB, cfg config.Upstream, opts ...Option) *Pool {
	t.Helper()
	if cfg.Name == "" {
		cfg.Name = "u"
	}
	p, err := NewPool(cfg, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

func targetsOf(weights ...int) []config.Target {
	var ts []config.Target
	for i, w := range weights {
		ts = append(ts, config.Target{URL: fmt.Sprintf("http://t%d:80", i), Weight: w})
	}
	return ts
}

// stateFor gives each simulated client its own IP, so consistent_hash
// spreads over many keys like real traffic.
func stateFor(i int) *pipeline.State {
	return &pipeline.State{ClientIP: netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})}
}

// TestBalancerDistribution: over many picks (many clients for
// consistent_hash) every balancer splits traffic by weight, within 3
// percentage points.
func TestBalancerDistribution(t *testing.T) {
	t.Parallel()
	weights := []int{1, 2, 5}
	for _, bal := range balancers {
		t.Run(bal, func(t *testing.T) {
			t.Parallel()
			p := newTestPool(t, config.Upstream{Balancer: bal, Targets: targetsOf(weights...)})
			const n = 40000
			counts := map[*Target]int{}
			for i := range n {
				tg := p.Pick(stateFor(i))
				if tg == nil {
					t.Fatal("nil pick")
				}
				counts[tg]++
			}
			for i, tg := range p.Targets() {
				got := float64(counts[tg]) / n
				want := float64(weights[i]) / 8
				if math.Abs(got-want) > 0.03 {
					t.Errorf("%s got %.3f of picks; want %.3f ± 0.03", tg, got, want)
				}
			}
		})
	}
}

// markDown takes a target out of rotation the way failed active checks do.
func markDown(tg *Target) { tg.down.Or(downActive) }

func TestBalancersSkipUnusableTargets(t *testing.T) {
	t.Parallel()
	for _, bal := range balancers {
		t.Run(bal, func(t *testing.T) {
			t.Parallel()
			p := newTestPool(t, config.Upstream{Balancer: bal, Targets: targetsOf(1, 1, 1, 1)})
			ts := p.Targets()
			markDown(ts[0])
			markDown(ts[2])
			for i := range 2000 {
				tg := p.Pick(stateFor(i))
				if tg != ts[1] && tg != ts[3] {
					t.Fatalf("pick %d: got %v; want one of the usable targets", i, tg)
				}
			}
			markDown(ts[1])
			markDown(ts[3])
			if tg := p.Pick(stateFor(1)); tg != nil {
				t.Errorf("all targets down: got %v; want nil", tg)
			}
		})
	}
}

func TestPickExceptAvoidsTried(t *testing.T) {
	t.Parallel()
	for _, bal := range balancers {
		t.Run(bal, func(t *testing.T) {
			t.Parallel()
			p := newTestPool(t, config.Upstream{Balancer: bal, Targets: targetsOf(5, 1, 1)})
			ts := p.Targets()
			for i := range 1000 {
				s := stateFor(i)
				first := p.Pick(s)
				second := p.PickExcept(s, []*Target{first})
				if second == nil || second == first {
					t.Fatalf("PickExcept after %v: got %v; want another target", first, second)
				}
				third := p.PickExcept(s, []*Target{first, second})
				if third == nil || third == first || third == second {
					t.Fatalf("PickExcept after %v, %v: got %v; want the third target", first, second, third)
				}
			}
			// Every target tried: a usable one is still returned.
			if tg := p.PickExcept(stateFor(1), ts); tg == nil {
				t.Error("PickExcept with all tried: got nil; want a target (the pool still has usable ones)")
			}
			markDown(ts[1])
			markDown(ts[2])
			if tg := p.PickExcept(stateFor(1), ts[:1]); tg != ts[0] {
				t.Errorf("only the tried target usable: got %v; want it again", tg)
			}
		})
	}
}

// TestLeastConnPrefersIdle: with requests in flight, least_conn sends the
// next one to the target with the least load per weight.
func TestLeastConnPrefersIdle(t *testing.T) {
	t.Parallel()
	p := newTestPool(t, config.Upstream{Balancer: "least_conn", Targets: targetsOf(1, 1, 2)})
	ts := p.Targets()
	for range 3 {
		ts[0].Begin()
	}
	ts[1].Begin()
	for range 4 {
		ts[2].Begin() // 4 in flight at weight 2 = 2 per unit
	}
	for i := range 100 {
		if tg := p.Pick(stateFor(i)); tg != ts[1] {
			t.Fatalf("got %v; want %v (1 in flight per weight unit, the least)", tg, ts[1])
		}
	}
	// Simulated load: picks that stay in flight spread evenly by weight.
	q := newTestPool(t, config.Upstream{Balancer: "least_conn", Targets: targetsOf(1, 1, 2)})
	for range 400 {
		q.Pick(nil).Begin()
	}
	qs := q.Targets()
	if a, b, c := qs[0].InFlight(), qs[1].InFlight(), qs[2].InFlight(); a != 100 || b != 100 || c != 200 {
		t.Errorf("in flight after 400 held picks: %d %d %d; want 100 100 200", a, b, c)
	}
}

// TestP2CAvoidsSlowTarget: a target whose answers are slow gets a small
// share once its EWMA reflects it.
func TestP2CAvoidsSlowTarget(t *testing.T) {
	t.Parallel()
	p := newTestPool(t, config.Upstream{Balancer: "p2c_ewma", Targets: targetsOf(1, 1, 1)})
	ts := p.Targets()
	for range 20 {
		p.Report(ts[0], OutcomeSuccess, 200*time.Millisecond)
		p.Report(ts[1], OutcomeSuccess, 5*time.Millisecond)
		p.Report(ts[2], OutcomeSuccess, 5*time.Millisecond)
	}
	counts := map[*Target]int{}
	for range 9000 {
		counts[p.Pick(nil)]++
	}
	// The slow target is picked only when both draws hit it: 1/9.
	if got := float64(counts[ts[0]]) / 9000; got > 0.15 {
		t.Errorf("slow target got %.3f of picks; want at most 0.15", got)
	}
	// A fast-failing target is not attractive either.
	for range 20 {
		p.Report(ts[1], OutcomeFailure, time.Microsecond)
	}
	counts = map[*Target]int{}
	for range 9000 {
		counts[p.Pick(nil)]++
	}
	if got := float64(counts[ts[2]]) / 9000; got < 0.5 {
		t.Errorf("the one fast healthy target got %.3f of picks; want most of them", got)
	}
}

func TestRandomIsNotSequential(t *testing.T) {
	t.Parallel()
	p := newTestPool(t, config.Upstream{Balancer: "random", Targets: targetsOf(1, 1)})
	runs := 0
	prev := p.Pick(nil)
	for range 1000 {
		tg := p.Pick(nil)
		if tg == prev {
			runs++
		}
		prev = tg
	}
	// Round robin would alternate (0 repeats); random repeats about half
	// the time.
	if runs < 350 || runs > 650 {
		t.Errorf("%d repeats in 1000 random picks; want about 500", runs)
	}
}

func TestUnknownBalancerRefused(t *testing.T) {
	t.Parallel()
	if _, err := NewPool(config.Upstream{Name: "u", Balancer: "fastest", Targets: targetsOf(1)}); err == nil {
		t.Error("NewPool accepted balancer fastest")
	}
	if _, err := NewPool(config.Upstream{Name: "u", Balancer: "consistent_hash", HashOn: "query:x", Targets: targetsOf(1)}); err == nil {
		t.Error("NewPool accepted hash_on query:x")
	}
}

// BenchmarkBalancerPick measures each balancer's pick under contention
// (run with -cpu 1,2): it must not allocate nor serialize on a lock.
func BenchmarkBalancerPick(b *testing.B) { benchBalancers(b, false) }

// BenchmarkBalancerPickReport is a whole attempt's bookkeeping: pick,
// Begin, Report (EWMA, passive health, breaker window) and End.
func BenchmarkBalancerPickReport(b *testing.B) { benchBalancers(b, true) }

func benchBalancers(b *testing.B, report bool) {
	for _, bal := range balancers {
		b.Run(bal, func(b *testing.B) {
			cfg := config.Upstream{Balancer: bal, HashOn: hashOnFor(bal), Targets: targetsOf(1, 2, 3, 1, 1, 2, 1, 1)}
			if report {
				cfg.PassiveHealth = &config.PassiveHealth{}
				cfg.CircuitBreaker = &config.CircuitBreaker{}
			}
			p := newTestPool(b, cfg)
			b.ReportAllocs()
			var id atomic.Int32
			b.RunParallel(func(pb *testing.PB) {
				s := stateFor(int(id.Add(1)))
				r, _ := http.NewRequest(http.MethodGet, "http://x/", nil)
				r.Header.Set("X-User", "user-"+s.ClientIP.String())
				for pb.Next() {
					tg := p.PickFor(r, s, nil)
					if tg == nil {
						b.Fatal("nil target")
					}
					if report {
						tg.Begin()
						p.Report(tg, OutcomeSuccess, time.Millisecond)
						tg.End()
					}
				}
			})
		})
	}
}

func hashOnFor(bal string) string {
	if bal == "consistent_hash" {
		return "header:X-User"
	}
	return ""
}

// TestConcurrentPickAndReport exercises picks, reports and SetTargets at
// once, for the race detector.
func TestConcurrentPickAndReport(t *testing.T) {
	t.Parallel()
	for _, bal := range balancers {
		t.Run(bal, func(t *testing.T) {
			t.Parallel()
			p := newTestPool(t, config.Upstream{Balancer: bal, Targets: targetsOf(1, 1, 1),
				PassiveHealth:  &config.PassiveHealth{ConsecutiveFailures: 3, EjectionTime: config.Duration(time.Millisecond), MaxEjectedPercent: 50},
				CircuitBreaker: &config.CircuitBreaker{FailureRatio: 0.5, MinRequests: 5, OpenFor: config.Duration(time.Millisecond), HalfOpenRequests: 1},
			})
			var wg sync.WaitGroup
			for w := range 4 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := range 2000 {
						tg := p.Pick(stateFor(i))
						if tg == nil {
							continue
						}
						o := OutcomeSuccess
						if (i+w)%3 == 0 {
							o = OutcomeFailure
						}
						p.Report(tg, o, time.Millisecond)
						_ = tg.Status()
					}
				}()
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range 50 {
					eps := []Endpoint{{URL: "http://t0:80", Weight: 1}, {URL: "http://t1:80", Weight: 1 + i%2}}
					if i%3 != 0 {
						eps = append(eps, Endpoint{URL: "http://t9:80", Weight: 1})
					}
					if err := p.SetTargets(eps); err != nil {
						t.Error(err)
					}
				}
			}()
			wg.Wait()
		})
	}
}
