// Package telemetry holds what Portunus reports about itself: the
// Prometheus registry every package registers into, the per-request
// metrics, and the access log.
//
// Per-request recording is on the hot path, so label children are resolved
// once per (route, method, status class, upstream) and cached; Observe does
// no allocation and takes no global lock after the first request of each
// combination. Recorders for routes, upstreams and listeners are created
// when a snapshot is compiled (or a listener opened), never per request.
//
// A nil *Metrics, and the nil recorders it hands out, record nothing: that
// is how the gateway runs with metrics off (benchmarks compare the two).
//
// The metric families, their types and labels are listed in
// docs/metrics.md and pinned by testdata/metrics.golden.
package telemetry

import (
	"net/http"
	"sync"
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
	// RequestBytes is portunus_request_size_bytes_total{route}: request
	// body bytes the gateway actually read (not Content-Length).
	RequestBytes *prometheus.CounterVec
	// ResponseBytes is portunus_response_size_bytes_total{route}: response
	// body bytes written to the client.
	ResponseBytes *prometheus.CounterVec
	// InFlight is portunus_requests_in_flight.
	InFlight prometheus.Gauge
	// UpstreamRequests is portunus_upstream_requests_total{upstream,target,code}:
	// one per upstream call; code is the class of the upstream's answer,
	// or "error" when the call failed.
	UpstreamRequests *prometheus.CounterVec
	// UpstreamDuration is portunus_upstream_request_duration_seconds{upstream,target}:
	// time from sending the request to the upstream's response headers
	// (or to the failure).
	UpstreamDuration *prometheus.HistogramVec
	// ListenerConnsOpen is portunus_listener_connections_open{listener}.
	ListenerConnsOpen *prometheus.GaugeVec
	// ListenerConns is portunus_listener_connections_total{listener}.
	ListenerConns *prometheus.CounterVec
	// Reloads is portunus_config_reloads_total{result="success"|"failure"}.
	Reloads *prometheus.CounterVec
	// LastReloadSuccess is portunus_config_last_reload_success_timestamp_seconds.
	LastReloadSuccess prometheus.Gauge
	// ConfigInfo is portunus_config_info{hash} 1, for the live config only.
	ConfigInfo *prometheus.GaugeVec

	auth *authMetrics

	routesMu sync.Mutex
	routes   map[string]*RouteMetrics

	upsMu sync.Mutex
	ups   map[string]*UpstreamMetrics

	listenersMu sync.Mutex
	listeners   map[string]*ListenerMetrics
}

// DurationBuckets are the classic buckets of the request duration
// histogram, in seconds: from 1ms (a cached answer) to 30s (a slow upstream).
var DurationBuckets = []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}

// histogramOpts are the classic buckets plus a native histogram: scrapers
// that negotiate the protobuf format get the native one, the text format
// carries the classic buckets.
func histogramOpts(name, help string) prometheus.HistogramOpts {
	return prometheus.HistogramOpts{
		Name:                            name,
		Help:                            help,
		Buckets:                         DurationBuckets,
		NativeHistogramBucketFactor:     1.1,
		NativeHistogramMaxBucketNumber:  160,
		NativeHistogramMinResetDuration: time.Hour,
	}
}

// NewMetrics creates the registry and the gateway metrics in it.
func NewMetrics() *Metrics {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		buildInfoCollector{},
	)
	m := &Metrics{
		Registry: reg,
		Requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "portunus_requests_total",
			Help: "Requests served, by route, method, status class and upstream.",
		}, []string{"route", "method", "code", "upstream"}),
		Duration: prometheus.NewHistogramVec(histogramOpts(
			"portunus_request_duration_seconds",
			"Time from request received to response finished, by route and status class.",
		), []string{"route", "code"}),
		RequestBytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "portunus_request_size_bytes_total",
			Help: "Request body bytes read from clients, by route.",
		}, []string{"route"}),
		ResponseBytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "portunus_response_size_bytes_total",
			Help: "Response body bytes written to clients, by route.",
		}, []string{"route"}),
		InFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "portunus_requests_in_flight",
			Help: "Requests being served right now.",
		}),
		UpstreamRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "portunus_upstream_requests_total",
			Help: "Upstream calls, by upstream, target and status class of the answer (\"error\" when the call failed).",
		}, []string{"upstream", "target", "code"}),
		UpstreamDuration: prometheus.NewHistogramVec(histogramOpts(
			"portunus_upstream_request_duration_seconds",
			"Time from sending a request upstream to its response headers (or the failure), by upstream and target.",
		), []string{"upstream", "target"}),
		ListenerConnsOpen: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "portunus_listener_connections_open",
			Help: "Client connections open on each public listener.",
		}, []string{"listener"}),
		ListenerConns: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "portunus_listener_connections_total",
			Help: "Client connections accepted by each public listener.",
		}, []string{"listener"}),
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
		auth:      newAuthMetrics(),
		routes:    make(map[string]*RouteMetrics),
		ups:       make(map[string]*UpstreamMetrics),
		listeners: make(map[string]*ListenerMetrics),
	}
	reg.MustRegister(
		m.Requests, m.Duration, m.RequestBytes, m.ResponseBytes, m.InFlight,
		m.UpstreamRequests, m.UpstreamDuration,
		m.ListenerConnsOpen, m.ListenerConns,
		m.Reloads, m.LastReloadSuccess, m.ConfigInfo,
		m.auth.vec,
	)
	// Both results exist from the start, so rate() and alerts see a zero.
	m.Reloads.WithLabelValues("success")
	m.Reloads.WithLabelValues("failure")
	return m
}

// Handler serves the registry in the Prometheus exposition formats
// (protobuf, which carries native histograms, when the scraper asks for
// it; OpenMetrics or text otherwise).
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{
		ErrorHandling:     promhttp.ContinueOnError,
		EnableOpenMetrics: true,
	})
}

// RequestStarted counts a request in flight; RequestFinished ends it.
// Both do nothing on a nil *Metrics.
func (m *Metrics) RequestStarted() {
	if m != nil {
		m.InFlight.Inc()
	}
}

// RequestFinished is the end of a request RequestStarted counted.
func (m *Metrics) RequestFinished() {
	if m != nil {
		m.InFlight.Dec()
	}
}

// ReloadSucceeded records a successful reload of the config with this hash:
// the counter, the timestamp, and portunus_config_info pointing at it alone.
func (m *Metrics) ReloadSucceeded(hash string, at time.Time) {
	if m == nil {
		return
	}
	m.Reloads.WithLabelValues("success").Inc()
	m.LastReloadSuccess.Set(float64(at.UnixNano()) / 1e9)
	m.ConfigInfo.Reset()
	m.ConfigInfo.WithLabelValues(hash).Set(1)
}

// ReloadFailed records a failed reload.
func (m *Metrics) ReloadFailed() {
	if m != nil {
		m.Reloads.WithLabelValues("failure").Inc()
	}
}

// The bounded label values.
var (
	methodLabels = [...]string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "CONNECT", "TRACE", "OTHER"}
	classLabels  = [...]string{"1xx", "2xx", "3xx", "4xx", "5xx", "other"}
)

// UpstreamErrorCode is the code label of an upstream call that failed
// (no answer: connect error, reset, timeout, broken request body).
const UpstreamErrorCode = "error"

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
