package upstream

import (
	"math/rand/v2"
	"net/http"
	"sync/atomic"

	"github.com/portunus-gw/portunus/internal/pipeline"
)

// picker chooses a target for a request among those eligible: usable
// (healthy, not ejected, breaker admits) and not in tried. It returns nil
// when none is. Each balancer is a small type built once per target set;
// a pick reads atomics only.
type picker interface {
	pick(r *http.Request, s *pipeline.State, tried []*Target) *Target
}

// asidePicker is a picker with a rotation that its picks advance (round
// robin). pickAside picks as pick does but leaves the rotation where it
// is: an extra attempt beside a request's own (a hedge) must not take
// a turn, or the next request's pick would skip the target the extra
// attempt did not go to (with two targets, every request would go to
// the same one first). Pickers without such state do not implement it.
type asidePicker interface {
	pickAside(r *http.Request, s *pipeline.State, tried []*Target) *Target
}

func eligible(t *Target, tried []*Target) bool {
	return t.usable() && (len(tried) == 0 || !contains(tried, t))
}

// newPicker builds the balancer named kind over targets.
func newPicker(kind string, hashOn hashKey, targets []*Target) picker {
	switch len(targets) {
	case 0:
		return noTargets{}
	case 1:
		// Every balancer picks the one target: skip the counter.
		return single{targets[0]}
	}
	switch kind {
	case "least_conn":
		return &leastConn{targets: targets}
	case "p2c_ewma":
		return newP2C(targets)
	case "consistent_hash":
		return newHashRing(targets, hashOn)
	case "random":
		return newWeightedRandom(targets)
	}
	return newWeightedRoundRobin(targets)
}

// maxSequence bounds the precomputed round-robin sequence. Weights whose
// sum (after dividing by their GCD) exceeds it are scaled down in
// proportion, which keeps shares to within 1/maxSequence.
const maxSequence = 1 << 14

// weightedRoundRobin picks targets in a precomputed smooth weighted
// round-robin order. Precomputing makes a pick one atomic add, where the
// classic algorithm mutates every target's current weight under a lock.
// A target that is not eligible is skipped: the next one in the sequence
// takes its turn.
type weightedRoundRobin struct {
	targets []*Target
	seq     []uint32 // indices into targets; nil when weights are equal
	next    atomic.Uint64
}

func newWeightedRoundRobin(targets []*Target) picker {
	w := &weightedRoundRobin{targets: targets}
	weights := make([]int, len(targets))
	equal := true
	for i, t := range targets {
		weights[i] = t.Weight
		if t.Weight != targets[0].Weight {
			equal = false
		}
	}
	if !equal {
		w.seq = smoothSequence(weights)
	}
	return w
}

func (w *weightedRoundRobin) at(n uint64) *Target {
	if w.seq == nil {
		return w.targets[n%uint64(len(w.targets))]
	}
	return w.targets[w.seq[n%uint64(len(w.seq))]]
}

func (w *weightedRoundRobin) pick(_ *http.Request, _ *pipeline.State, tried []*Target) *Target {
	return w.from(w.next.Add(1)-1, tried)
}

// pickAside starts at the turn the next pick will take, without taking
// it: the target whose turn comes next (or the one after, when that one
// was tried), so extra attempts still spread in proportion to weight.
func (w *weightedRoundRobin) pickAside(_ *http.Request, _ *pipeline.State, tried []*Target) *Target {
	return w.from(w.next.Load(), tried)
}

// from returns the first eligible target of the sequence from turn n on.
func (w *weightedRoundRobin) from(n uint64, tried []*Target) *Target {
	if t := w.at(n); eligible(t, tried) {
		return t
	}
	// A few more turns of the sequence keep the weights among the
	// remaining targets; then a scan settles it.
	for i := uint64(1); i <= uint64(2*len(w.targets)); i++ {
		if t := w.at(n + i); eligible(t, tried) {
			return t
		}
	}
	return scan(w.targets, int(n%uint64(len(w.targets))), tried)
}

// scan returns the first eligible target from start on, wrapping.
func scan(targets []*Target, start int, tried []*Target) *Target {
	for i := range targets {
		if t := targets[(start+i)%len(targets)]; eligible(t, tried) {
			return t
		}
	}
	return nil
}

// smoothSequence returns one full period of smooth weighted round robin
// (nginx's algorithm): each step every target gains its weight, the
// largest current value is chosen and loses the total.
func smoothSequence(weights []int) []uint32 {
	g := 0
	for _, w := range weights {
		g = gcd(g, w)
	}
	total := 0
	for i := range weights {
		weights[i] /= g
		total += weights[i]
	}
	if total > maxSequence {
		scaled := 0
		for i, w := range weights {
			weights[i] = max(1, int(int64(w)*maxSequence/int64(total)))
			scaled += weights[i]
		}
		total = scaled
	}
	current := make([]int, len(weights))
	seq := make([]uint32, total)
	for step := range seq {
		best := 0
		for i, w := range weights {
			current[i] += w
			if current[i] > current[best] {
				best = i
			}
		}
		current[best] -= total
		seq[step] = uint32(best)
	}
	return seq
}

