// Package telemetry holds what Portunus reports about itself: the
// Prometheus registry every package registers into, the per-request
// metrics, and the access log.
//
// Per-request recording is on the hot path, so label children are resolved
// once per (route, method, status class, upstream) and cached; Observe does
// no allocation and takes no global lock after the first request of each
// combination.
package telemetry

import (
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics is the registry and the gateway-wide metrics. Other packages
// register their own collectors into Registry.
type Metrics struct {
	// Registry holds every metric; Go runtime and process collectors included.
	Registry *prometheus.Registry
	// Requests is portunus_requests_total{route,method,code,upstream};
	// code is the status class ("2xx"), method one of the standard methods
	// or "OTHER", so the label sets stay bounded.
	Requests *prometheus.CounterVec
	// Duration is portunus_request_duration_seconds{route,code}, with
	// classic buckets and a native histogram (factor 1.1).
	Duration *prometheus.HistogramVec
	// InFlight is portunus_requests_in_flight.
	InFlight prometheus.Gauge
	// Reloads is portunus_config_reloads_total{result="success"|"failure"}.
	Reloads *prometheus.CounterVec
	// LastReloadSuccess is portunus_config_last_reload_success_timestamp_seconds.
	LastReloadSuccess prometheus.Gauge
	// ConfigInfo is portunus_config_info{hash} 1, for the live config only.
	ConfigInfo *prometheus.GaugeVec

	routesMu sync.Mutex
	routes   map[string]*RouteMetrics
}

// DurationBuckets are the classic buckets of the request duration
// histogram, in seconds: from 1ms (a cached answer) to 30s (a slow upstream).
var DurationBuckets = []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}

// NewMetrics creates the registry and the gateway metrics in it.
func NewMetrics() *Metrics {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	m := &Metrics{
		Registry: reg,
		Requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "portunus_requests_total",
			Help: "Requests served, by route, method, status class and upstream.",
		}, []string{"route", "method", "code", "upstream"}),
		Duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:                            "portunus_request_duration_seconds",
			Help:                            "Time from request received to response finished, by route and status class.",
			Buckets:                         DurationBuckets,
			NativeHistogramBucketFactor:     1.1,
			NativeHistogramMaxBucketNumber:  160,
			NativeHistogramMinResetDuration: time.Hour,
		}, []string{"route", "code"}),
		InFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "portunus_requests_in_flight",
			Help: "Requests being served right now.",
		}),
		Reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "portunus_config_reloads_total",
			Help: "Configuration reloads, by result.",
		}, []string{"result"}),
		LastReloadSuccess: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "portunus_config_last_reload_success_timestamp_seconds",
			Help: "When the configuration was last loaded successfully (Unix time).",
		}),
		ConfigInfo: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "portunus_config_info",
			Help: "The live configuration's hash; always 1.",
		}, []string{"hash"}),
		routes: make(map[string]*RouteMetrics),
	}
	reg.MustRegister(m.Requests, m.Duration, m.InFlight, m.Reloads, m.LastReloadSuccess, m.ConfigInfo)
	// Both results exist from the start, so rate() and alerts see a zero.
	m.Reloads.WithLabelValues("success")
	m.Reloads.WithLabelValues("failure")
	return m
}

// Handler serves the registry in the Prometheus exposition formats.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{
		ErrorHandling:     promhttp.ContinueOnError,
		EnableOpenMetrics: true,
	})
}

// ReloadSucceeded records a successful reload of the config with this hash:
// the counter, the timestamp, and portunus_config_info pointing at it alone.
func (m *Metrics) ReloadSucceeded(hash string, at time.Time) {
	m.Reloads.WithLabelValues("success").Inc()
	m.LastReloadSuccess.Set(float64(at.UnixNano()) / 1e9)
	m.ConfigInfo.Reset()
	m.ConfigInfo.WithLabelValues(hash).Set(1)
}

// ReloadFailed records a failed reload.
func (m *Metrics) ReloadFailed() { m.Reloads.WithLabelValues("failure").Inc() }

// Route returns the recorder for one route, creating it on first use. Call
// it when compiling a snapshot, not per request; the same name gives the
// same recorder, so its cached children survive reloads.
func (m *Metrics) Route(name string) *RouteMetrics {
	m.routesMu.Lock()
	defer m.routesMu.Unlock()
	r := m.routes[name]
	if r == nil {
		r = &RouteMetrics{m: m, name: name}
		empty := map[string]*upstreamCounters{}
		r.ups.Store(&empty)
		m.routes[name] = r
	}
	return r
}

// The bounded label values.
var (
	methodLabels = [...]string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "CONNECT", "TRACE", "OTHER"}
	classLabels  = [...]string{"1xx", "2xx", "3xx", "4xx", "5xx", "other"}
)

const (
	numMethods = len(methodLabels)
	numClasses = len(classLabels)
)

func methodIndex(m string) int {
	switch m {
	case http.MethodGet:
		return 0
	case http.MethodHead:
		return 1
	case http.MethodPost:
		return 2
	case http.MethodPut:
		return 3
	case http.MethodPatch:
		return 4
	case http.MethodDelete:
		return 5
	case http.MethodOptions:
		return 6
	case http.MethodConnect:
		return 7
	case http.MethodTrace:
		return 8
	}
	return 9
}

// StatusClass returns the code label for a status: "1xx".."5xx", or
// "other" for a value outside 100..599.
func StatusClass(status int) string { return classLabels[classIndex(status)] }

func classIndex(status int) int {
	if status < 100 || status > 599 {
		return numClasses - 1
	}
	return status/100 - 1
}

// RouteMetrics records the requests of one route. Safe for concurrent use.
type RouteMetrics struct {
	m    *Metrics
	name string

	dur [numClasses]atomic.Pointer[prometheus.Observer]

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
