package telemetry

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/portunus-gw/portunus/internal/config"
)

func openFileLog(t *testing.T, format string, sample *float64) (*AccessLog, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "access.log")
	a, err := NewAccessLog(config.AccessLog{Format: format, Path: path, SampleSuccess: sample})
	if err != nil {
		t.Fatalf("NewAccessLog: %v", err)
	}
	return a, path
}

func readLines(t *testing.T, path string) []string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read log: %v", err)
	}
	s := strings.TrimSuffix(string(data), "\n")
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

func sampleEntry() *Entry {
	return &Entry{
		Time:      time.Date(2026, 3, 4, 5, 6, 7, 8_000_000, time.UTC),
		RequestID: "req-1", ClientIP: "203.0.113.9", Method: "GET", Host: "api.example.com",
		Path: "/v1/users/7?api_key=SECRET", Proto: "HTTP/1.1", Route: "users", Upstream: "users",
		Target: "127.0.0.1:9001", Consumer: "alice", AuthMethod: "jwt:main", UserAgent: `curl/8 "quoted"`, Referer: "https://app.example.com/",
		Status: 200, BytesIn: 12, BytesOut: 345, Duration: 1500 * time.Microsecond, UpstreamDuration: time.Millisecond,
		TraceID: "4bf92f3577b34da6a3ce929d0e0e4736", SpanID: "00f067aa0ba902b7", CacheStatus: "hit", RateLimit: "allowed",
	}
}

func TestAccessLogJSON(t *testing.T) {
	t.Parallel()
	a, path := openFileLog(t, "json", nil)
	a.Log(sampleEntry())
	if err := a.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	a.Log(sampleEntry()) // after Close: dropped, no panic
	lines := readLines(t, path)
	if len(lines) != 1 {
		t.Fatalf("got %d lines; want 1", len(lines))
	}
	if strings.Contains(lines[0], "SECRET") || strings.Contains(lines[0], "api_key") {
		t.Errorf("got the query string in the log: %s; want it never logged", lines[0])
	}
	var got map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &got); err != nil {
		t.Fatalf("line is not JSON: %v: %s", err, lines[0])
	}
	want := map[string]any{
		"time": "2026-03-04T05:06:07.008Z", "request_id": "req-1", "client_ip": "203.0.113.9",
		"method": "GET", "host": "api.example.com", "path": "/v1/users/7", "proto": "HTTP/1.1",
		"route": "users", "upstream": "users", "target": "127.0.0.1:9001", "consumer": "alice",
		"user_agent": `curl/8 "quoted"`, "status": 200.0, "bytes_in": 12.0, "bytes_out": 345.0,
		"duration_ms": 1.5, "upstream_ms": 1.0, "error": "",
		"trace_id": "4bf92f3577b34da6a3ce929d0e0e4736", "span_id": "00f067aa0ba902b7",
		"cache_status": "hit", "rate_limit": "allowed",
		"auth_method": "jwt:main", "auth_error": "",
	}
	for k, w := range want {
		if got[k] != w {
			t.Errorf("%s: got %v; want %v", k, got[k], w)
		}
	}
	if len(got) != len(want) {
		t.Errorf("got %d keys %v; want exactly %d", len(got), got, len(want))
	}
	// The documented order (the field list in accesslog.go).
	order := []string{"time", "request_id", "trace_id", "span_id", "client_ip", "method", "host", "path",
		"proto", "route", "upstream", "target", "consumer", "auth_method", "auth_error", "user_agent", "status", "bytes_in", "bytes_out",
		"duration_ms", "upstream_ms", "cache_status", "rate_limit", "error"}
	if keys := jsonKeys(t, lines[0]); strings.Join(keys, ",") != strings.Join(order, ",") {
		t.Errorf("got keys in order %v; want %v", keys, order)
	}
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if perm := info.Mode().Perm(); perm&^0o640 != 0 {
		t.Errorf("file mode: got %o; want at most 0640", perm)
	}
}