func gcd(a, b int) int {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

type single struct{ t *Target }

func (o single) pick(_ *http.Request, _ *pipeline.State, tried []*Target) *Target {
	if eligible(o.t, tried) {
		return o.t
	}
	return nil
}

type noTargets struct{}

func (noTargets) pick(*http.Request, *pipeline.State, []*Target) *Target { return nil }

// leastConn picks the eligible target with the fewest requests in flight
// relative to its weight (in-flight/weight). Ties, which are the rule on
// an idle pool, are broken at random in proportion to weight, so an idle
// pool still splits by weight and no target is everyone's first choice.
type leastConn struct {
	targets []*Target
}

func (l *leastConn) pick(_ *http.Request, _ *pipeline.State, tried []*Target) *Target {
	var best *Target
	var bestLoad int64
	var tieWeight int
	// One random seed per pick, stretched by splitmix64 over the ties.
	seed := rand.Uint64()
	for _, t := range l.targets {
		if !eligible(t, tried) {
			continue
		}
		load := t.InFlight()
		if best == nil {
			best, bestLoad, tieWeight = t, load, t.Weight
			continue
		}
		// load/weight < bestLoad/best.Weight, without division.
		a, b := load*int64(best.Weight), bestLoad*int64(t.Weight)
		switch {
		case a < b:
			best, bestLoad, tieWeight = t, load, t.Weight
		case a == b:
			// Weighted reservoir sampling over the ties.
			tieWeight += t.Weight
			seed += 0x9e3779b97f4a7c15
			if mix64(seed)%uint64(tieWeight) < uint64(t.Weight) {
				best, bestLoad = t, load
			}
		}
	}
	return best
}

// weightedChoice draws target indices in proportion to weight: prefix
// sums and a binary search, O(log n) with no lock.
type weightedChoice struct {
	targets []*Target
	cum     []int64 // cum[i] = weights of targets[0..i]
}

func newWeightedChoice(targets []*Target) weightedChoice {
	wc := weightedChoice{targets: targets, cum: make([]int64, len(targets))}
	var sum int64
	for i, t := range targets {
		sum += int64(t.Weight)
		wc.cum[i] = sum
	}
	return wc
}

func (wc *weightedChoice) draw() int {
	x := rand.Int64N(wc.cum[len(wc.cum)-1])
	lo, hi := 0, len(wc.cum)-1
	for lo < hi {
		m := (lo + hi) / 2
		if wc.cum[m] > x {
			hi = m
		} else {
			lo = m + 1
		}
	}
	return lo
}

// weightedRandom picks at random in proportion to weight.
type weightedRandom struct{ weightedChoice }

func newWeightedRandom(targets []*Target) *weightedRandom {
	return &weightedRandom{newWeightedChoice(targets)}
}

// randomDraws is how many draws a pick makes before scanning: with one
// target in ten down, a scan is needed once in 10^4 picks.
const randomDraws = 4

func (w *weightedRandom) pick(_ *http.Request, _ *pipeline.State, tried []*Target) *Target {
	for range randomDraws {
		if t := w.targets[w.draw()]; eligible(t, tried) {
			return t
		}
	}
	return scan(w.targets, rand.IntN(len(w.targets)), tried)
}

// p2c picks two targets at random (in proportion to weight) and keeps the
// cheaper one, cost = latency EWMA × (in flight + 1). Weight enters
// through the draw, not the cost, so an idle pool splits by weight. Two
// choices avoid both herding (everyone picking the single best) and the
// cost of scanning every target; the EWMA moves traffic away from a slow
// target within a few requests.
type p2c struct{ weightedChoice }

func newP2C(targets []*Target) *p2c { return &p2c{newWeightedChoice(targets)} }

func (p *p2c) cost(t *Target) float64 {
	// +1ns keeps a target with no sample yet comparable by load.
	return (t.latency() + 1) * float64(t.InFlight()+1)
}

func (p *p2c) pick(_ *http.Request, _ *pipeline.State, tried []*Target) *Target {
	if len(p.targets) == 1 {
		if t := p.targets[0]; eligible(t, tried) {
			return t
		}
		return nil
	}
	var a, b *Target
	for range randomDraws {
		t := p.targets[p.draw()]
		if !eligible(t, tried) {
			continue
		}
		if a == nil {
			a = t
			continue
		}
		if t != a {
			b = t
			break
		}
	}
	switch {
	case a == nil:
		return scan(p.targets, rand.IntN(len(p.targets)), tried)
	case b == nil:
		return a
	case p.cost(b) < p.cost(a):
		return b
	}
	return a
}
