package upstream

// This file is the API the rest of the gateway uses to take part in
// upstream resilience: the proxy reports each attempt's outcome (passive
// health, circuit breaker, latency-aware balancers), picks a different
// target for a retry, and asks the retry budget before retrying or
// hedging; discovery replaces the target set. The implementations behind
// these methods live in this package's other files.

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/portunus-gw/portunus/internal/config"
	"github.com/portunus-gw/portunus/internal/pipeline"
)

// Outcome is how one attempt against a target ended, as target health sees
// it.
type Outcome uint8

const (
	// OutcomeSuccess: the target answered with a status that is not a
	// failure status.
	OutcomeSuccess Outcome = iota
	// OutcomeFailure: connect failure, reset, timeout, or a status in
	// failure_statuses. Counts against the target.
	OutcomeFailure
	// OutcomeIgnored: the attempt says nothing about the target (the
	// client went away, the request body was bad). Never counts either
	// way. A losing hedge that was cancelled goes to ReportLost instead.
	OutcomeIgnored
)

// DefaultFailureStatuses are the answers that count as a target failure
// when failure_statuses is not configured.
var DefaultFailureStatuses = []int{502, 503, 504}

// failureSet is a fixed-size lookup of failure statuses (100-599).
type failureSet [600]bool

func newFailureSet(statuses []int) *failureSet {
	if statuses == nil {
		statuses = DefaultFailureStatuses
	}
	var f failureSet
	for _, s := range statuses {
		if s >= 0 && s < len(f) {
			f[s] = true
		}
	}
	return &f
}

// IsFailureStatus reports whether an answer with this status counts as a
// failure of the target (failure_statuses; default 502, 503, 504).
func (p *Pool) IsFailureStatus(status int) bool {
	return status >= 0 && status < len(p.failures) && p.failures[status]
}

// Report records the outcome of one attempt against t, and how long the
// target took to answer (response headers) for latency-aware balancing.
// It must be called once per attempt that reached Pick, after the
// attempt's answer headers arrived or it failed.
func (p *Pool) Report(t *Target, o Outcome, latency time.Duration) {
	if t == nil || t.targetState == nil {
		return
	}
	if o == OutcomeIgnored {
		// Says nothing about the target, but a half-open trial it held
		// is free again.
		if t.br.cfg != nil && t.down.Load()&downBreaker != 0 {
			t.br.release()
		}
		return
	}
	failed := o == OutcomeFailure
	if !failed {
		// Hedging by percentile (latency.go): successes only.
		if ls := p.latency.Load(); ls != nil {
			ls.Record(latency)
		}
	}
	t.observeLatency(latency, failed)
	t.passiveReport(failed)
	if t.br.cfg != nil {
		t.br.record(t, failed, t.h.now())
	}
}

// ReportLost records an attempt against t that was cancelled because
// another attempt of the same request answered first (a hedge race);
// waited is how long it had been out when it ended. Like OutcomeIgnored it did not fail: passive health
// and the breaker do not count it (a half-open trial slot it held is
// released) and neither does the pool's latency histogram (the hedging
// code records the first attempt's wait itself). But waited is a lower
// bound of the target's latency: when it is above the target's latency
// average it pulls the average up (p2c_ewma), so a target slow enough to
// lose hedge races stops looking like one that was never measured.
// least_conn needs nothing here: the attempt counted in flight from
// Begin until its End, when its cancellation finished.
func (p *Pool) ReportLost(t *Target, waited time.Duration) {
	if t == nil || t.targetState == nil {
		return
	}
	if t.br.cfg != nil && t.down.Load()&downBreaker != 0 {
		t.br.release()
	}
	t.observeAtLeast(waited)
}

// PickExcept picks like Pick but avoids the targets in tried while another
// usable target exists (retries and hedges go to a different target). It
// returns nil when the pool has no usable target at all.
func (p *Pool) PickExcept(s *pipeline.State, tried []*Target) *Target {
	return p.PickFor(nil, s, tried)
}

// PickFor is Pick and PickExcept with the request at hand, which
// consistent_hash needs for hash_on header:NAME and cookie:NAME (without
// it they fall back to the client IP). r may be nil.
func (p *Pool) PickFor(r *http.Request, s *pipeline.State, tried []*Target) *Target {
	return p.pick(r, s, tried, false)
}

// PickAside picks like PickFor for an extra attempt beside the request's
// own (a hedge, a retry): it leaves the round-robin rotation where it is, so the
// requests' own picks keep their order (1:1 over equal targets, by
// weight otherwise) whether or not hedges fire. Other balancers have no
// rotation: for them it is PickFor.
func (p *Pool) PickAside(r *http.Request, s *pipeline.State, tried []*Target) *Target {
	return p.pick(r, s, tried, true)
}

