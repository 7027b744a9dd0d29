package telemetry

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Upstream returns the recorder for one upstream (pool), creating it on
// first use; the same name gives the same recorder across reloads. Call it
// when compiling a snapshot, then Prepare each of the pool's targets. A nil
// *Metrics returns a nil recorder, which records nothing.
//
// The target label is the target URL as configured, so its values are
// bounded by the config. Series of targets a reload removed stay exported
// (with their final values) until the process restarts.
func (m *Metrics) Upstream(name string) *UpstreamMetrics {
	if m == nil {
		return nil
	}
	m.upsMu.Lock()
	defer m.upsMu.Unlock()
	u := m.ups[name]
	if u == nil {
		u = &UpstreamMetrics{m: m, name: name}
		empty := map[string]*targetMetrics{}
		u.targets.Store(&empty)
		m.ups[name] = u
	}
	return u
}

// UpstreamMetrics records the calls to one upstream's targets. Safe for
// concurrent use; a nil *UpstreamMetrics records nothing.
type UpstreamMetrics struct {
	m    *Metrics
	name string
	// targets maps target URL to its children; copy on write.
	targets atomic.Pointer[map[string]*targetMetrics]
	mu      sync.Mutex
}

// targetMetrics are the children of one target: the latency histogram,
// and one counter per code label (the status classes, then "error"),
// resolved on first use so codes a target never answered with are not
// exported.
type targetMetrics struct {
	dur   prometheus.Observer
	codes [numClasses + 1]atomic.Pointer[prometheus.Counter]
}

// Prepare resolves target's children. Observe does this itself for a
// target it has not seen, under a lock; preparing at compile time keeps
// that off the request path.
func (u *UpstreamMetrics) Prepare(target string) {
	if u != nil {
		u.target(target)
	}
}

// Observe records one upstream call to target that took d to the response
// headers. failed says the call got no usable answer (status is then
// ignored and the code label is "error"); otherwise status is the
// upstream's status code.
func (u *UpstreamMetrics) Observe(target string, status int, failed bool, d time.Duration) {
	if u == nil {
		return
	}
	t := (*u.targets.Load())[target]
	if t == nil {
		t = u.target(target)
	}
	ci := numClasses // "error"
	if !failed {
		ci = classIndex(status)
	}
	cp := t.codes[ci].Load()
	if cp == nil {
		code := UpstreamErrorCode
		if ci < numClasses {
			code = classLabels[ci]
		}
		c := u.m.UpstreamRequests.WithLabelValues(u.name, target, code)
		cp = &c
		t.codes[ci].Store(cp) // a racing store holds the same child
	}
	(*cp).Inc()
	t.dur.Observe(d.Seconds())
}

func (u *UpstreamMetrics) target(target string) *targetMetrics {
	u.mu.Lock()
	defer u.mu.Unlock()
	old := *u.targets.Load()
	if t := old[target]; t != nil {
		return t
	}
	t := &targetMetrics{dur: u.m.UpstreamDuration.WithLabelValues(u.name, target)}
	next := make(map[string]*targetMetrics, len(old)+1)
	for k, v := range old {
		next[k] = v
	}
	next[target] = t
	u.targets.Store(&next)
	return t
}
