package gateway

import (
	"github.com/portunus-gw/portunus/internal/config"
	"github.com/portunus-gw/portunus/internal/telemetry"
	"github.com/portunus-gw/portunus/internal/upstream"
)

// The metrics recorder is the pools' health observer.
var _ upstream.Observer = (*telemetry.UpstreamHealthRecorder)(nil)

// buildPool builds one upstream pool with its health events going to the
// metrics (none when metrics are off). The pool starts nothing until the
// snapshot holding it goes live (Runtime calls Start).
func buildPool(u config.Upstream, m *telemetry.Metrics) (*upstream.Pool, error) {
	var opts []upstream.Option
	if rec := m.UpstreamHealth(u.Name); rec != nil {
		opts = append(opts, upstream.WithObserver(rec))
	}
	return upstream.NewPool(u, opts...)
}