func (p *Pool) pick(r *http.Request, s *pipeline.State, tried []*Target, aside bool) *Target {
	v := p.view.Load()
	var ap asidePicker
	if aside {
		ap, _ = v.picker.(asidePicker)
	}
	// A half-open breaker admits a bounded number of trials; a pick that
	// loses the race for the last slot picks again (the target is then
	// no longer eligible).
	for range 3 {
		t := pickOnce(v.picker, ap, r, s, tried)
		if t == nil && len(tried) > 0 {
			t = pickOnce(v.picker, ap, r, s, nil)
		}
		if t == nil {
			return nil
		}
		if t.admit() {
			return t
		}
	}
	return nil
}

// pickOnce is ap's aside pick when ap is set, pk's pick otherwise.
func pickOnce(pk picker, ap asidePicker, r *http.Request, s *pipeline.State, tried []*Target) *Target {
	if ap != nil {
		return ap.pickAside(r, s, tried)
	}
	return pk.pick(r, s, tried)
}

func contains(ts []*Target, t *Target) bool {
	for _, x := range ts {
		if x == t {
			return true
		}
	}
	return false
}

// RetryCondition is one reason an attempt may be retried (retries.on).
type RetryCondition uint16

const (
	RetryConnectFailure RetryCondition = 1 << iota // the target refused or the dial timed out
	RetryReset                                     // the connection broke before the answer's headers
	RetryTimeout                                   // no response headers within timeouts.response_header
	RetryStatus                                    // the answer's status is in RetryPolicy.Statuses
)

// RetryPolicy is an upstream's retries: block, parsed.
type RetryPolicy struct {
	// Attempts is the number of retries after the first attempt; 0 = no
	// retries.
	Attempts int
	// On is the set of conditions that allow a retry.
	On RetryCondition
	// Statuses are the answer statuses that allow a retry (with
	// RetryStatus in On).
	Statuses []int
}

// Allows reports whether the condition (and, for RetryStatus, the status)
// permits a retry.
func (rp *RetryPolicy) Allows(c RetryCondition, status int) bool {
	if rp == nil || rp.Attempts <= 0 || rp.On&c == 0 {
		return false
	}
	if c != RetryStatus {
		return true
	}
	for _, s := range rp.Statuses {
		if s == status {
			return true
		}
	}
	return false
}

// ParseRetries turns the config block into a policy. nil = no retries.
func ParseRetries(c *config.Retries) (*RetryPolicy, error) {
	if c == nil {
		return nil, nil
	}
	rp := &RetryPolicy{Attempts: c.Attempts}
	on := c.On
	if on == nil {
		// The contract's default (config defaults.go): failures where the
		// request surely did not reach a working target.
		on = []string{"connect_failure", "reset", "timeout"}
	}
	for _, v := range on {
		switch strings.TrimSpace(v) {
		case "connect_failure":
			rp.On |= RetryConnectFailure
		case "reset":
			rp.On |= RetryReset
		case "timeout":
			rp.On |= RetryTimeout
		default:
			n, err := strconv.Atoi(v)
			if err != nil || n < 100 || n > 599 {
				return nil, errRetryOn(v)
			}
			rp.On |= RetryStatus
			rp.Statuses = append(rp.Statuses, n)
		}
	}
	return rp, nil
}

type errRetryOn string

func (e errRetryOn) Error() string {
	return "retries.on: " + strconv.Quote(string(e)) + " is not connect_failure, reset, timeout or a status code 100-599"
}

// Retries returns the pool's retry policy; nil = no retries.
func (p *Pool) Retries() *RetryPolicy { return p.retries }

// Budget returns the pool's retry budget (also spent by hedges).
func (p *Pool) Budget() *Budget { return &p.budget }

// CountRetry counts one retry in portunus_upstream_retries_total; reason
// is connect_failure, reset, timeout or status.
func (p *Pool) CountRetry(reason string) { p.health.obs.Retry(reason) }

// CountHedge counts one hedged attempt in portunus_upstream_hedges_total.
func (p *Pool) CountHedge() { p.health.obs.Hedge() }

// Endpoint is one address a discoverer found for an upstream: a URL as in
// targets[].url and its weight.
type Endpoint struct {
	URL    string
	Weight int
	// Host is the configured host[:port] the address in URL stands for
	// ("" = URL's own host). Discovery puts the resolved address in URL;
	// requests to such a target should still carry Host as their Host
	// header (unless preserve_host) and TLS server name, as they would
	// have before the name was resolved.
	Host string
}

