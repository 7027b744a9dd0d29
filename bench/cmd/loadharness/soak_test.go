package main

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestLeastSquaresSlope(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		xs, ys []float64
		want   float64
		wantOK bool
	}{
		{"exact line", []float64{0, 1, 2, 3}, []float64{1, 3, 5, 7}, 2, true},
		{"flat", []float64{1, 2, 3}, []float64{40, 40, 40}, 0, true},
		{"falling", []float64{0, 10}, []float64{5, 0}, -0.5, true},
		// x̄ = 1.5, ȳ = 2.5, Σdx·dy = 4, Σdx² = 5.
		{"noisy", []float64{0, 1, 2, 3}, []float64{1, 3, 2, 4}, 0.8, true},
		{"unevenly spaced", []float64{0, 1, 4}, []float64{0, 2, 8}, 2, true},
		{"one point", []float64{1}, []float64{1}, 0, false},
		{"no points", nil, nil, 0, false},
		{"same x", []float64{2, 2, 2}, []float64{1, 2, 3}, 0, false},
		{"length mismatch", []float64{1, 2}, []float64{1}, 0, false},
	}
	for _, tc := range cases {
		got, ok := leastSquaresSlope(tc.xs, tc.ys)
		if ok != tc.wantOK || math.Abs(got-tc.want) > 1e-9 {
			t.Errorf("%s: leastSquaresSlope = %v, %v; want %v, %v", tc.name, got, ok, tc.want, tc.wantOK)
		}
	}
}

func TestSoakSettle(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ total, want time.Duration }{
		{10 * time.Minute, time.Minute},
		{2 * time.Hour, time.Minute},
		{5 * time.Minute, 30 * time.Second},
		{60 * time.Second, 6 * time.Second},
	} {
		if got := soakSettle(tc.total); got != tc.want {
			t.Errorf("soakSettle(%s) = %s; want %s", tc.total, got, tc.want)
		}
	}
}

func TestSoakSegments(t *testing.T) {
	t.Parallel()
	h, m, s := time.Hour, time.Minute, time.Second
	for _, tc := range []struct {
		total, maxSeg time.Duration
		want          []time.Duration
	}{
		{10 * m, h, []time.Duration{10 * m}},
		{2 * h, h, []time.Duration{h, h}},
		{150 * m, h, []time.Duration{h, h, 30 * m}},
		{1500 * time.Millisecond, h, []time.Duration{2 * s}}, // wrk's -d is whole seconds
		{5 * s, 1500 * time.Millisecond, []time.Duration{s, s, s, s, s}},
	} {
		got := soakSegments(tc.total, tc.maxSeg)
		if !slices.Equal(got, tc.want) {
			t.Errorf("soakSegments(%s, %s) = %v; want %v", tc.total, tc.maxSeg, got, tc.want)
		}
	}
}

// samplesEvery builds samples taken every step seconds from 0 with the
// given RSS values in MiB.
func samplesEvery(step float64, mib ...float64) []soakSample {
	var out []soakSample
	for i, v := range mib {
		out = append(out, soakSample{AtSec: float64(i) * step, RSSKiB: uint64(v * 1024)})
	}
	return out
}

