package telemetry

import (
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// MaxDeprecatedConsumers bounds the consumer label of
// portunus_deprecated_requests_total per route: the first this many
// consumers seen get their own series, later ones share "other", so a
// route with many consumers cannot blow up the metric's cardinality.
const MaxDeprecatedConsumers = 100

// DeprecatedRecorder counts calls to one deprecated route by consumer:
// portunus_deprecated_requests_total{route,consumer}. Anonymous calls are
// counted as consumer "anonymous". It also keeps the counts in process for
// the admin API (Counts). A nil recorder records nothing.
type DeprecatedRecorder struct {
	vec   *prometheus.CounterVec // nil: no Prometheus export
	route string
	// byConsumer maps a consumer to its *deprecatedSeries; lock-free
	// reads on the request path, a mutex only when a new consumer shows
	// up.
	byConsumer sync.Map
	mu         sync.Mutex
	n          int
	other      *deprecatedSeries
}

type deprecatedSeries struct {
	count atomic.Int64
	c     prometheus.Counter // nil without export
}

// Deprecated returns the recorder for route, registering the family on
// first use. With m nil the recorder only keeps the in-process counts.
func (m *Metrics) Deprecated(route string) *DeprecatedRecorder {
	d := &DeprecatedRecorder{route: route}
	if m != nil {
		d.vec = registerOrGet(m, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "portunus_deprecated_requests_total",
			Help: "Calls to routes marked deprecated, by route and consumer (\"anonymous\"; \"other\" beyond 100 consumers per route).",
		}, []string{"route", "consumer"}))
	}
	d.other = d.newSeries("other")
	return d
}

func (d *DeprecatedRecorder) newSeries(consumer string) *deprecatedSeries {
	s := &deprecatedSeries{}
	if d.vec != nil {
		s.c = d.vec.WithLabelValues(d.route, consumer)
	}
	return s
}

// Observe counts one call by consumer ("" = anonymous).
func (d *DeprecatedRecorder) Observe(consumer string) {
	if d == nil {
		return
	}
	if consumer == "" {
		consumer = "anonymous"
	}
	v, ok := d.byConsumer.Load(consumer)
	if !ok {
		v = d.slow(consumer)
	}
	s := v.(*deprecatedSeries)
	s.count.Add(1)
	if s.c != nil {
		s.c.Inc()
	}
}

func (d *DeprecatedRecorder) slow(consumer string) any {
	d.mu.Lock()
	defer d.mu.Unlock()
	if v, ok := d.byConsumer.Load(consumer); ok {
		return v
	}
	if d.n >= MaxDeprecatedConsumers {
		return d.other
	}
	d.n++
	s := d.newSeries(consumer)
	d.byConsumer.Store(consumer, s)
	return s
}

// Counts returns the calls per consumer counted by this recorder (this
// process, since the route was compiled with its current deprecation
// settings), "other" included when non-zero.
func (d *DeprecatedRecorder) Counts() map[string]int64 {
	out := map[string]int64{}
	if d == nil {
		return out
	}
	d.byConsumer.Range(func(k, v any) bool {
		out[k.(string)] = v.(*deprecatedSeries).count.Load()
		return true
	})
	if n := d.other.count.Load(); n > 0 {
		out["other"] = n
	}
	return out
}
