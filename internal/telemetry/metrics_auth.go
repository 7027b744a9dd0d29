package telemetry

import (
	"strings"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// maxAuthReasons bounds the reason label: methods report fixed messages,
// but nothing forces a method to, so past this many distinct reasons new
// ones are counted as "other".
const maxAuthReasons = 64

// authMetrics is portunus_auth_requests_total{method,result,reason}:
// one count per request that met an auth policy. method is the auth method
// ("api_key", "jwt:main", "none" when no credential was present), result
// "success" or "failure", reason the short refusal reason ("" on success).
// Consumer names are never labels.
type authMetrics struct {
	vec *prometheus.CounterVec
	// success caches resolved counters by method, so the success path is
	// one sync.Map load and no allocation; failures by method and reason.
	success  sync.Map // method -> prometheus.Counter
	children sync.Map // "method\x00reason" -> prometheus.Counter
	mu       sync.Mutex
	reasons  map[string]bool
}

func newAuthMetrics() *authMetrics {
	return &authMetrics{
		vec: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "portunus_auth_requests_total",
			Help: "Requests that met an auth policy, by method, result (success or failure) and refusal reason.",
		}, []string{"method", "result", "reason"}),
		reasons: map[string]bool{},
	}
}

// ObserveAuth records one authentication outcome: method is
// State.AuthMethod (set on success), authError is State.AuthError (set on
// failure, as "METHOD: reason" or "no credentials"). Both empty: nothing.
func (m *Metrics) ObserveAuth(method, authError string) {
	if m == nil || (method == "" && authError == "") {
		return
	}
	a := m.auth
	if authError == "" {
		if c, ok := a.success.Load(method); ok {
			c.(prometheus.Counter).Inc()
			return
		}
		c := a.vec.WithLabelValues(method, "success", "")
		a.success.Store(method, c)
		c.Inc()
		return
	}
	result, reason := "success", ""
	if authError != "" {
		result = "failure"
		method, reason = "none", authError
		if i := strings.Index(authError, ": "); i > 0 {
			method, reason = authError[:i], authError[i+2:]
		}
	}
	key := method + "\x00" + result + "\x00" + reason
	if c, ok := a.children.Load(key); ok {
		c.(prometheus.Counter).Inc()
		return
	}
	a.mu.Lock()
	if !a.reasons[reason] && len(a.reasons) >= maxAuthReasons {
		reason = "other"
	}
	a.reasons[reason] = true
	a.mu.Unlock()
	c := a.vec.WithLabelValues(method, result, reason)
	a.children.Store(key, c)
	c.Inc()
}