func TestSummarizeSoak(t *testing.T) {
	t.Parallel()
	const eps = 1e-9
	t.Run("growing after the first minute", func(t *testing.T) {
		t.Parallel()
		// 60 s soak, settle 6 s: the first figure is the 10 s sample (20
		// MiB); then +1 MiB every 10 s = 6 MiB/min. The idle baseline at 0 s
		// is below everything and is not in the fit.
		f := summarizeSoak(samplesEvery(10, 8, 20, 21, 22, 23, 24, 25), 6*time.Second)
		if f.FirstAtSec != 10 || f.FirstKiB != 20*1024 || f.EndKiB != 25*1024 || f.MaxKiB != 25*1024 {
			t.Errorf("first/end/max = %v s %d, %d, %d KiB; want 10 s 20480, 25600, 25600", f.FirstAtSec, f.FirstKiB, f.EndKiB, f.MaxKiB)
		}
		if math.Abs(f.GrowthMiB-5) > eps || math.Abs(f.GrowthPercent-25) > eps {
			t.Errorf("growth = %v MiB, %v%%; want 5 MiB, 25%%", f.GrowthMiB, f.GrowthPercent)
		}
		if f.SlopeSamples != 6 || math.Abs(f.SlopeMiBPerMin-6) > eps {
			t.Errorf("slope = %v MiB/min over %d samples; want 6 over 6", f.SlopeMiBPerMin, f.SlopeSamples)
		}
	})
	t.Run("flat with a transient peak", func(t *testing.T) {
		t.Parallel()
		// 10 min soak sampled every minute: 30 MiB throughout except one
		// 40 MiB reading; the end equals the first-minute figure.
		f := summarizeSoak(samplesEvery(60, 10, 30, 30, 30, 40, 30, 30, 30, 30, 30, 30), 10*time.Minute/10)
		if f.FirstAtSec != 60 || f.MaxKiB != 40*1024 || f.GrowthMiB != 0 || f.GrowthPercent != 0 {
			t.Errorf("got %+v; want first at 60 s, max 40 MiB, no growth", f)
		}
		// Slope over x = 1..10 min, the +10 MiB peak at x = 4:
		// Σdx·dy = (4 − 5.5)·10 = −15, Σdx² = 82.5.
		if want := -15 / 82.5; f.SlopeSamples != 10 || math.Abs(f.SlopeMiBPerMin-want) > eps {
			t.Errorf("slope = %v over %d; want %v over 10", f.SlopeMiBPerMin, f.SlopeSamples, want)
		}
	})
	t.Run("shrinking", func(t *testing.T) {
		t.Parallel()
		f := summarizeSoak(samplesEvery(30, 50, 40, 39, 38), 30*time.Second)
		if math.Abs(f.GrowthMiB+2) > eps || math.Abs(f.GrowthPercent+5) > eps || f.SlopeMiBPerMin >= 0 {
			t.Errorf("got %+v; want −2 MiB, −5%%, a negative slope", f)
		}
		if f.MaxKiB != 50*1024 {
			t.Errorf("max = %d KiB; want the baseline's 51200 (max is over every sample)", f.MaxKiB)
		}
	})
	t.Run("ended before the first minute", func(t *testing.T) {
		t.Parallel()
		f := summarizeSoak(samplesEvery(10, 10, 12, 14), time.Minute)
		if f.FirstKiB != 0 || f.GrowthMiB != 0 || f.SlopeSamples != 0 {
			t.Errorf("got %+v; want no first-minute figure, growth or slope", f)
		}
		if f.EndKiB != 14*1024 || f.MaxKiB != 14*1024 || f.SettleSec != 60 {
			t.Errorf("got %+v; want end and max 14 MiB, settle 60 s", f)
		}
	})
	t.Run("only one sample after settling", func(t *testing.T) {
		t.Parallel()
		f := summarizeSoak(samplesEvery(10, 10, 12), 5*time.Second)
		if f.FirstKiB != 12*1024 || f.SlopeSamples != 0 || f.GrowthMiB != 0 {
			t.Errorf("got %+v; want first 12 MiB, no slope", f)
		}
	})
	t.Run("no samples", func(t *testing.T) {
		t.Parallel()
		if f := summarizeSoak(nil, time.Minute); f != (soakFigures{SettleSec: 60}) {
			t.Errorf("got %+v; want only the settle point", f)
		}
	})
}

func TestSoakResultJSON(t *testing.T) {
	t.Parallel()
	r := soakResult{Target: "portunus", Samples: samplesEvery(10, 1, 2), soakFigures: soakFigures{SlopeMiBPerMin: 0.5, FirstKiB: 2048}}
	data, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"target", "samples", "rss_first_kib", "rss_end_kib", "rss_max_kib", "growth_mib", "growth_percent", "slope_mib_per_min", "requests_per_sec", "requests_per_cpu_sec"} {
		if _, ok := m[key]; !ok {
			t.Errorf("JSON lacks %q: %s", key, data)
		}
	}
	sample, _ := m["samples"].([]any)[0].(map[string]any)
	for _, key := range []string{"at_sec", "rss_kib", "rss_anon_kib"} {
		if _, ok := sample[key]; !ok {
			t.Errorf("sample JSON lacks %q: %s", key, data)
		}
	}
}

