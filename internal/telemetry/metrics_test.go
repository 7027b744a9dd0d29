package telemetry

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
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

func TestUpstreamBytesListenerBuildInfo(t *testing.T) {
	t.Parallel()
	m := NewMetrics()
	u := m.Upstream("users")
	if m.Upstream("users") != u {
		t.Error("Upstream twice: got two recorders; want one per name")
	}
	u.Prepare("http://10.0.0.1:80")
	u.Observe("http://10.0.0.1:80", 200, false, 20*time.Millisecond)
	u.Observe("http://10.0.0.1:80", 503, false, 40*time.Millisecond)
	u.Observe("http://10.0.0.1:80", 0, true, 5*time.Millisecond)
	u.Observe("http://10.0.0.2:80", 200, false, 10*time.Millisecond) // not prepared
	r := m.Route("users")
	r.Bytes(100, 2000)
	r.Bytes(0, 50)
	l := m.Listener(":8080")
	l.ConnState(nil, http.StateNew)
	l.ConnState(nil, http.StateNew)
	l.ConnState(nil, http.StateActive)
	l.ConnState(nil, http.StateClosed)
	m.Listener("127.0.0.1:0#1").ConnState(nil, http.StateNew)
	m.Listener("127.0.0.1:0#1").ConnState(nil, http.StateHijacked)

	fams := scrape(t, m.Handler())
	for _, tc := range []struct {
		name   string
		metric string
		labels map[string]string
		want   float64
	}{
		{"upstream 2xx", "portunus_upstream_requests_total", map[string]string{"upstream": "users", "target": "http://10.0.0.1:80", "code": "2xx"}, 1},
		{"upstream 5xx", "portunus_upstream_requests_total", map[string]string{"upstream": "users", "target": "http://10.0.0.1:80", "code": "5xx"}, 1},
		{"upstream error", "portunus_upstream_requests_total", map[string]string{"upstream": "users", "target": "http://10.0.0.1:80", "code": "error"}, 1},
		{"unprepared target", "portunus_upstream_requests_total", map[string]string{"upstream": "users", "target": "http://10.0.0.2:80", "code": "2xx"}, 1},
		{"bytes in", "portunus_request_size_bytes_total", map[string]string{"route": "users"}, 100},
		{"bytes out", "portunus_response_size_bytes_total", map[string]string{"route": "users"}, 2050},
		{"conns total", "portunus_listener_connections_total", map[string]string{"listener": ":8080"}, 2},
		{"conns open", "portunus_listener_connections_open", map[string]string{"listener": ":8080"}, 1},
		{"hijacked conn leaves open", "portunus_listener_connections_open", map[string]string{"listener": "127.0.0.1:0#1"}, 0},
	} {
		met := find(fams, tc.metric, tc.labels)
		if met == nil {
			t.Errorf("%s: no %s%v in the scrape", tc.name, tc.metric, tc.labels)
			continue
		}
		got := met.GetCounter().GetValue() + met.GetGauge().GetValue()
		if got != tc.want {
			t.Errorf("%s: got %v; want %v", tc.name, got, tc.want)
		}
	}
	if find(fams, "portunus_upstream_requests_total", map[string]string{"upstream": "users", "target": "http://10.0.0.1:80", "code": "1xx"}) != nil {
		t.Error("got a 1xx upstream series no call produced; want codes exported on first use only")
	}
	h := find(fams, "portunus_upstream_request_duration_seconds", map[string]string{"upstream": "users", "target": "http://10.0.0.1:80"})
	if h == nil {
		t.Fatal("no portunus_upstream_request_duration_seconds for the prepared target")
	}
	if got := h.GetHistogram().GetSampleCount(); got != 3 {
		t.Errorf("upstream duration count: got %d; want 3 (failed calls included)", got)
	}
	if got, want := h.GetHistogram().GetSampleSum(), 0.065; got < want-1e-9 || got > want+1e-9 {
		t.Errorf("upstream duration sum: got %v; want %v", got, want)
	}
	bi := fams["portunus_build_info"]
	if bi == nil || len(bi.GetMetric()) != 1 || bi.GetMetric()[0].GetGauge().GetValue() != 1 {
		t.Fatalf("portunus_build_info: got %v; want one series of value 1", bi)
	}
}

func TestSetVersion(t *testing.T) {
	// Not parallel: the version is process-wide.
	old := *version.Load()
	defer SetVersion(old)
	m := NewMetrics()
	SetVersion("v9.8.7-test") // after the registry exists: the next scrape sees it
	fams := scrape(t, m.Handler())
	var got string
	for _, lp := range fams["portunus_build_info"].GetMetric()[0].GetLabel() {
		if lp.GetName() == "version" {
			got = lp.GetValue()
		}
	}
	if got != "v9.8.7-test" {
		t.Errorf("build_info version: got %q; want %q", got, "v9.8.7-test")
	}
}

