package upstream

// This file is the API the rest of the gateway uses to take part in
// upstream resilience: the proxy reports each attempt's outcome (passive
// health, circuit breaker, latency-aware balancers), picks a different
// target for a retry, and asks the retry budget before retrying or
// hedging; discovery replaces the target set. The implementations behind
// these methods live in this package's other files.

import (
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
	// client went away, the request body was bad, the attempt was a
	// losing hedge that was cancelled). Never counts either way.
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
	_, _, _ = t, o, latency
}

// PickExcept picks like Pick but avoids the targets in tried while another
// usable target exists (retries and hedges go to a different target). It
// returns nil when the pool has no usable target at all.
func (p *Pool) PickExcept(s *pipeline.State, tried []*Target) *Target {
	for range 2 * len(p.targets) {
		t := p.Pick(s)
		if t == nil || !contains(tried, t) {
			return t
		}
	}
	return p.Pick(s)
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
		on = []string{"connect_failure", "reset", "timeout", "502", "503", "504"}
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

// Budget bounds retries and hedges to a share of live traffic, so retries
// can never amplify an outage.
type Budget struct{}

// Budget returns the pool's retry budget.
func (p *Pool) Budget() *Budget { return &p.budget }

// Request records one client request sent to the pool (a first attempt);
// the budget grows with live traffic.
func (b *Budget) Request() {}

// Withdraw takes one retry or hedge from the budget; false = budget spent,
// do not retry.
func (b *Budget) Withdraw() bool { return false }

// Endpoint is one address a discoverer found for an upstream: a URL as in
// targets[].url and its weight.
type Endpoint struct {
	URL    string
	Weight int
}

// SetTargets replaces the pool's target set (service discovery). Targets
// whose URL stays keep their health state, breaker and in-flight count;
// new ones start healthy; removed ones stop being picked (requests in
// flight to them finish).
func (p *Pool) SetTargets(eps []Endpoint) error {
	_ = eps
	return nil
}

// Start begins the pool's background work (active health checks). It is
// called once the snapshot holding the pool is live, never for pools built
// only to explain or validate a config; calling it again does nothing.
// Close stops it.
func (p *Pool) Start() {}