func TestParseFlagsSoak(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		args    []string
		wantErr bool
		check   func(options) bool
	}{
		{name: "portunus only by default", args: []string{"-soak", "10m"}, check: func(o options) bool {
			return o.soak == 10*time.Minute && o.soakEvery == 10*time.Second && strings.Join(o.targets, ",") == "portunus" && o.warmup == 0
		}},
		{name: "explicit targets kept", args: []string{"-soak", "1m", "-targets", "nginx,portunus", "-soak-every", "5s"}, check: func(o options) bool {
			return strings.Join(o.targets, ",") == "nginx,portunus" && o.soakEvery == 5*time.Second
		}},
		{name: "no soak keeps every target", args: nil, check: func(o options) bool {
			return o.soak == 0 && len(o.targets) == 3
		}},
		{name: "sub-second soak", args: []string{"-soak", "500ms"}, wantErr: true},
		{name: "negative soak", args: []string{"-soak", "-1m"}, wantErr: true},
		{name: "sampling too often", args: []string{"-soak", "1m", "-soak-every", "100ms"}, wantErr: true},
		{name: "soak and idle", args: []string{"-soak", "1m", "-idle", "100"}, wantErr: true},
		{name: "soak and smoke", args: []string{"-soak", "1m", "-smoke"}, wantErr: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			o, err := parseFlags(tc.args)
			if tc.wantErr {
				if err == nil {
					t.Fatalf("parseFlags(%q) = nil error; want one", tc.args)
				}
				return
			}
			if err != nil {
				t.Fatalf("parseFlags(%q): %v", tc.args, err)
			}
			if !tc.check(o) {
				t.Errorf("parseFlags(%q) = %+v; not what the case expects", tc.args, o)
			}
		})
	}
}

func TestSoakBudgetCoversTheSoak(t *testing.T) {
	t.Parallel()
	for _, d := range []time.Duration{time.Minute, 10 * time.Minute, 3 * time.Hour} {
		o := options{soak: d, targets: []string{targetPortunus, targetNginx}}
		if got := o.budget(); got < 2*d+2*readyTimeout {
			t.Errorf("budget for a %s soak of 2 targets = %s; want at least %s", d, got, 2*d+2*readyTimeout)
		}
	}
}

// fakeWrk writes a shell script standing in for wrk: it sleeps for its -d
// (or forever with sleepForever), prints a canned wrk report, and on SIGINT
// prints the report followed by "interrupted". When touch is set it creates
// that file once it has started.
func fakeWrk(t *testing.T, dir string, sleepForever bool, touch string, exit int) string {
	t.Helper()
	report := filepath.Join(dir, "report.txt")
	if err := os.WriteFile(report, []byte(wrkKeepAlive), 0o600); err != nil {
		t.Fatal(err)
	}
	sleep := `"$d"`
	if sleepForever {
		sleep = "600"
	}
	script := `#!/bin/sh
d=1
for a; do case $a in -d*) d=${a#-d}; d=${d%s};; esac; done
trap 'kill $p 2>/dev/null; cat "` + report + `"; echo interrupted; exit 0' INT
[ -n "` + touch + `" ] && : > "` + touch + `"
[ ` + strconv.Itoa(exit) + ` -ne 0 ] && { echo failing >&2; exit ` + strconv.Itoa(exit) + `; }
sleep ` + sleep + ` & p=$!
wait $p
cat "` + report + `"
`
	path := filepath.Join(dir, "wrk")
	if err := os.WriteFile(path, []byte(script), 0o700); err != nil {
		t.Fatal(err)
	}
	return path
}

// soakFixture starts a stand-in target and upstream (plain processes; the
// soak only reads their /proc entries) under a supervisor that stops them
// when the test ends.
func soakFixture(t *testing.T, targetArgv ...string) (*supervisor, *target, *child) {
	t.Helper()
	dir := t.TempDir()
	sup := &supervisor{dir: dir}
	t.Cleanup(func() {
		for _, err := range sup.stopAll() {
			t.Error(err)
		}
	})
	up, err := sup.start("upstream", "", filepath.Join(dir, "upstream.log"), "sleep", "600")
	if err != nil {
		t.Fatal(err)
	}
	proc, err := sup.start("target", "", filepath.Join(dir, "target.log"), targetArgv...)
	if err != nil {
		t.Fatal(err)
	}
	return sup, &target{name: "fake", url: "http://127.0.0.1:1/", proc: proc}, up
}

