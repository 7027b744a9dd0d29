package proxy

import (
	"testing"
	"time"
)

// TestBackoffBoundsAndJitter: retry n waits a random time in the upper
// half of min(25 ms × 2^(n-1), 250 ms), both ends included; the draws
// spread over that half (jitter), rather than landing on one value.
func TestBackoffBoundsAndJitter(t *testing.T) {
	t.Parallel()
	const draws = 2000
	for n, ceil := range map[int]time.Duration{
		1: 25 * time.Millisecond, 2: 50 * time.Millisecond, 3: 100 * time.Millisecond, 4: 200 * time.Millisecond,
		5: 250 * time.Millisecond, 6: 250 * time.Millisecond, 9: 250 * time.Millisecond, 10: 250 * time.Millisecond,
		64: 250 * time.Millisecond, 1 << 20: 250 * time.Millisecond,
	} {
		floor := ceil / 2
		lo, hi := ceil, time.Duration(0)
		var sum time.Duration
		distinct := map[time.Duration]bool{}
		for range draws {
			d := backoff(n)
			if d < floor || d > ceil {
				t.Fatalf("backoff(%d) = %v; want within [%v, %v]", n, d, floor, ceil)
			}
			lo, hi = min(lo, d), max(hi, d)
			sum += d
			distinct[d] = true
		}
		// A uniform draw over [floor, ceil]: 2000 draws all missing
		// the lowest (or highest) eighth has probability 0.875^2000.
		eighth := (ceil - floor) / 8
		if lo > floor+eighth || hi < ceil-eighth {
			t.Errorf("backoff(%d): draws span [%v, %v]; want close to [%v, %v]", n, lo, hi, floor, ceil)
		}
		if mean, mid := sum/draws, (floor+ceil)/2; mean < mid-eighth || mean > mid+eighth {
			t.Errorf("backoff(%d): mean %v; want about %v", n, mean, mid)
		}
		if len(distinct) < draws/2 {
			t.Errorf("backoff(%d): %d distinct waits in %d draws; want jitter", n, len(distinct), draws)
		}
	}
}