// TestNilMetricsRecordNothing: a nil *Metrics and its nil recorders are
// the metrics-off mode; every call must be a safe no-op.
func TestNilMetricsRecordNothing(t *testing.T) {
	t.Parallel()
	var m *Metrics
	m.RequestStarted()
	m.RequestFinished()
	m.ReloadSucceeded("h", time.Now())
	m.ReloadFailed()
	r := m.Route("r")
	r.Observe("GET", 200, "u", time.Millisecond)
	r.Bytes(1, 2)
	r.PrepareUpstream("u")
	u := m.Upstream("u")
	u.Prepare("t")
	u.Observe("t", 200, false, time.Millisecond)
	if r != nil || u != nil || m.Listener("l") != nil {
		t.Errorf("nil Metrics: got recorders %v %v; want nil", r, u)
	}
	var b *BodyCounter
	if got := b.N(); got != 0 {
		t.Errorf("nil BodyCounter N: got %d; want 0", got)
	}
}

func TestBodyCounter(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		body string
		read int // bytes to read; -1 = all
		want int64
	}{
		{"all", "hello world", -1, 11},
		{"partial", "hello world", 4, 4},
		{"empty", "", -1, 0},
	} {
		b := NewBodyCounter(io.NopCloser(strings.NewReader(tc.body)))
		if tc.read < 0 {
			_, _ = io.Copy(io.Discard, b)
		} else {
			_, _ = io.ReadFull(b, make([]byte, tc.read))
		}
		if err := b.Close(); err != nil {
			t.Errorf("%s: close: %v", tc.name, err)
		}
		if got := b.N(); got != tc.want {
			t.Errorf("%s: got %d bytes counted; want %d", tc.name, got, tc.want)
		}
	}
}

func TestRecordersDoNotAllocate(t *testing.T) {
	m := NewMetrics()
	r := m.Route("r")
	u := m.Upstream("u")
	u.Prepare("http://t")
	u.Observe("http://t", 200, false, time.Millisecond) // first use of the code
	l := m.Listener("l")
	for _, tc := range []struct {
		name string
		f    func()
	}{
		{"Bytes", func() { r.Bytes(10, 20) }},
		{"UpstreamMetrics.Observe", func() { u.Observe("http://t", 200, false, time.Millisecond) }},
		{"ConnState", func() { l.ConnState(nil, http.StateNew); l.ConnState(nil, http.StateClosed) }},
	} {
		if got := testing.AllocsPerRun(100, tc.f); got != 0 {
			t.Errorf("%s: got %v allocations; want 0", tc.name, got)
		}
	}
}

func BenchmarkUpstreamObserve(b *testing.B) {
	m := NewMetrics()
	u := m.Upstream("users")
	u.Prepare("http://10.0.0.1:80")
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			u.Observe("http://10.0.0.1:80", 200, false, 3*time.Millisecond)
		}
	})
}

func TestObserveAuth(t *testing.T) {
	t.Parallel()
	m := NewMetrics()
	m.ObserveAuth("api_key", "")
	m.ObserveAuth("api_key", "")
	m.ObserveAuth("", "jwt:main: token expired")
	m.ObserveAuth("", "no credentials")
	m.ObserveAuth("", "") // no auth policy: nothing
	for i := 0; i < maxAuthReasons+10; i++ {
		m.ObserveAuth("", fmt.Sprintf("basic: reason %d", i))
	}
	cases := []struct {
		method, result, reason string
		want                   float64
	}{
		{"api_key", "success", "", 2},
		{"jwt:main", "failure", "token expired", 1},
		{"none", "failure", "no credentials", 1},
	}
	for _, tc := range cases {
		got := testutil.ToFloat64(m.auth.vec.WithLabelValues(tc.method, tc.result, tc.reason))
		if got != tc.want {
			t.Errorf("auth{%s,%s,%q} = %v; want %v", tc.method, tc.result, tc.reason, got, tc.want)
		}
	}
	if n := testutil.CollectAndCount(m.auth.vec); n > maxAuthReasons+3 {
		t.Errorf("%d auth series; want the reason label capped near %d", n, maxAuthReasons)
	}
	if other := testutil.ToFloat64(m.auth.vec.WithLabelValues("basic", "failure", "other")); other == 0 {
		t.Error("reasons past the cap were not counted as other")
	}
}

// Not parallel: AllocsPerRun refuses to run beside parallel tests.
func TestObserveAuthSuccessDoesNotAllocate(t *testing.T) {
	m := NewMetrics()
	m.ObserveAuth("api_key", "")
	if allocs := testing.AllocsPerRun(100, func() { m.ObserveAuth("api_key", "") }); allocs != 0 {
		t.Errorf("ObserveAuth success path allocates %v times; want 0", allocs)
	}
}