func TestSoakOneCompletes(t *testing.T) {
	t.Parallel()
	sup, tg, up := soakFixture(t, "sleep", "600")
	wrk := fakeWrk(t, sup.dir, false, "", 0)
	o := options{soak: 2 * time.Second, soakEvery: 500 * time.Millisecond, threads: 1, conns: 2}
	r := soakOne(context.Background(), o, sup, tg, up, wrk, defaultClockTicks)
	if r.Error != "" {
		t.Fatalf("soakOne: %s", r.Error)
	}
	if len(r.Segments) != 1 || r.Segments[0].PlannedSec != 2 || strings.Contains(r.Segments[0].WrkOutput, "interrupted") {
		t.Fatalf("segments = %+v; want one uninterrupted 2 s run", r.Segments)
	}
	if r.Requests != 55516 || math.Abs(r.RequestsPerSec-26424.55) > 1e-6 || math.Abs(r.WrkSeconds-55516/26424.55) > 1e-9 {
		t.Errorf("requests %d in %v s = %v req/s; want wrk's 55516 at 26424.55 req/s", r.Requests, r.WrkSeconds, r.RequestsPerSec)
	}
	// The baseline before wrk and the end after it, at least.
	inOrder := slices.IsSortedFunc(r.Samples, func(a, b soakSample) int { return int(math.Copysign(1, a.AtSec-b.AtSec)) })
	if len(r.Samples) < 2 || !inOrder {
		t.Fatalf("samples = %+v; want a baseline and an end sample in time order", r.Samples)
	}
	for _, s := range r.Samples {
		if s.RSSAnonKiB > s.RSSKiB {
			t.Errorf("sample %+v: anonymous RSS above the total", s)
		}
	}
	if r.EndKiB == 0 || r.MaxKiB < r.EndKiB || r.FirstKiB == 0 {
		t.Errorf("figures = %+v; want non-zero first, end and max ≥ end", r.soakFigures)
	}
	if len(sup.children) != 2 {
		t.Errorf("supervisor holds %d children; want the 2 fixtures (wrk released)", len(sup.children))
	}
}

func TestSoakOneStopsWhenTheTargetDies(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	started := filepath.Join(dir, "wrk-started")
	// The target exits as soon as wrk has started; wrk would run 10 minutes.
	sup, tg, up := soakFixture(t, "sh", "-c", `while [ ! -e "`+started+`" ]; do sleep 0.05; done`)
	wrk := fakeWrk(t, dir, true, started, 0)
	o := options{soak: 10 * time.Minute, soakEvery: 10 * time.Second, threads: 1, conns: 2}
	r := soakOne(context.Background(), o, sup, tg, up, wrk, defaultClockTicks)
	if !strings.Contains(r.Error, "fake exited during the soak") {
		t.Fatalf("error = %q; want the target's exit", r.Error)
	}
	if len(r.Segments) != 1 || !strings.Contains(r.Segments[0].WrkOutput, "interrupted") {
		t.Fatalf("segments = %+v; want one run stopped by SIGINT", r.Segments)
	}
	if r.Requests != 55516 {
		t.Errorf("requests = %d; want the interrupted run's report read (55516)", r.Requests)
	}
	if len(r.Samples) == 0 {
		t.Errorf("no samples; want at least the baseline")
	}
}

func TestSoakOneReportsAWrkFailure(t *testing.T) {
	t.Parallel()
	sup, tg, up := soakFixture(t, "sleep", "600")
	wrk := fakeWrk(t, sup.dir, false, "", 3)
	o := options{soak: 5 * time.Second, soakEvery: time.Second, threads: 1, conns: 2}
	r := soakOne(context.Background(), o, sup, tg, up, wrk, defaultClockTicks)
	if !strings.Contains(r.Error, "wrk: exit status 3") || !strings.Contains(r.Error, "failing") {
		t.Fatalf("error = %q; want wrk's exit status and its output", r.Error)
	}
}

