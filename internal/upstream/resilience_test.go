package upstream

import (
	"testing"
	"time"

	"github.com/portunus-gw/portunus/internal/config"
)

func passiveCfg(consecutive int, eject time.Duration, pct int) *config.PassiveHealth {
	return &config.PassiveHealth{ConsecutiveFailures: consecutive, EjectionTime: config.Duration(eject), MaxEjectedPercent: pct}
}

func fail(p *Pool, tg *Target, n int) {
	for range n {
		p.Report(tg, OutcomeFailure, time.Millisecond)
	}
}

func TestPassiveEjectionAndReturn(t *testing.T) {
	t.Parallel()
	clk := &fakeClock{}
	p := newTestPool(t, config.Upstream{Targets: targetsOf(1, 1), PassiveHealth: passiveCfg(3, 30*time.Second, 50)}, withClock(clk.now))
	a, b := p.Targets()[0], p.Targets()[1]

	fail(p, a, 2)
	p.Report(a, OutcomeSuccess, time.Millisecond) // a success resets the count
	fail(p, a, 2)
	if st := a.Status(); st.Health == HealthEjected || st.ConsecutiveFailures != 2 {
		t.Fatalf("after 2+2 failures split by a success: %+v; want not ejected, 2 consecutive", st)
	}
	p.Report(a, OutcomeIgnored, 0) // says nothing
	fail(p, a, 1)
	if st := a.Status(); st.Health != HealthEjected || st.Ejections != 1 {
		t.Fatalf("after 3 consecutive failures: %+v; want ejected once", st)
	}
	for range 100 {
		if p.Pick(nil) != b {
			t.Fatal("picked the ejected target")
		}
	}
	clk.advance(29 * time.Second)
	if a.usable() {
		t.Fatal("usable before ejection_time passed")
	}
	clk.advance(time.Second)
	if !a.usable() || a.Status().Health == HealthEjected {
		t.Fatalf("not back after ejection_time: %+v", a.Status())
	}
	// A repeat offender stays out twice as long.
	fail(p, a, 3)
	clk.advance(59 * time.Second)
	if a.usable() {
		t.Fatal("second ejection shorter than 2 × ejection_time")
	}
	clk.advance(time.Second)
	if !a.usable() {
		t.Fatal("second ejection longer than 2 × ejection_time")
	}
	// Good behaviour is forgiven: after a long healthy period the next
	// ejection is short again.
	clk.advance(10 * time.Minute)
	fail(p, a, 3)
	clk.advance(30 * time.Second)
	if !a.usable() {
		t.Fatal("after a healthy period the ejection was not back to ejection_time")
	}
	if got := a.Status().Ejections; got != 3 {
		t.Errorf("ejections = %d; want 3", got)
	}
}

func TestEjectionMultiplierCapped(t *testing.T) {
	t.Parallel()
	clk := &fakeClock{}
	p := newTestPool(t, config.Upstream{Targets: targetsOf(1, 1), PassiveHealth: passiveCfg(1, time.Second, 50)}, withClock(clk.now))
	a := p.Targets()[0]
	for range 15 {
		fail(p, a, 1)
		clk.advance(time.Duration(maxEjectionMultiplier) * time.Second)
		if !a.usable() {
			t.Fatalf("ejection longer than %d × ejection_time", maxEjectionMultiplier)
		}
	}
}

func TestMaxEjectedPercent(t *testing.T) {
	t.Parallel()
	cases := []struct {
		targets, pct, want int
	}{
		{4, 50, 2}, {4, 10, 1}, {3, 50, 1}, {1, 50, 0}, {2, 100, 2}, {10, 30, 3},
	}
	for _, c := range cases {
		clk := &fakeClock{}
		w := make([]int, c.targets)
		for i := range w {
			w[i] = 1
		}
		p := newTestPool(t, config.Upstream{Targets: targetsOf(w...), PassiveHealth: passiveCfg(1, time.Minute, c.pct)}, withClock(clk.now))
		for _, tg := range p.Targets() {
			fail(p, tg, 1)
		}
		ejected := 0
		for _, tg := range p.Targets() {
			if tg.Status().Health == HealthEjected {
				ejected++
			}
		}
		if ejected != c.want {
			t.Errorf("%d targets all failing, max_ejected_percent %d: %d ejected; want %d", c.targets, c.pct, ejected, c.want)
		}
		if c.want < c.targets && p.Pick(nil) == nil {
			t.Errorf("%d targets, %d%%: no target left to pick", c.targets, c.pct)
		}
	}
	// When an ejected target returns, a waiting one can go.
	clk := &fakeClock{}
	p := newTestPool(t, config.Upstream{Targets: targetsOf(1, 1), PassiveHealth: passiveCfg(1, time.Minute, 50)}, withClock(clk.now))
	a, b := p.Targets()[0], p.Targets()[1]
	fail(p, a, 1)
	fail(p, b, 1)
	if !a.isEjected(clk.now()) || b.isEjected(clk.now()) {
		t.Fatal("want only the first failing target ejected")
	}
	clk.advance(time.Minute)
	fail(p, b, 1)
	if !b.isEjected(clk.now()) {
		t.Error("b not ejected after a's ejection ended")
	}
}