func TestAccessLogSampling(t *testing.T) {
	t.Parallel()
	zero, half := 0.0, 0.5
	for _, tc := range []struct {
		name      string
		sample    *float64
		wantOK    int // of 200 successes
		exactOK   bool
		wantError int // of 20 errors: always all
	}{
		{name: "default logs everything", sample: nil, wantOK: 200, exactOK: true, wantError: 20},
		{name: "zero logs only errors", sample: &zero, wantOK: 0, exactOK: true, wantError: 20},
		{name: "half logs some successes", sample: &half, wantOK: 100, wantError: 20},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			a, path := openFileLog(t, "json", tc.sample)
			for i := range 220 {
				e := sampleEntry()
				if i >= 200 {
					e.Status = 502
				}
				a.Log(e)
			}
			_ = a.Close()
			ok, errs := 0, 0
			for _, l := range readLines(t, path) {
				if strings.Contains(l, `"status":502`) {
					errs++
				} else {
					ok++
				}
			}
			if errs != tc.wantError {
				t.Errorf("got %d errors logged; want %d", errs, tc.wantError)
			}
			if tc.exactOK && ok != tc.wantOK || !tc.exactOK && (ok == 0 || ok == 200) {
				t.Errorf("got %d of 200 successes logged; want %d", ok, tc.wantOK)
			}
		})
	}
}

func TestAccessLogCombined(t *testing.T) {
	t.Parallel()
	a, path := openFileLog(t, "combined", nil)
	a.Log(sampleEntry())
	e := sampleEntry()
	e.Consumer, e.UserAgent, e.Referer, e.BytesOut, e.Status = "", "", "", 0, 404
	e.Path = "/evil\"\n127.0.0.1 - - [forged]"
	a.Log(e)
	_ = a.Close()
	lines := readLines(t, path)
	want := []string{
		`203.0.113.9 - alice [04/Mar/2026:05:06:07 +0000] "GET /v1/users/7 HTTP/1.1" 200 345 "https://app.example.com/" "curl/8 \"quoted\""`,
		`203.0.113.9 - - [04/Mar/2026:05:06:07 +0000] "GET /evil\"\x0a127.0.0.1 - - [forged] HTTP/1.1" 404 - "-" "-"`,
	}
	if len(lines) != len(want) {
		t.Fatalf("got %d lines %q; want %d", len(lines), lines, len(want))
	}
	for i := range want {
		if lines[i] != want[i] {
			t.Errorf("line %d:\n got %s\nwant %s", i, lines[i], want[i])
		}
	}
}

func TestAccessLogConfig(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		cfg     config.AccessLog
		wantErr bool
	}{
		{name: "off", cfg: config.AccessLog{Path: "off"}},
		{name: "stderr combined", cfg: config.AccessLog{Path: "stderr", Format: "combined"}},
		{name: "bad format", cfg: config.AccessLog{Format: "xml"}, wantErr: true},
		{name: "unwritable path", cfg: config.AccessLog{Path: filepath.Join(t.TempDir(), "no", "such", "dir", "a.log")}, wantErr: true},
	} {
		a, err := NewAccessLog(tc.cfg)
		if (err != nil) != tc.wantErr {
			t.Errorf("%s: got error %v; want error %v", tc.name, err, tc.wantErr)
			continue
		}
		if err == nil {
			if tc.cfg.Path == "off" {
				a.Log(sampleEntry()) // no destination: must not panic
			}
			if err := a.Close(); err != nil {
				t.Errorf("%s: Close: %v", tc.name, err)
			}
		}
	}
}

func TestAccessLogPeriodicFlush(t *testing.T) {
	t.Parallel()
	a, path := openFileLog(t, "json", nil)
	defer a.Close()
	a.Log(sampleEntry())
	// Without Close the line reaches the file within the flush interval;
	// poll with a generous bound.
	deadline := time.Now().Add(20 * time.Second)
	for {
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for sc := bufio.NewScanner(f); sc.Scan(); {
			n++
		}
		f.Close()
		if n == 1 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("line not flushed 20s after logging; want it flushed every second")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func BenchmarkAccessLogJSON(b *testing.B) {
	a, err := NewAccessLog(config.AccessLog{Path: filepath.Join(b.TempDir(), "a.log")})
	if err != nil {
		b.Fatal(err)
	}
	defer a.Close()
	e := sampleEntry()
	b.ReportAllocs()
	for b.Loop() {
		a.Log(e)
	}
}

func BenchmarkAccessLogCombined(b *testing.B) {
	a, err := NewAccessLog(config.AccessLog{Path: filepath.Join(b.TempDir(), "a.log"), Format: "combined"})
	if err != nil {
		b.Fatal(err)
	}
	defer a.Close()
	e := sampleEntry()
	b.ReportAllocs()
	for b.Loop() {
		a.Log(e)
	}
}

// jsonKeys returns the top-level keys of a JSON object in document order.
func jsonKeys(t *testing.T, line string) []string {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(line))
	if _, err := dec.Token(); err != nil {
		t.Fatal(err)
	}
	var keys []string
	for dec.More() {
		k, err := dec.Token()
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, k.(string))
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			t.Fatal(err)
		}
	}
	return keys
}
