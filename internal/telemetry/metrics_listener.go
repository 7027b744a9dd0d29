package telemetry

import (
	"net"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
)

// Listener returns the connection recorder of one public listener, named
// as the config names it (its address); the same name gives the same
// recorder, so the counts carry across reloads that keep the listener. A
// nil *Metrics returns a nil recorder.
func (m *Metrics) Listener(name string) *ListenerMetrics {
	if m == nil {
		return nil
	}
	m.listenersMu.Lock()
	defer m.listenersMu.Unlock()
	l := m.listeners[name]
	if l == nil {
		l = &ListenerMetrics{
			open:  m.ListenerConnsOpen.WithLabelValues(name),
			total: m.ListenerConns.WithLabelValues(name),
		}
		m.listeners[name] = l
	}
	return l
}

// ListenerMetrics counts a listener's client connections.
type ListenerMetrics struct {
	open  prometheus.Gauge
	total prometheus.Counter
}

// ConnState is an http.Server.ConnState hook. A connection counts as open
// from accept until it is closed or hijacked (a WebSocket the proxy took
// over is no longer the server's; the proxy's own metrics cover it). TLS
// handshake failures show up as connections that opened and closed.
func (l *ListenerMetrics) ConnState(_ net.Conn, st http.ConnState) {
	switch st {
	case http.StateNew:
		l.total.Inc()
		l.open.Inc()
	case http.StateClosed, http.StateHijacked:
		l.open.Dec()
	}
}
