package telemetry

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"math"
	"strings"
	"testing"
	"time"
)

// legacyJSONLine is the slog-based JSON writer Log used before appendJSON,
// kept so the tests can hold the hand-written line to byte identity.
func legacyJSONLine(e *Entry) []byte {
	var buf bytes.Buffer
	handler := slog.NewJSONHandler(&buf, &slog.HandlerOptions{ReplaceAttr: dropLevelAndMessage})
	t, path := lineTimePath(e) // shared with Log: the formatting is what is compared
	attrs := []slog.Attr{
		slog.String("request_id", e.RequestID),
		slog.String("trace_id", e.TraceID),
		slog.String("span_id", e.SpanID),
		slog.String("client_ip", e.ClientIP),
		slog.String("method", e.Method),
		slog.String("host", e.Host),
		slog.String("path", path),
		slog.String("proto", e.Proto),
		slog.String("route", e.Route),
		slog.String("upstream", e.Upstream),
		slog.String("target", e.Target),
		slog.String("consumer", e.Consumer),
		slog.String("auth_method", e.AuthMethod),
		slog.String("auth_error", e.AuthError),
		slog.String("user_agent", e.UserAgent),
		slog.Int("status", e.Status),
		slog.Int64("bytes_in", e.BytesIn),
		slog.Int64("bytes_out", e.BytesOut),
		slog.Float64("duration_ms", millis(e.Duration)),
		slog.Float64("upstream_ms", millis(e.UpstreamDuration)),
		slog.String("cache_status", e.CacheStatus),
		slog.String("rate_limit", e.RateLimit),
		slog.String("error", e.Error),
	}
	r := slog.NewRecord(t, slog.LevelInfo, "", 0)
	r.AddAttrs(attrs...)
	_ = handler.Handle(context.Background(), r)
	return buf.Bytes()
}

// dropLevelAndMessage keeps only our fields and the record time.
func dropLevelAndMessage(groups []string, a slog.Attr) slog.Attr {
	if len(groups) == 0 && (a.Key == slog.LevelKey || a.Key == slog.MessageKey) {
		return slog.Attr{}
	}
	return a
}

// legacyFloat is how slog's JSON handler writes a float attribute value.
func legacyFloat(f float64) string {
	var buf bytes.Buffer
	h := slog.NewJSONHandler(&buf, &slog.HandlerOptions{ReplaceAttr: dropLevelAndMessage})
	r := slog.NewRecord(time.Time{}, slog.LevelInfo, "", 0)
	r.AddAttrs(slog.Float64("v", f))
	_ = h.Handle(context.Background(), r)
	return strings.TrimSuffix(strings.TrimPrefix(buf.String(), `{"v":`), "}\n")
}

// newTestLog is an AccessLog writing to w without a flush goroutine.
func newTestLog(w io.Writer, combined bool) *AccessLog {
	a := &AccessLog{sample: 1, combined: combined, w: &lockedWriter{bw: bufio.NewWriterSize(w, bufferSize)}}
	a.lines.New = func() any { b := make([]byte, 0, 512); return &b }
	return a
}

