package store

import (
	"errors"
	"math"
	"time"
)

// GCRA (generic cell rate algorithm) keeps one number per key: the
// theoretical arrival time (TAT) at which the bucket would be full again.
// Each request pushes the TAT forward by n emission intervals T = Period/Rate;
// the request is allowed when the pushed TAT lies no further than Burst*T
// ahead of now. This is the same computation as the Lua script in redis.go
// (which uses microseconds and Redis's clock); keep the two in step.

var errBadLimit = errors.New("store: limit needs rate > 0, period > 0, burst >= 0 and n >= 0")

// gcraParams are a Limit resolved for one call, in nanoseconds.
type gcraParams struct {
	interval int64 // T, emission interval
	burst    int64
	offset   int64 // burst * T: how far ahead of now the TAT may run
}

func resolveLimit(l Limit, n int) (gcraParams, error) {
	if l.Rate <= 0 || l.Period <= 0 || l.Burst < 0 || n < 0 {
		return gcraParams{}, errBadLimit
	}
	burst := int64(l.Burst)
	if burst == 0 {
		burst = int64(l.Rate)
	}
	interval := int64(l.Period) / int64(l.Rate)
	if interval <= 0 {
		interval = 1
	}
	if burst > math.MaxInt64/interval/4 || int64(n) > math.MaxInt64/interval/4 {
		return gcraParams{}, errors.New("store: limit burst*period overflows")
	}
	return gcraParams{interval: interval, burst: burst, offset: burst * interval}, nil
}

// gcraStep computes one decision. tat is the stored TAT (0 when absent),
// now the current time; both in nanoseconds on the same clock. It returns
// the decision and the TAT to store (save false: leave the bucket as is).
func gcraStep(p gcraParams, now, tat int64, n int64) (d Decision, newTAT int64, save bool) {
	if tat < now {
		tat = now
	}
	d.Limit = int(p.burst)
	next := tat + n*p.interval
	diff := now - (next - p.offset) // >= 0: allowed; its size is the slack left
	if diff < 0 {
		d.RetryAfter = time.Duration(-diff)
		d.ResetAfter = time.Duration(tat - now)
		if rem := (p.offset - (tat - now)) / p.interval; rem > 0 {
			d.Remaining = int(rem)
		}
		return d, tat, false
	}
	d.Allowed = true
	d.Remaining = int(diff / p.interval)
	d.ResetAfter = time.Duration(next - now)
	return d, next, n > 0
}
