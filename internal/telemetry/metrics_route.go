package telemetry

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Route returns the recorder for one route, creating it on first use. Call
// it when compiling a snapshot, not per request; the same name gives the
// same recorder, so its cached children survive reloads. A nil *Metrics
// returns a nil recorder, which records nothing.
func (m *Metrics) Route(name string) *RouteMetrics {
	if m == nil {
		return nil
	}
	m.routesMu.Lock()
	defer m.routesMu.Unlock()
	r := m.routes[name]
	if r == nil {
		r = &RouteMetrics{
			m:        m,
			name:     name,
			bytesIn:  m.RequestBytes.WithLabelValues(name),
			bytesOut: m.ResponseBytes.WithLabelValues(name),
		}
		empty := map[string]*upstreamCounters{}
		r.ups.Store(&empty)
		m.routes[name] = r
	}
	return r
}

// RouteMetrics records the requests of one route. Safe for concurrent use.
// A nil *RouteMetrics records nothing.
type RouteMetrics struct {
	m    *Metrics
	name string

	dur [numClasses]atomic.Pointer[prometheus.Observer]

	bytesIn, bytesOut prometheus.Counter

	// ups maps upstream name to its counters; replaced (copy on write)
	// when an upstream is first seen, so reads take no lock.
	ups   atomic.Pointer[map[string]*upstreamCounters]
	upsMu sync.Mutex
}

type upstreamCounters struct {
	c [numMethods][numClasses]atomic.Pointer[prometheus.Counter]
}

// Observe records one finished request: its method, status, the upstream
// that answered ("" when none did) and its duration.
func (r *RouteMetrics) Observe(method string, status int, upstream string, d time.Duration) {
	if r == nil {
		return
	}
	mi, ci := methodIndex(method), classIndex(status)
	uc := (*r.ups.Load())[upstream]
	if uc == nil {
		uc = r.addUpstream(upstream)
	}
	cp := uc.c[mi][ci].Load()
	if cp == nil {
		c := r.m.Requests.WithLabelValues(r.name, methodLabels[mi], classLabels[ci], upstream)
		cp = &c
		uc.c[mi][ci].Store(cp) // a racing store holds the same child
	}
	(*cp).Inc()

	op := r.dur[ci].Load()
	if op == nil {
		o := r.m.Duration.WithLabelValues(r.name, classLabels[ci])
		op = &o
		r.dur[ci].Store(op)
	}
	(*op).Observe(d.Seconds())
}

// Bytes adds one request's body sizes: in is what was read from the
// client, out what was written to it.
func (r *RouteMetrics) Bytes(in, out int64) {
	if r == nil {
		return
	}
	if in > 0 {
		r.bytesIn.Add(float64(in))
	}
	if out > 0 {
		r.bytesOut.Add(float64(out))
	}
}

// PrepareUpstream resolves the children for upstream ahead of the first
// request (call it at compile time), so that first request takes no lock.
func (r *RouteMetrics) PrepareUpstream(upstream string) {
	if r == nil {
		return
	}
	if (*r.ups.Load())[upstream] == nil {
		r.addUpstream(upstream)
	}
}

func (r *RouteMetrics) addUpstream(upstream string) *upstreamCounters {
	r.upsMu.Lock()
	defer r.upsMu.Unlock()
	old := *r.ups.Load()
	if uc := old[upstream]; uc != nil {
		return uc
	}
	next := make(map[string]*upstreamCounters, len(old)+1)
	for k, v := range old {
		next[k] = v
	}
	uc := &upstreamCounters{}
	next[upstream] = uc
	r.ups.Store(&next)
	return uc
}