func breakerCfg() *config.CircuitBreaker {
	return &config.CircuitBreaker{FailureRatio: 0.5, MinRequests: 10, OpenFor: config.Duration(10 * time.Second), HalfOpenRequests: 2}
}

func TestBreakerStateMachine(t *testing.T) {
	t.Parallel()
	clk := &fakeClock{}
	p := newTestPool(t, config.Upstream{Targets: targetsOf(1, 1), CircuitBreaker: breakerCfg()}, withClock(clk.now))
	a, b := p.Targets()[0], p.Targets()[1]
	state := func() string { return a.Status().Breaker }

	// Below min_requests nothing opens, whatever the ratio.
	fail(p, a, 9)
	if state() != "closed" {
		t.Fatalf("9 failures < min_requests: breaker %s; want closed", state())
	}
	// 10 requests, 50% failing... 9 failures of 10: open.
	p.Report(a, OutcomeSuccess, time.Millisecond)
	if state() != "closed" {
		t.Fatalf("after a success: %s", state())
	}
	fail(p, a, 1)
	if state() != "open" {
		t.Fatalf("10 failures in 11 requests: breaker %s; want open", state())
	}
	for range 50 {
		if p.Pick(nil) != b {
			t.Fatal("picked a target whose breaker is open")
		}
	}
	clk.advance(10 * time.Second)
	// Half-open: exactly half_open_requests trials are admitted.
	var trials []*Target
	for range 20 {
		if tg := p.PickExcept(nil, []*Target{b}); tg == a {
			trials = append(trials, tg)
		}
	}
	if len(trials) != 2 || state() != "half_open" {
		t.Fatalf("half-open admitted %d trials (breaker %s); want 2, half_open", len(trials), state())
	}
	// One trial fails: open again.
	p.Report(a, OutcomeSuccess, time.Millisecond)
	p.Report(a, OutcomeFailure, time.Millisecond)
	if state() != "open" {
		t.Fatalf("a failed trial: breaker %s; want open", state())
	}
	clk.advance(10 * time.Second)
	for range 2 {
		if tg := p.PickExcept(nil, []*Target{b}); tg != a {
			t.Fatalf("after open_for: picked %v; want a trial on a", tg)
		}
	}
	p.Report(a, OutcomeSuccess, time.Millisecond)
	if state() != "half_open" {
		t.Fatalf("one of two trials succeeded: %s; want still half_open", state())
	}
	p.Report(a, OutcomeSuccess, time.Millisecond)
	if state() != "closed" {
		t.Fatalf("every trial succeeded: %s; want closed", state())
	}
	// Closed again with a clean window: old failures do not count.
	fail(p, a, 5)
	if state() != "closed" {
		t.Errorf("5 failures after closing: %s; want closed (window reset)", state())
	}
}

func TestBreakerWindowForgets(t *testing.T) {
	t.Parallel()
	clk := &fakeClock{}
	p := newTestPool(t, config.Upstream{Targets: targetsOf(1), CircuitBreaker: breakerCfg()}, withClock(clk.now))
	a := p.Targets()[0]
	fail(p, a, 9)
	clk.advance(11 * time.Second) // the window is 10 s
	fail(p, a, 1)
	if s := a.Status().Breaker; s != "closed" {
		t.Errorf("failures 11 s apart counted together: breaker %s", s)
	}
}

func TestBudget(t *testing.T) {
	t.Parallel()
	var sec int64 = 1000
	b := &Budget{}
	b.init(&config.Retries{BudgetPercent: 20, MinPerSecond: 1})
	b.now = func() int64 { return sec }
	// No traffic: the floor, min_per_second × 10 s window.
	n := 0
	for b.Withdraw() {
		n++
	}
	if n != 10 {
		t.Fatalf("idle budget allowed %d retries; want 10", n)
	}
	// 1000 requests in the window: 20% = 200, of which 10 are spent.
	for range 1000 {
		b.Request()
	}
	n = 0
	for b.Withdraw() {
		n++
	}
	if n != 190 {
		t.Fatalf("after 1000 requests: %d more retries; want 190", n)
	}
	// 10 s later the window has moved on: back to the floor.
	sec += 10
	n = 0
	for b.Withdraw() {
		n++
	}
	if n != 10 {
		t.Errorf("next window: %d retries; want 10", n)
	}
	// Requests spread over the window all count.
	sec += 100
	c := &Budget{}
	c.init(nil) // defaults: 20%, 3/s
	c.now = func() int64 { return sec }
	for range 10 {
		for range 100 {
			c.Request()
		}
		sec++
	}
	sec-- // still within the 10 s of requests
	n = 0
	for c.Withdraw() {
		n++
	}
	if n != 200 {
		t.Errorf("1000 requests over 10 s at 20%%: %d retries; want 200", n)
	}
	var zero Budget
	zero.Request()
	if zero.Withdraw() {
		t.Error("zero Budget allowed a retry")
	}
}

