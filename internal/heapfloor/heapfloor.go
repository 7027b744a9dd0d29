// Package heapfloor keeps the garbage collector's heap goal from falling
// below a floor while the live heap is small.
//
// With the default GOGC=100 the runtime collects when the heap reaches
// twice what the last collection found live, and at least 4 MiB. A
// gateway's live heap under load is small (about 1 MiB at 50 busy
// connections) and it allocates fast, so it collects at that 4 MiB
// minimum: 45 collections a second at 48k requests/s, 3–4 % of its CPU in
// marking and assists, and a request caught by one waits for it. A floor
// of a few MiB more cuts that by the same factor and costs at most that
// much memory; once the goal at GOGC=100 is the floor or more, GOGC=100
// applies unchanged, so the memory of a large or busy gateway (thousands
// of connections) does not move.
//
// The floor applies only while the process allocates at least the floor
// every second: below that the default collects less than once a second
// at a negligible cost, and an idle gateway keeps its footprint small
// (the runtime returns what it freed above the default goal).
//
// The floor is held by adjusting GOGC after each collection. The
// runtime's goal is live + (live + stacks + globals) × GOGC/100, and at
// least 4 MiB × GOGC/100: goroutine stacks count, so a gateway with
// thousands of busy connections (megabytes of stacks) often has a goal
// above the floor at GOGC=100 even with a small live heap, and is left
// alone. A process started with GOGC or GOMEMLIMIT in its environment has
// chosen for itself: Start leaves the collector alone.
package heapfloor

import (
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync"
	"time"
)

// Default is the floor the gateway runs with.
const Default = 16 << 20

// runtimeMinimum is the runtime's smallest heap goal at GOGC=100
// (runtime.defaultHeapMinimum); it scales with GOGC.
const runtimeMinimum = 4 << 20

// Percent is the GOGC that puts the heap goal at floor for a live heap
// of live bytes and roots (goroutine stacks and globals the collector
// scanned) of roots bytes, or 100 when the goal at GOGC=100 is the floor
// or more. It never makes the scaled minimum exceed the floor, so the
// goal is max(goal at GOGC=100, floor) within a few percent.
func Percent(live, roots, floor uint64) int {
	base := max(live+roots, 1)
	if live+base >= floor {
		return 100
	}
	p := (floor - live) * 100 / base
	p = min(p, floor*100/runtimeMinimum)
	return int(max(p, 100))
}

// Tuner holds the floor; it runs until Stop.
type Tuner struct {
	floor uint64

	mu      sync.Mutex // held by adjust and Stop
	stopped bool
	current int
	sample  []metrics.Sample
	// The allocation count and time at the previous collection.
	lastAllocs uint64
	lastAt     time.Time
}

// Start holds the heap goal at floor bytes or more, unless the
// environment sets GOGC or GOMEMLIMIT (nil then).
func Start(floor uint64) *Tuner {
	if _, set := os.LookupEnv("GOGC"); set {
		return nil
	}
	if _, set := os.LookupEnv("GOMEMLIMIT"); set {
		return nil
	}
	t := &Tuner{floor: floor, current: 100}
	t.sample = []metrics.Sample{
		{Name: "/gc/heap/live:bytes"},
		{Name: "/gc/heap/allocs:bytes"},
		{Name: "/gc/scan/stack:bytes"},
		{Name: "/gc/scan/globals:bytes"},
	}
	metrics.Read(t.sample)
	t.lastAllocs, t.lastAt = t.sample[1].Value.Uint64(), time.Now()
	t.arm()
	return t
}

// Stop ends the tuning and restores GOGC=100. Safe on a nil Tuner.
func (t *Tuner) Stop() {
	if t == nil {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.stopped {
		t.stopped = true
		debug.SetGCPercent(100)
	}
}

// sentinel is the object whose cleanup runs after each collection: it
// holds a pointer and is larger than the tiny allocator's objects, so it
// is freed (and its cleanup run) by the first collection after arm.
type sentinel struct {
	p *byte
	_ [8]byte
}

func (t *Tuner) arm() {
	runtime.AddCleanup(new(sentinel), func(t *Tuner) {
		if t.adjust() {
			t.arm()
		}
	}, t)
}

// adjust sets GOGC for the live heap the last collection found; false
// once the tuner is stopped.
func (t *Tuner) adjust() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.stopped {
		return false
	}
	metrics.Read(t.sample)
	for _, m := range t.sample {
		if m.Value.Kind() != metrics.KindUint64 {
			return true
		}
	}
	allocs, at := t.sample[1].Value.Uint64(), time.Now()
	rate := float64(allocs-t.lastAllocs) / max(at.Sub(t.lastAt).Seconds(), 1e-3)
	t.lastAllocs, t.lastAt = allocs, at
	p := 100
	if rate >= float64(t.floor) {
		roots := t.sample[2].Value.Uint64() + t.sample[3].Value.Uint64()
		p = Percent(t.sample[0].Value.Uint64(), roots, t.floor)
	}
	// Small changes are not worth a call into the runtime.
	if d := p - t.current; d > t.current/8 || -d > t.current/8 || (p == 100) != (t.current == 100) {
		debug.SetGCPercent(p)
		t.current = p
	}
	return true
}