func TestSoakOneStopsOnCancel(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	started := filepath.Join(dir, "wrk-started")
	sup, tg, up := soakFixture(t, "sleep", "600")
	wrk := fakeWrk(t, dir, true, started, 0)
	ctx, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)
	go func() {
		// Cancel once wrk has started, as SIGTERM to the harness would.
		for ctx.Err() == nil {
			if _, err := os.Stat(started); err == nil {
				cancel(errTestStop)
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()
	o := options{soak: 10 * time.Minute, soakEvery: 10 * time.Second, threads: 1, conns: 2}
	r := soakOne(ctx, o, sup, tg, up, wrk, defaultClockTicks)
	if !strings.Contains(r.Error, errTestStop.Error()) {
		t.Fatalf("error = %q; want the cancellation cause", r.Error)
	}
	if len(r.Segments) != 1 || !strings.Contains(r.Segments[0].WrkOutput, "interrupted") {
		t.Fatalf("segments = %+v; want one run stopped by SIGINT", r.Segments)
	}
	if tg.proc.exited() {
		t.Errorf("the target was stopped; only wrk should be")
	}
}

var errTestStop = errors.New("stopped by the test")

func TestFormatSoakDuration(t *testing.T) {
	t.Parallel()
	for d, want := range map[time.Duration]string{
		time.Minute: "1m", 6 * time.Second: "6s", 90 * time.Second: "1m30s", time.Hour: "1h",
		90 * time.Minute: "1h30m", 10*time.Minute + 400*time.Millisecond: "10m",
	} {
		if got := formatSoakDuration(d); got != want {
			t.Errorf("formatSoakDuration(%s) = %q; want %q", d, got, want)
		}
	}
}

func TestPrintSoakTable(t *testing.T) {
	t.Parallel()
	settle := 6 * time.Second
	rep := &report{
		Settings: settings{Scenario: "soak-keepalive", Threads: 1, Connections: 50, DurationSec: 60, SoakEverySec: 10},
		Soak: []soakResult{
			{Target: "portunus", soakFigures: summarizeSoak(samplesEvery(10, 8, 20, 21, 22, 23, 24, 25), settle),
				Samples: samplesEvery(10, 8, 20, 21, 22, 23, 24, 25), RequestsPerSec: 40000, RequestsPerCPUSec: 41000,
				CPUSeconds: 58, WindowSec: 60},
			{Target: "nginx", soakFigures: summarizeSoak(samplesEvery(10, 5), settle), Samples: samplesEvery(10, 5)},
		},
		Errors: []string{"soak nginx: nginx exited during the soak"},
	}
	var b strings.Builder
	printSoakTable(&b, rep)
	out := b.String()
	for _, want := range []string{
		"wrk -t1 -c50 for 1m per target", "every 10s", "RSS@6s", "20.0 MiB", "25.0 MiB", "+5.0 MiB", "+25.0%",
		"+6.000 MiB/min", "40000", "41000", "97%", "error: soak nginx: nginx exited",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	var nginx string
	for line := range strings.Lines(out) {
		if strings.HasPrefix(strings.TrimSpace(line), "nginx ") {
			nginx = line
		}
	}
	if strings.Count(nginx, "–") != 4 {
		t.Errorf("nginx row %q: want – for the first-minute RSS, growth, growth%% and slope", nginx)
	}
}

func TestSoakSegmentRunSeconds(t *testing.T) {
	t.Parallel()
	// wrk prints 10 minutes as "10.00m"; req/s carries the exact run time.
	s := soakSegment{wrkResult: wrkResult{Requests: 6_003_000, RequestsPerSec: 10000, DurationSec: 600}}
	if got := s.runSeconds(); got != 600.3 {
		t.Errorf("runSeconds = %v; want 600.3 (requests ÷ req/s)", got)
	}
	s = soakSegment{wrkResult: wrkResult{DurationSec: 5}}
	if got := s.runSeconds(); got != 5 {
		t.Errorf("runSeconds without requests = %v; want the printed 5 s", got)
	}
}
