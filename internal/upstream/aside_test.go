package upstream

import (
	"testing"
	"time"

	"github.com/portunus-gw/portunus/internal/config"
)

// TestPickAsideKeepsRotation: round robin (equal weights and smooth
// weighted) hands out the same sequence of picks whether or not an
// aside pick (a hedge) follows each one, and the aside pick avoids the
// target already tried.
func TestPickAsideKeepsRotation(t *testing.T) {
	t.Parallel()
	for _, weights := range [][]int{{1, 1}, {1, 1, 1}, {3, 1}, {1, 2, 5}} {
		plain := newTestPool(t, config.Upstream{Targets: targetsOf(weights...)})
		hedged := newTestPool(t, config.Upstream{Targets: targetsOf(weights...)})
		index := func(p *Pool, tg *Target) int {
			for i, x := range p.Targets() {
				if x == tg {
					return i
				}
			}
			t.Fatalf("weights %v: picked %v, not a target of the pool", weights, tg)
			return -1
		}
		const n = 400
		for i := range n {
			want := index(plain, plain.PickFor(nil, nil, nil))
			first := hedged.PickFor(nil, nil, nil)
			if got := index(hedged, first); got != want {
				t.Fatalf("weights %v: pick %d went to target %d with aside picks between; want %d as without", weights, i, got, want)
			}
			// One or two aside picks, as hedge.max allows.
			tried := []*Target{first}
			for range 1 + i%2 {
				next := hedged.PickAside(nil, nil, tried)
				if next == nil || contains(tried, next) && len(tried) < len(weights) {
					t.Fatalf("weights %v: aside pick %v after %v; want an untried target", weights, next, tried)
				}
				tried = append(tried, next)
			}
		}
	}
}

// TestPickAsideAlternates: with two equal targets, primaries alternate
// 1:1 and each hedge goes to the other target.
func TestPickAsideAlternates(t *testing.T) {
	t.Parallel()
	p := newTestPool(t, config.Upstream{Targets: targetsOf(1, 1)})
	a, b := p.Targets()[0], p.Targets()[1]
	for i := range 40 {
		first := p.PickFor(nil, nil, nil)
		want, other := a, b
		if i%2 == 1 {
			want, other = b, a
		}
		if first != want {
			t.Fatalf("primary %d: %v; want %v", i, first, want)
		}
		if h := p.PickAside(nil, nil, []*Target{first}); h != other {
			t.Fatalf("hedge %d: %v; want %v", i, h, other)
		}
	}
}

// TestPickAsideOtherBalancers: balancers without a rotation pick aside
// as they pick: a target not yet tried while there is one, and a tried
// one rather than none.
func TestPickAsideOtherBalancers(t *testing.T) {
	t.Parallel()
	for _, bal := range balancers {
		p := newTestPool(t, config.Upstream{Balancer: bal, HashOn: hashOnFor(bal), Targets: targetsOf(1, 1, 1)})
		ts := p.Targets()
		for i := range 100 {
			s := stateFor(i)
			if got := p.PickAside(nil, s, ts[:2]); got != ts[2] {
				t.Fatalf("%s: aside pick with two of three tried: %v; want %v", bal, got, ts[2])
			}
			if got := p.PickAside(nil, s, ts); got == nil {
				t.Fatalf("%s: aside pick with every target tried: nil; want a tried one", bal)
			}
		}
	}
}

// TestReportLost: a lost attempt's wait pulls the latency average up
// when above it and never down; it is not a failure (passive health) and
// frees a half-open trial slot.
func TestReportLost(t *testing.T) {
	t.Parallel()
	p := newTestPool(t, config.Upstream{Balancer: "p2c_ewma", Targets: targetsOf(1, 1), PassiveHealth: &config.PassiveHealth{}})
	a := p.Targets()[0]
	lat := func() time.Duration { return a.Status().Latency }

	p.ReportLost(a, 40*time.Millisecond)
	if got := lat(); got != 40*time.Millisecond {
		t.Fatalf("first lost attempt after 40ms: latency %v; want 40ms (a lower bound beats no sample)", got)
	}
	p.ReportLost(a, 10*time.Millisecond)
	if got := lat(); got != 40*time.Millisecond {
		t.Fatalf("a lost attempt after 10ms moved the average to %v; want it left at 40ms", got)
	}
	p.ReportLost(a, 140*time.Millisecond)
	if got := lat(); got != 60*time.Millisecond {
		t.Fatalf("a lost attempt after 140ms: latency %v; want 60ms (40 + 0.2 × 100)", got)
	}
	if st := a.Status(); st.ConsecutiveFailures != 0 || st.Ejections != 0 {
		t.Fatalf("lost attempts counted as failures: %+v", st)
	}
	p.ReportLost(nil, time.Second) // harmless

	// A half-open trial that loses a hedge race gives its slot back.
	clk := &fakeClock{}
	cb := breakerCfg()
	cb.HalfOpenRequests = 1
	q := newTestPool(t, config.Upstream{Targets: targetsOf(1), CircuitBreaker: cb}, withClock(clk.now))
	b := q.Targets()[0]
	fail(q, b, 10)
	clk.advance(10 * time.Second)
	if q.Pick(nil) != b || q.Pick(nil) != nil {
		t.Fatal("half-open with 1 trial: want one pick, then none")
	}
	q.ReportLost(b, time.Millisecond)
	if q.Pick(nil) != b {
		t.Fatal("a lost trial did not free its slot")
	}
	if got := b.Status().Breaker; got != "half_open" {
		t.Fatalf("breaker %s after a lost trial; want still half_open", got)
	}
}
