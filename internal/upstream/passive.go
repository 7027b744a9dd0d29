package upstream

import (
	"time"

	"github.com/portunus-gw/portunus/internal/config"
)

// maxEjectionMultiplier caps how long a repeat offender stays out:
// ejection_time × at most this. A target that keeps failing is retried
// every few minutes (30s × 10 by default), not never.
const maxEjectionMultiplier = 10

type passiveConfig struct {
	consecutive int64
	ejectFor    int64 // nanos
	maxPercent  int
}

func newPassiveConfig(c *config.PassiveHealth) *passiveConfig {
	if c == nil {
		return nil
	}
	pc := &passiveConfig{consecutive: int64(c.ConsecutiveFailures), ejectFor: int64(c.EjectionTime.D()), maxPercent: c.MaxEjectedPercent}
	if pc.consecutive <= 0 {
		pc.consecutive = 5
	}
	if pc.ejectFor <= 0 {
		pc.ejectFor = int64(30 * time.Second)
	}
	if pc.maxPercent <= 0 && c.MaxEjectedPercent == 0 {
		pc.maxPercent = 50
	}
	return pc
}

// maxEjected is how many of n targets may be ejected at once: the
// percentage rounded down, but at least one when the pool has two or
// more targets (a small pool with 10% could otherwise never eject), and
// never all of them below 100%: ejecting the last target turns a
// partially failing upstream into a certain 503.
func (pc *passiveConfig) maxEjected(n int) int {
	if pc.maxPercent >= 100 {
		return n
	}
	m := n * pc.maxPercent / 100
	if m < 1 && n >= 2 && pc.maxPercent > 0 {
		m = 1
	}
	if m >= n {
		m = n - 1
	}
	return m
}

// passiveReport feeds one outcome into outlier detection.
func (t *Target) passiveReport(failed bool) {
	pc := t.h.passive
	if pc == nil {
		return
	}
	if !failed {
		if t.consecFail.Load() != 0 {
			t.consecFail.Store(0)
		}
		return
	}
	if t.isEjected(t.h.now()) {
		// A late failure of a request sent before the ejection: it
		// must not count toward the next one.
		return
	}
	if t.consecFail.Add(1) >= pc.consecutive {
		t.tryEject(pc)
	}
}

func (t *Target) tryEject(pc *passiveConfig) {
	h := t.h
	h.ejectMu.Lock()
	defer h.ejectMu.Unlock()
	now := h.now()
	if t.down.Load()&downEjected != 0 && now < t.ejectedUntil.Load() {
		return // already out (a late failure of a request sent before)
	}
	ejected := 0
	targets := h.pool.Targets()
	for _, o := range targets {
		if o.targetState != t.targetState && o.isEjected(now) {
			ejected++
		}
	}
	if ejected+1 > pc.maxEjected(len(targets)) {
		// Over the cap the target stays in; its failures keep counting,
		// so it goes as soon as another one returns.
		return
	}
	// Forgive one past ejection per ejection_time the target stayed
	// healthy since the last one ended.
	pen := t.penalty.Load()
	if prev := t.ejectedUntil.Load(); prev != 0 && now > prev {
		pen -= (now - prev) / pc.ejectFor
	}
	pen = min(max(pen, 0)+1, maxEjectionMultiplier)
	t.penalty.Store(pen)
	t.ejectedUntil.Store(now + pen*pc.ejectFor)
	t.ejections.Add(1)
	t.consecFail.Store(0)
	t.down.Or(downEjected)
	h.obs.Ejected(t.str)
}

func (t *Target) isEjected(now int64) bool {
	return t.down.Load()&downEjected != 0 && now < t.ejectedUntil.Load()
}
