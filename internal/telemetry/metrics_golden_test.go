package telemetry

import (
	"flag"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite testdata/metrics.golden from the live metric set")

// familyLines describes every portunus_ family: "name type label,label".
// Every recorder is exercised once so that vectors have a child to show.
func familyLines(t *testing.T) []string {
	t.Helper()
	m := NewMetrics()
	m.Route("r").Observe("GET", 200, "u", time.Millisecond)
	m.Route("r").Bytes(1, 1)
	m.Upstream("u").Observe("http://t", 200, false, time.Millisecond)
	exerciseUpstreamHealth(m.UpstreamHealth("u"))
	m.Listener("l").ConnState(nil, http.StateNew)
	m.ObserveAuth("api_key", "")
	m.RateLimit("r", "l").Observe(true)
	m.Deprecated("r").Observe("c")
	m.Cache("r").Observe(CacheHit)
	m.Mirror("r", "u").Mirrored("sent")
	m.CacheStore(func() (int64, int64) { return 1, 1 })()
	m.RequestStarted()
	m.ReloadSucceeded("h", time.Now())
	fams, err := m.Registry.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	var lines []string
	for _, f := range fams {
		if !strings.HasPrefix(f.GetName(), "portunus_") {
			continue
		}
		var labels []string
		if ms := f.GetMetric(); len(ms) > 0 {
			for _, lp := range ms[0].GetLabel() {
				labels = append(labels, lp.GetName())
			}
		}
		slices.Sort(labels)
		line := f.GetName() + " " + strings.ToLower(f.GetType().String())
		if len(labels) > 0 {
			line += " " + strings.Join(labels, ",")
		}
		lines = append(lines, line)
	}
	slices.Sort(lines)
	return lines
}

// TestMetricFamiliesGolden pins every metric family's name, type and
// label names: renaming one breaks dashboards, so it must be deliberate
// (go test -run Golden -update) and show in review.
func TestMetricFamiliesGolden(t *testing.T) {
	t.Parallel()
	got := strings.Join(familyLines(t), "\n") + "\n"
	path := filepath.Join("testdata", "metrics.golden")
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read golden (run with -update to create it): %v", err)
	}
	if got != string(want) {
		t.Errorf("metric families changed; got:\n%s\nwant:\n%s\n(run go test ./internal/telemetry -run Golden -update if intended, and update docs/metrics.md)", got, want)
	}
}

// TestMetricsDocListsEveryFamily checks docs/metrics.md names every family
// with its labels, so the reference cannot drift from the code.
func TestMetricsDocListsEveryFamily(t *testing.T) {
	t.Parallel()
	doc, err := os.ReadFile(filepath.Join("..", "..", "docs", "metrics.md"))
	if err != nil {
		t.Fatalf("read docs/metrics.md: %v", err)
	}
	for _, line := range familyLines(t) {
		f := strings.Fields(line)
		name, typ := f[0], f[1]
		row := "| `" + name + "` | " + typ + " |"
		if !strings.Contains(string(doc), row) {
			t.Errorf("docs/metrics.md: got no row starting %q; want one per family", row)
			continue
		}
		if len(f) > 2 {
			for _, l := range strings.Split(f[2], ",") {
				// The row's labels column names each label in backquotes.
				i := strings.Index(string(doc), row)
				end := strings.IndexByte(string(doc)[i:], '\n')
				if !strings.Contains(string(doc)[i:i+end], "`"+l+"`") {
					t.Errorf("docs/metrics.md: %s row: got no label `%s`; want every label listed", name, l)
				}
			}
		}
	}
}