// SetTargets replaces the pool's target set (service discovery). Targets
// whose URL stays keep their health state, breaker and in-flight count
// (the same *Target when the weight is unchanged too); new ones start
// healthy; removed ones stop being picked (requests in flight to them
// finish) and their health checks stop.
func (p *Pool) SetTargets(eps []Endpoint) error {
	next := make([]*Target, 0, len(eps))
	seen := make(map[string]bool, len(eps))
	for i, ep := range eps {
		t, err := newTarget(config.Target{URL: ep.URL, Weight: ep.Weight})
		if err != nil {
			return fmt.Errorf("upstream %s: endpoint %d: %w", p.name, i, err)
		}
		if ep.Host != "" {
			t.Authority = ep.Host
		}
		if seen[t.str] {
			return fmt.Errorf("upstream %s: endpoint %s listed twice", p.name, t.str)
		}
		seen[t.str] = true
		next = append(next, t)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	old := p.view.Load().targets
	byURL := make(map[string]*Target, len(old))
	for _, t := range old {
		byURL[t.str] = t
	}
	for i, t := range next {
		switch o := byURL[t.str]; {
		case o != nil && o.Weight == t.Weight && o.Authority == t.Authority:
			next[i] = o
		case o != nil:
			t.targetState = o.targetState
		default:
			t.targetState = newTargetState(p.health)
		}
	}
	p.setNamed(next)
	p.view.Store(&view{targets: next, picker: newPicker(p.balancer, p.hashOn, next)})
	if p.started && !p.closed {
		p.syncChecks(next)
		for _, t := range old {
			if !seen[t.str] {
				p.health.obs.Forget(t.str)
			}
		}
		for _, t := range next {
			if byURL[t.str] == nil {
				p.health.obs.TargetUp(t.str, true)
				p.health.obs.BreakerState(t.str, int(BreakerClosed))
			}
		}
	}
	return nil
}

// Start begins the pool's background work (active health checks). It is
// called once the snapshot holding the pool is live, never for pools built
// only to explain or validate a config; calling it again does nothing.
// Close stops it.
func (p *Pool) Start() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.started || p.closed {
		return
	}
	p.started = true
	ts := p.view.Load().targets
	for _, t := range ts {
		p.health.obs.TargetUp(t.str, t.down.Load()&downActive == 0)
		p.health.obs.BreakerState(t.str, int(t.br.state.Load()))
	}
	if p.health.active == nil {
		return
	}
	p.ctx, p.cancel = context.WithCancel(context.Background())
	p.checker = newChecker(p.ctx, p.health.active, p.transport, p.namedServer)
	p.stops = map[*targetState]chan struct{}{}
	p.syncChecks(ts)
}

// syncChecks runs one probe goroutine per target in ts and stops those of
// targets no longer in it. The caller holds p.mu.
func (p *Pool) syncChecks(ts []*Target) {
	if p.checker == nil {
		return
	}
	keep := make(map[*targetState]bool, len(ts))
	for _, t := range ts {
		keep[t.targetState] = true
		if _, ok := p.stops[t.targetState]; !ok {
			stop := make(chan struct{})
			p.stops[t.targetState] = stop
			go p.checker.run(t, stop)
		}
	}
	for st, stop := range p.stops {
		if !keep[st] {
			close(stop)
			delete(p.stops, st)
		}
	}
}

// setNamed keeps a transport for each https target found under a host
// name (namedTransport): those that stay keep theirs and its connections,
// new ones get one. The transport of a target that left stays one more
// round (until the next change), for requests that picked it from the
// previous view just before the swap; then its idle connections are
// closed. Called with p.mu held, before the new view is stored.
func (p *Pool) setNamed(targets []*Target) {
	old := p.named.Load()
	m := make(map[string]*http.Transport)
	for _, t := range targets {
		name := p.namedServer(t)
		if name == "" {
			continue
		}
		if old != nil {
			if tr := (*old)[t.Host]; tr != nil && tr.TLSClientConfig.ServerName == name {
				m[t.Host] = tr
				continue
			}
		}
		m[t.Host] = withServerName(p.transport, name)
	}
	retiring := map[string]bool{}
	if old != nil {
		for host, tr := range *old {
			switch {
			case m[host] == tr:
			case m[host] == nil && !p.namedRetiring[host]:
				m[host] = tr // gone from the set: kept one more round
				retiring[host] = true
			default:
				tr.CloseIdleConnections()
			}
		}
	}
	p.namedRetiring = retiring
	if len(m) == 0 {
		p.named.Store(nil)
	} else {
		p.named.Store(&m)
	}
}
