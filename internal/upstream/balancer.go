package upstream

import (
	"sync/atomic"

	"github.com/portunus-gw/portunus/internal/pipeline"
)

// maxSequence bounds the precomputed round-robin sequence. Weights whose
// sum (after dividing by their GCD) exceeds it are scaled down in
// proportion, which keeps shares to within 1/maxSequence.
const maxSequence = 1 << 14

// weightedRoundRobin picks targets in a precomputed smooth weighted
// round-robin order. Precomputing makes a pick one atomic add, where the
// classic algorithm mutates every target's current weight under a lock.
type weightedRoundRobin struct {
	targets []*Target
	seq     []uint32 // indices into targets; nil when weights are equal
	next    atomic.Uint64
}

func newWeightedRoundRobin(targets []*Target) picker {
	switch len(targets) {
	case 0:
		return noTargets{}
	case 1:
		return single{targets[0]}
	}
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

func (w *weightedRoundRobin) pick(*pipeline.State) *Target {
	n := w.next.Add(1) - 1
	if w.seq == nil {
		return w.targets[n%uint64(len(w.targets))]
	}
	return w.targets[w.seq[n%uint64(len(w.seq))]]
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

func (s single) pick(*pipeline.State) *Target { return s.t }

type noTargets struct{}

func (noTargets) pick(*pipeline.State) *Target { return nil }