// logLine is the line Log writes for e in the JSON format.
func logLine(t testing.TB, e *Entry) []byte {
	t.Helper()
	var buf bytes.Buffer
	a := newTestLog(&buf, false)
	a.Log(e)
	if err := a.w.flush(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// stripTime drops the time value, for lines whose time is "now".
func stripTime(line []byte) string {
	s := string(line)
	if i := strings.Index(s, `,"request_id":`); i >= 0 {
		return s[i:]
	}
	return s
}

func trickyEntries(t *testing.T) map[string]*Entry {
	base := sampleEntry
	with := func(f func(e *Entry)) *Entry { e := base(); f(e); return e }
	allStrings := func(s string) *Entry {
		return with(func(e *Entry) {
			for _, p := range []*string{&e.RequestID, &e.TraceID, &e.SpanID, &e.ClientIP, &e.Method, &e.Host, &e.Path,
				&e.Proto, &e.Route, &e.Upstream, &e.Target, &e.Consumer, &e.AuthMethod, &e.AuthError, &e.UserAgent,
				&e.Referer, &e.Error, &e.CacheStatus, &e.RateLimit} {
				*p = s
			}
		})
	}
	m := map[string]*Entry{
		"sample":           base(),
		"empty":            {Time: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)},
		"empty strings":    allStrings(""),
		"quotes":           allStrings(`"a"b""`),
		"backslashes":      allStrings(`\a\\b\"\`),
		"controls":         allStrings("\x00\x01\x07\x08\x0b\x0c\x1b\x1f\x7f\n\r\t end"),
		"invalid utf8":     allStrings("a\xffb\xc3\xe2\x80 \xed\xa0\x80 \xc0\xaf \xf4\x90\x80\x80 z\xc3"),
		"line separators":  allStrings("x\u2028y\u2029z\u202a\u2027"),
		"html":             allStrings("<script>&amp;</script> 'q'"),
		"unicode":          allStrings("héllo 日本語 😀 \ufffd \u00a0 \u200b"),
		"path query":       with(func(e *Entry) { e.Path = "/a\"\xff?b=\"c?d" }),
		"path only query":  with(func(e *Entry) { e.Path = "?secret=1" }),
		"negative numbers": with(func(e *Entry) { e.Status, e.BytesIn, e.BytesOut = -1, -5, math.MinInt64 }),
		"huge numbers":     with(func(e *Entry) { e.Status, e.BytesIn, e.BytesOut = math.MaxInt, math.MaxInt64, math.MaxInt64 }),
		"min int":          with(func(e *Entry) { e.Status = math.MinInt }),
		"zero numbers":     with(func(e *Entry) { e.Status, e.BytesIn, e.BytesOut, e.Duration, e.UpstreamDuration = 0, 0, 0, 0, 0 }),
		"1ns":              with(func(e *Entry) { e.Duration, e.UpstreamDuration = 1, -1 }),
		"half ms":          with(func(e *Entry) { e.Duration, e.UpstreamDuration = 500*time.Microsecond, 7 }),
		"max duration":     with(func(e *Entry) { e.Duration, e.UpstreamDuration = math.MaxInt64, math.MinInt64 }),
		"odd durations":    with(func(e *Entry) { e.Duration, e.UpstreamDuration = 123456789, 3*time.Hour+333 }),
		"sub-ms time":      with(func(e *Entry) { e.Time = time.Date(2026, 3, 4, 5, 6, 7, 123456789, time.UTC) }),
		"us time":          with(func(e *Entry) { e.Time = time.Date(2026, 3, 4, 5, 6, 7, 120000, time.UTC) }),
		"whole second":     with(func(e *Entry) { e.Time = time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC) }),
		"zone +05:30":      with(func(e *Entry) { e.Time = time.Date(2026, 3, 4, 5, 6, 7, 8, time.FixedZone("IST", 5*3600+1800)) }),
		"zone -08:00": with(func(e *Entry) {
			e.Time = time.Date(2026, 12, 31, 23, 59, 59, 999999999, time.FixedZone("PST", -8*3600))
		}),
		"zone seconds":        with(func(e *Entry) { e.Time = time.Date(1890, 1, 1, 0, 0, 0, 0, time.FixedZone("LMT", -17762)) }),
		"zone named utc 0":    with(func(e *Entry) { e.Time = time.Date(2026, 3, 4, 5, 6, 7, 0, time.FixedZone("X", 0)) }),
		"local":               with(func(e *Entry) { e.Time = time.Date(2026, 3, 4, 5, 6, 7, 1, time.Local) }),
		"monotonic":           with(func(e *Entry) { e.Time = time.Now() }),
		"beyond unix nanos":   with(func(e *Entry) { e.Time = time.Date(3000, 1, 1, 0, 0, 0, 5, time.UTC) }),
		"year 0":              with(func(e *Entry) { e.Time = time.Date(0, 1, 1, 0, 0, 0, 0, time.UTC) }),
		"year 9999":           with(func(e *Entry) { e.Time = time.Date(9999, 12, 31, 23, 59, 59, 1, time.UTC) }),
		"year 10000":          with(func(e *Entry) { e.Time = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC) }),
		"year -1":             with(func(e *Entry) { e.Time = time.Date(-1, 1, 1, 0, 0, 0, 0, time.UTC) }),
		"year 1 not zero":     with(func(e *Entry) { e.Time = time.Date(1, 1, 1, 0, 0, 0, 1, time.UTC) }),
		"zero time in a zone": with(func(e *Entry) { e.Time = time.Time{}.In(time.FixedZone("Q", 3600)) }),
	}
	if loc, err := time.LoadLocation("America/New_York"); err == nil {
		m["new york"] = with(func(e *Entry) { e.Time = time.Date(2026, 7, 4, 12, 0, 0, 250_000_000, loc) })
	} else {
		t.Logf("no tzdata (%v); fixed zones only", err)
	}
	return m
}

func TestAccessLogJSONMatchesSlog(t *testing.T) {
	t.Parallel()
	for name, e := range trickyEntries(t) {
		got, want := logLine(t, e), legacyJSONLine(e)
		if e.Time.IsZero() { // now: the two lines were written at different instants
			got, want = []byte(stripTime(got)), []byte(stripTime(want))
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s:\n got %q\nwant %q", name, got, want)
		}
	}
}

func TestAccessLogJSONZeroTimeIsNow(t *testing.T) {
	t.Parallel()
	e := sampleEntry()
	e.Time = time.Time{}
	before := time.Now()
	got := logLine(t, e)
	after := time.Now()
	if want := legacyJSONLine(e); stripTime(got) != stripTime(want) {
		t.Errorf("got %q\nwant %q", got, want)
	}
	var v struct{ Time time.Time }
	if err := json.Unmarshal(got, &v); err != nil {
		t.Fatalf("line is not JSON: %v: %s", err, got)
	}
	if v.Time.Before(before.Truncate(time.Second)) || v.Time.After(after) {
		t.Errorf("time %v; want between %v and %v", v.Time, before, after)
	}
}

func TestAppendJSONFloat(t *testing.T) {
	t.Parallel()
	for _, f := range []float64{0, math.Copysign(0, -1), 1, -1, 0.5, 1.5, 1e-6, 1e-7, -1e-7, 9.99999e-7, 1e-9, 1e-300,
		5e-324, 1e20, 1e21, -1e21, 1.2345e21, 1e100, math.MaxFloat64, -math.MaxFloat64, 123456.789, 0.1 + 0.2,
		9.223372036854776e12, 1e-06 * 3, math.Inf(1), math.Inf(-1), math.NaN()} {
		got, want := string(appendJSONFloat(nil, f)), legacyFloat(f)
		if got != want {
			t.Errorf("%v: got %s; want %s", f, got, want)
		}
		if !math.IsInf(f, 0) && !math.IsNaN(f) {
			if m, _ := json.Marshal(f); string(m) != got {
				t.Errorf("%v: got %s; json.Marshal writes %s", f, got, m)
			}
		}
	}
}

func TestAccessLogNoAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector makes sync.Pool drop buffers")
	}
	for _, combined := range []bool{false, true} {
		a := newTestLog(io.Discard, combined)
		e := sampleEntry()
		e.UserAgent = strings.Repeat("ü\"", 300) // longer than the pool's first buffer
		a.Log(e)
		if n := testing.AllocsPerRun(1000, func() { a.Log(e) }); n != 0 {
			t.Errorf("combined=%v: got %v allocations per Log; want 0", combined, n)
		}
		e.Time = time.Time{} // now
		if n := testing.AllocsPerRun(1000, func() { a.Log(e) }); n != 0 {
			t.Errorf("combined=%v, time now: got %v allocations per Log; want 0", combined, n)
		}
	}
}

func FuzzAccessLogJSON(f *testing.F) {
	f.Add("req-1", "/v1/users/7?api_key=x", `curl/8 "quoted"`, "", 200, int64(12), int64(345), int64(1500000), int64(1000000),
		int64(1772600767), int64(8000000), 0, 0.5)
	f.Add("", "", "", "", 0, int64(0), int64(0), int64(0), int64(0), int64(0), int64(0), 0, 0.0)
	f.Add("\x00\xff\u2028<>&", "?", "\\\"\n\t\r", "日本😀\ufffd", -1, int64(math.MinInt64), int64(math.MaxInt64),
		int64(1), int64(-1), int64(-62135596801), int64(999999999), 19800, 1e-7)
	f.Add("a\xc3", "/p\xe2\x80", "\u2029", "\x7f\x1f", 502, int64(-5), int64(1<<40), int64(math.MaxInt64), int64(math.MinInt64),
		int64(253402300800), int64(1), -17762, 1e21)
	f.Add("x", "/y", "z", "w", 404, int64(1), int64(2), int64(3), int64(4), int64(32503680000), int64(123456789), -28800, 1e-300)
	f.Fuzz(func(t *testing.T, s1, s2, s3, s4 string, status int, bytesIn, bytesOut, dur, updur, sec, nsec int64, offset int, fl float64) {
		tm := time.Unix(sec, nsec).In(time.FixedZone("F", offset))
		if tm.IsZero() {
			tm = tm.Add(1) // zero means now; TestAccessLogJSONZeroTimeIsNow covers it
		}
		e := &Entry{
			Time: tm, RequestID: s1, TraceID: s2, SpanID: s3, ClientIP: s4, Method: s1, Host: s4, Path: s2 + s3,
			Proto: s3, Route: s4 + s1, Upstream: s2, Target: s3, Consumer: s4, AuthMethod: s1, AuthError: s2,
			UserAgent: s3, Referer: s4, Error: s4 + s3, CacheStatus: s1, RateLimit: s2,
			Status: status, BytesIn: bytesIn, BytesOut: bytesOut, Duration: time.Duration(dur), UpstreamDuration: time.Duration(updur),
		}
		if got, want := logLine(t, e), legacyJSONLine(e); !bytes.Equal(got, want) {
			t.Fatalf("got  %q\nwant %q", got, want)
		}
		if got, want := string(appendJSONFloat(nil, fl)), legacyFloat(fl); got != want {
			t.Fatalf("float %v: got %s; want %s", fl, got, want)
		}
	})
}
