package telemetry

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

func scrape(t *testing.T, h http.Handler) map[string]*dto.MetricFamily {
	t.Helper()
	srv := httptest.NewServer(h)
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatalf("scrape: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("scrape: got status %d; want 200", resp.StatusCode)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parse exposition: %v", err)
	}
	return fams
}

// find returns the metric of fam whose labels are exactly want.
func find(fams map[string]*dto.MetricFamily, name string, want map[string]string) *dto.Metric {
	fam := fams[name]
	if fam == nil {
		return nil
	}
	for _, m := range fam.GetMetric() {
		if len(m.GetLabel()) != len(want) {
			continue
		}
		ok := true
		for _, lp := range m.GetLabel() {
			if want[lp.GetName()] != lp.GetValue() {
				ok = false
			}
		}
		if ok {
			return m
		}
	}
	return nil
}

func TestObserveAndScrape(t *testing.T) {
	t.Parallel()
	m := NewMetrics()
	users := m.Route("users")
	if m.Route("users") != users {
		t.Error("Route twice: got two recorders; want one per name")
	}
	users.Observe("GET", 200, "users", 10*time.Millisecond)
	users.Observe("GET", 204, "users", 30*time.Millisecond)
	users.Observe("GET", 503, "users", time.Second)
	users.Observe("BREW", 418, "", 2*time.Millisecond)
	users.Observe("POST", 201, "users-v2", 5*time.Millisecond)
	m.InFlight.Inc()
	m.ReloadSucceeded("abc123", time.Unix(1_700_000_000, 0))
	m.ReloadFailed()
	m.ReloadSucceeded("def456", time.Unix(1_700_000_100, 0))

	fams := scrape(t, m.Handler())
	for _, tc := range []struct {
		name   string
		metric string
		labels map[string]string
		want   float64
	}{
		{"2xx GET", "portunus_requests_total", map[string]string{"route": "users", "method": "GET", "code": "2xx", "upstream": "users"}, 2},
		{"5xx GET", "portunus_requests_total", map[string]string{"route": "users", "method": "GET", "code": "5xx", "upstream": "users"}, 1},
		{"unknown method bounded", "portunus_requests_total", map[string]string{"route": "users", "method": "OTHER", "code": "4xx", "upstream": ""}, 1},
		{"second upstream", "portunus_requests_total", map[string]string{"route": "users", "method": "POST", "code": "2xx", "upstream": "users-v2"}, 1},
		{"reload success", "portunus_config_reloads_total", map[string]string{"result": "success"}, 2},
		{"reload failure", "portunus_config_reloads_total", map[string]string{"result": "failure"}, 1},
		{"config info of the live config", "portunus_config_info", map[string]string{"hash": "def456"}, 1},
		{"in flight", "portunus_requests_in_flight", map[string]string{}, 1},
		{"last reload", "portunus_config_last_reload_success_timestamp_seconds", map[string]string{}, 1_700_000_100},
	} {
		met := find(fams, tc.metric, tc.labels)
		if met == nil {
			t.Errorf("%s: no %s%v in the scrape", tc.name, tc.metric, tc.labels)
			continue
		}
		var got float64
		switch {
		case met.Counter != nil:
			got = met.GetCounter().GetValue()
		case met.Gauge != nil:
			got = met.GetGauge().GetValue()
		}
		if got != tc.want {
			t.Errorf("%s: got %v; want %v", tc.name, got, tc.want)
		}
	}
	if find(fams, "portunus_config_info", map[string]string{"hash": "abc123"}) != nil {
		t.Error("portunus_config_info: got the replaced hash still exported; want only the live one")
	}
	h := find(fams, "portunus_request_duration_seconds", map[string]string{"route": "users", "code": "2xx"})
	if h == nil {
		t.Fatal("no portunus_request_duration_seconds{route=users,code=2xx}")
	}
	if got := h.GetHistogram().GetSampleCount(); got != 3 {
		t.Errorf("duration 2xx count: got %d; want 3", got)
	}
	if got, want := h.GetHistogram().GetSampleSum(), 0.045; got < want-1e-9 || got > want+1e-9 {
		t.Errorf("duration 2xx sum: got %v; want %v", got, want)
	}
	for _, name := range []string{"go_goroutines", "process_cpu_seconds_total"} {
		if fams[name] == nil {
			t.Errorf("got no %s; want the runtime and process collectors registered", name)
		}
	}
}

func TestStatusClass(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		status int
		want   string
	}{{101, "1xx"}, {200, "2xx"}, {304, "3xx"}, {429, "4xx"}, {599, "5xx"}, {0, "other"}, {600, "other"}, {99, "other"}} {
		if got := StatusClass(tc.status); got != tc.want {
			t.Errorf("StatusClass(%d): got %q; want %q", tc.status, got, tc.want)
		}
	}
}

func TestObserveDoesNotAllocate(t *testing.T) {
	m := NewMetrics()
	r := m.Route("r")
	r.Observe("GET", 200, "u", time.Millisecond) // first use creates the children
	if got := testing.AllocsPerRun(100, func() { r.Observe("GET", 200, "u", time.Millisecond) }); got != 0 {
		t.Errorf("Observe: got %v allocations; want 0", got)
	}
}

func BenchmarkObserve(b *testing.B) {
	m := NewMetrics()
	r := m.Route("users")
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			r.Observe("GET", 200, "users", 3*time.Millisecond)
		}
	})
}
