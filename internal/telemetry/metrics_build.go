package telemetry

import (
	"runtime"
	"runtime/debug"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// version is what portunus_build_info reports; SetVersion replaces it.
var version atomic.Pointer[string]

func init() {
	v := "unknown"
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		v = bi.Main.Version
	}
	version.Store(&v)
}

// SetVersion sets the version portunus_build_info reports (the CLI calls
// it with the version stamped at build time). It may be called at any
// time; the next scrape shows it.
func SetVersion(v string) { version.Store(&v) }

var buildInfoDesc = prometheus.NewDesc(
	"portunus_build_info",
	"The running binary's version and Go version; always 1.",
	[]string{"version", "goversion"}, nil,
)

// buildInfoCollector exports portunus_build_info, reading the version at
// scrape time so SetVersion works before or after the registry exists.
type buildInfoCollector struct{}

func (buildInfoCollector) Describe(ch chan<- *prometheus.Desc) { ch <- buildInfoDesc }

func (buildInfoCollector) Collect(ch chan<- prometheus.Metric) {
	ch <- prometheus.MustNewConstMetric(buildInfoDesc, prometheus.GaugeValue, 1, *version.Load(), runtime.Version())
}
