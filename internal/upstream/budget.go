package upstream

import (
	"sync/atomic"
	"time"

	"github.com/portunus-gw/portunus/internal/config"
)

// The retry budget's window: budgetBuckets one-second buckets. Ten
// seconds is long enough to smooth bursts, short enough that the budget
// follows a drop in traffic (an outage) within seconds.
const budgetBuckets = 10

// Defaults of retries.budget_percent and retries.min_per_second, also
// used for hedges on pools without a retries block.
const (
	DefaultBudgetPercent = 20
	DefaultMinPerSecond  = 3
)

type budgetBucket struct {
	sec      atomic.Int64
	requests atomic.Int64
	retries  atomic.Int64
}

// Budget bounds retries and hedges to a share of live traffic, so retries
// can never amplify an outage: at most max(min_per_second × window,
// budget_percent % of the window's first attempts) within the window.
// Every method is lock-free: counters are atomics in per-second buckets.
// Under heavy concurrency the limit can be passed by the number of
// goroutines racing on the last slot, never more.
type Budget struct {
	percent int64
	minPer  int64
	now     func() int64 // seconds (monoSeconds; tests set their own)
	buckets [budgetBuckets]budgetBucket
}

func (b *Budget) init(c *config.Retries) {
	b.percent, b.minPer = DefaultBudgetPercent, DefaultMinPerSecond
	if c != nil {
		if c.BudgetPercent > 0 {
			b.percent = int64(c.BudgetPercent)
		}
		if c.MinPerSecond > 0 {
			b.minPer = int64(c.MinPerSecond)
		}
	}
	b.now = monoSeconds
}

// monoSeconds counts seconds on the monotonic clock: the buckets need
// only a steady second, and reading it costs half a time.Now (every
// request reads it).
func monoSeconds() int64 { return monoNow() / int64(time.Second) }

// bucket returns the bucket of second sec, clearing it when it last
// counted an older second.
func (b *Budget) bucket(sec int64) *budgetBucket {
	bk := &b.buckets[sec%budgetBuckets]
	if old := bk.sec.Load(); old != sec && bk.sec.CompareAndSwap(old, sec) {
		bk.requests.Store(0)
		bk.retries.Store(0)
	}
	return bk
}

// Request records one client request sent to the pool (a first attempt);
// the budget grows with live traffic.
func (b *Budget) Request() {
	if b.now == nil {
		return
	}
	b.bucket(b.now()).requests.Add(1)
}

// Withdraw takes one retry or hedge from the budget; false = budget spent,
// do not retry.
func (b *Budget) Withdraw() bool {
	if b.now == nil {
		return false
	}
	sec := b.now()
	cur := b.bucket(sec)
	var requests, retries int64
	for i := range b.buckets {
		bk := &b.buckets[i]
		if s := bk.sec.Load(); s > sec-budgetBuckets && s <= sec {
			requests += bk.requests.Load()
			retries += bk.retries.Load()
		}
	}
	allowed := max(b.minPer*budgetBuckets, requests*b.percent/100)
	if retries >= allowed {
		return false
	}
	cur.retries.Add(1)
	return true
}