func TestPoolBudgetAndCounts(t *testing.T) {
	t.Parallel()
	p := newTestPool(t, config.Upstream{Targets: targetsOf(1)})
	if !p.Budget().Withdraw() {
		t.Error("a fresh pool's budget refused the first retry (min_per_second floor)")
	}
	p.CountRetry("timeout") // no observer: must not panic
	p.CountHedge()
}

func TestSetTargetsKeepsState(t *testing.T) {
	t.Parallel()
	clk := &fakeClock{}
	p := newTestPool(t, config.Upstream{Targets: []config.Target{{URL: "http://a:80"}, {URL: "http://b:80"}},
		PassiveHealth: passiveCfg(2, time.Minute, 100)}, withClock(clk.now))
	a, b := p.Targets()[0], p.Targets()[1]
	a.Begin()
	fail(p, b, 2)
	if err := p.SetTargets([]Endpoint{{URL: "http://a:80", Weight: 1}, {URL: "http://b:80/", Weight: 3}, {URL: "http://c:80", Weight: 1}}); err != nil {
		t.Fatal(err)
	}
	ts := p.Targets()
	if len(ts) != 3 || ts[0] != a {
		t.Fatalf("targets after SetTargets: %v; want a kept as the same *Target", ts)
	}
	if ts[0].InFlight() != 1 {
		t.Errorf("a lost its in-flight count")
	}
	if ts[1] == b || ts[1].Weight != 3 || ts[1].Status().Health != HealthEjected || ts[1].Status().Ejections != 1 {
		t.Errorf("b with a new weight: %+v weight %d; want a new *Target with b's ejection", ts[1].Status(), ts[1].Weight)
	}
	if st := ts[2].Status(); st.Health != HealthUnknown || st.Ejections != 0 {
		t.Errorf("new target c: %+v; want fresh", st)
	}
	a.End()
	if ts[0].InFlight() != 0 {
		t.Error("End on the old handle did not reach the kept target")
	}
	// Removed targets are no longer picked.
	if err := p.SetTargets([]Endpoint{{URL: "http://c:80"}}); err != nil {
		t.Fatal(err)
	}
	for range 20 {
		if tg := p.Pick(nil); tg == nil || tg.Host != "c:80" {
			t.Fatalf("picked %v; want only c", tg)
		}
	}
	if err := p.SetTargets([]Endpoint{{URL: "ftp://x"}}); err == nil {
		t.Error("SetTargets accepted an ftp URL")
	}
	if err := p.SetTargets([]Endpoint{{URL: "http://x"}, {URL: "http://x/"}}); err == nil {
		t.Error("SetTargets accepted a duplicate")
	}
	if len(p.Targets()) != 1 {
		t.Error("a failed SetTargets changed the target set")
	}
	if err := p.SetTargets(nil); err != nil || p.Pick(nil) != nil {
		t.Errorf("empty target set: err %v; want no target picked", err)
	}
}

func TestParseRetriesDefaults(t *testing.T) {
	t.Parallel()
	rp, err := ParseRetries(&config.Retries{Attempts: 2})
	if err != nil {
		t.Fatal(err)
	}
	if !rp.Allows(RetryConnectFailure, 0) || !rp.Allows(RetryTimeout, 0) || rp.Allows(RetryStatus, 503) {
		t.Errorf("default retries.on: %+v; want connect_failure, reset, timeout and no status", rp)
	}
}

// TestBreakerTrialSlots: an ignored attempt frees its trial slot, and
// trials never reported stop blocking the target after open_for.
func TestBreakerTrialSlots(t *testing.T) {
	t.Parallel()
	clk := &fakeClock{}
	cb := breakerCfg()
	cb.HalfOpenRequests = 1
	p := newTestPool(t, config.Upstream{Targets: targetsOf(1), CircuitBreaker: cb}, withClock(clk.now))
	a := p.Targets()[0]
	fail(p, a, 10)
	clk.advance(10 * time.Second)
	if p.Pick(nil) != a || p.Pick(nil) != nil {
		t.Fatal("half-open with 1 trial: want one pick, then none")
	}
	p.Report(a, OutcomeIgnored, 0) // the client went away
	if p.Pick(nil) != a {
		t.Fatal("an ignored trial did not free its slot")
	}
	// This trial is never reported.
	clk.advance(9 * time.Second)
	if p.Pick(nil) != nil {
		t.Fatal("a second trial admitted while the first is outstanding")
	}
	clk.advance(time.Second)
	if p.Pick(nil) != a {
		t.Fatal("an unreported trial blocked the target beyond open_for")
	}
	p.Report(a, OutcomeSuccess, time.Millisecond)
	if s := a.Status().Breaker; s != "closed" {
		t.Errorf("after a successful trial: %s; want closed", s)
	}
}
