package main

import (
	"math"
	"os"
	"strings"
	"testing"
)

// wrkKeepAlive is real wrk 4.1 output (--latency, no errors).
const wrkKeepAlive = `Running 2s test @ http://127.0.0.1:33593/
  1 threads and 20 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   718.80us  482.81us   5.97ms   83.38%
    Req/Sec    26.57k     0.91k   28.47k    71.43%
  Latency Distribution
     50%  523.00us
     75%  840.00us
     90%    1.34ms
     99%    2.49ms
  55516 requests in 2.10s, 13.50MB read
Requests/sec:  26424.55
Transfer/sec:      6.43MB
`

// wrkWithErrors has the optional error lines and latencies in seconds.
const wrkWithErrors = `Running 10s test @ http://127.0.0.1:8080/
  1 threads and 1000 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   120.50ms  300.00ms    2.00s    95.00%
    Req/Sec     9.12k     1.00k   11.00k    70.00%
  Latency Distribution
     50%   40.12ms
     75%   80.00ms
     90%  300.00ms
     99%    1.50s
  90210 requests in 10.01s, 20.00MB read
  Socket errors: connect 12, read 3, write 0, timeout 7
  Non-2xx or 3xx responses: 42
Requests/sec:   9012.34
Transfer/sec:      2.00MB
`

func TestParseWrkOutput(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		in   string
		want wrkResult
	}{
		{
			name: "keep-alive run",
			in:   wrkKeepAlive,
			want: wrkResult{RequestsPerSec: 26424.55, P50us: 523, P75us: 840, P90us: 1340, P99us: 2490, Requests: 55516, DurationSec: 2.10},
		},
		{
			name: "errors and second latencies",
			in:   wrkWithErrors,
			want: wrkResult{
				RequestsPerSec: 9012.34, P50us: 40120, P75us: 80000, P90us: 300000, P99us: 1.5e6, Requests: 90210, DurationSec: 10.01,
				ErrConnect: 12, ErrRead: 3, ErrTimeout: 7, Non2xx3xx: 42,
			},
		},
		{
			name: "minute duration",
			in:   "  5 requests in 1.00m, 1KB read\n  50% 1.00ms\n  99% 2.00ms\nRequests/sec: 0.08\n",
			want: wrkResult{RequestsPerSec: 0.08, P50us: 1000, P99us: 2000, Requests: 5, DurationSec: 60},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := parseWrkOutput(tc.in)
			if err != nil {
				t.Fatalf("parseWrkOutput: %v", err)
			}
			if !closeEnough(got, tc.want) {
				t.Errorf("got %+v; want %+v", got, tc.want)
			}
		})
	}
}

// closeEnough compares results allowing float rounding in unit conversion.
func closeEnough(a, b wrkResult) bool {
	eq := func(x, y float64) bool { return math.Abs(x-y) <= 1e-6*math.Max(1, math.Abs(y)) }
	return eq(a.RequestsPerSec, b.RequestsPerSec) && eq(a.P50us, b.P50us) && eq(a.P75us, b.P75us) &&
		eq(a.P90us, b.P90us) && eq(a.P99us, b.P99us) && eq(a.DurationSec, b.DurationSec) &&
		a.Requests == b.Requests && a.ErrConnect == b.ErrConnect && a.ErrRead == b.ErrRead &&
		a.ErrWrite == b.ErrWrite && a.ErrTimeout == b.ErrTimeout && a.Non2xx3xx == b.Non2xx3xx
}

func TestParseWrkOutputRejects(t *testing.T) {
	t.Parallel()
	withoutLatency := strings.Join(slicesDeleteLines(wrkKeepAlive, "%  "), "")
	cases := []struct {
		name    string
		in      string
		wantErr string
	}{
		{name: "empty", in: "", wantErr: "Requests/sec"},
		{name: "no --latency", in: withoutLatency, wantErr: "99% latency"},
		{name: "connection refused", in: "unable to connect to 127.0.0.1:1 Connection refused\n", wantErr: "lacks"},
		{name: "negative rate", in: strings.Replace(wrkKeepAlive, "26424.55", "-1", 1), wantErr: "Requests/sec"},
		{name: "NaN rate", in: strings.Replace(wrkKeepAlive, "26424.55", "NaN", 1), wantErr: "Requests/sec"},
		{name: "bad unit", in: strings.Replace(wrkKeepAlive, "523.00us", "523.00zz", 1), wantErr: "50%"},
		{name: "bad socket errors", in: strings.Replace(wrkWithErrors, "read 3", "read three", 1), wantErr: "socket errors"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := parseWrkOutput(tc.in)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("error = %v; want one containing %q", err, tc.wantErr)
			}
		})
	}
}

// slicesDeleteLines returns s's lines without those containing substr.
func slicesDeleteLines(s, substr string) []string {
	var out []string
	for line := range strings.Lines(s) {
		if !strings.Contains(line, substr) {
			out = append(out, line)
		}
	}
	return out
}

func TestParseWrkTime(t *testing.T) {
	t.Parallel()
	cases := []struct {
		in, bare string
		want     float64
	}{
		{"620.12us", "us", 620.12},
		{"1.50ms", "us", 1500},
		{"2.00s", "us", 2e6},
		{"1.00m", "us", 60e6},
		{"1.00h", "us", 3600e6},
		{"10.00s", "s", 10e6},
		{"7", "us", 7},
		{"7", "s", 7e6},
	}
	for _, tc := range cases {
		got, err := parseWrkTime(tc.in, tc.bare)
		if err != nil || math.Abs(got-tc.want) > 1e-6*tc.want {
			t.Errorf("parseWrkTime(%q, %q) = %v, %v; want %v", tc.in, tc.bare, got, err, tc.want)
		}
	}
	for _, bad := range []string{"", "us", "-1ms", "1e400s", "0x10us", "Infs", "1.5zz"} {
		if got, err := parseWrkTime(bad, "us"); err == nil {
			t.Errorf("parseWrkTime(%q) = %v, nil; want an error", bad, got)
		}
	}
}

func TestWrkArgs(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name      string
		closeConn bool
		want      string
	}{
		{name: "keep-alive", want: "wrk -t1 -c50 -d3s --latency --timeout 10s http://127.0.0.1:1/"},
		{name: "close", closeConn: true, want: "wrk -t1 -c50 -d3s --latency --timeout 10s -H Connection: close http://127.0.0.1:1/"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			// 2.5 s rounds up: wrk's -d takes whole seconds.
			got := strings.Join(wrkArgs("wrk", 1, 50, 2500e6, tc.closeConn, nil, "http://127.0.0.1:1/"), " ")
			if got != tc.want {
				t.Errorf("got %q; want %q", got, tc.want)
			}
		})
	}
}

// parseCase is one input of a /proc parser and what it must give.
type parseCase[T comparable] struct {
	name    string
	in      string
	want    T
	wantErr bool
}

// runParseCases runs parse over cases, each as a parallel subtest.
func runParseCases[T comparable](t *testing.T, cases []parseCase[T], parse func([]byte) (T, error)) {
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := parse([]byte(tc.in))
			if tc.wantErr {
				if err == nil {
					t.Fatalf("got %+v, nil; want an error", got)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Errorf("got %+v, %v; want %+v", got, err, tc.want)
			}
		})
	}
}

func TestParseProcStat(t *testing.T) {
	t.Parallel()
	cases := []parseCase[procStat]{
		{
			name: "plain comm",
			in:   "20939 (nginx) S 20930 20930 7568 0 -1 4194304 97 0 0 0 1234 567 0 0 20 0 1 0 105825 3133440 380 18446744073709551615 0\n",
			want: procStat{PPID: 20930, UTime: 1234, STime: 567},
		},
		{
			name: "comm with spaces and parentheses",
			in:   "42 (my (odd) proc) R 1 42 42 0 -1 4194304 97 0 0 0 10 20 0 0 20 0 1 0 105825 3133440 380\n",
			want: procStat{PPID: 1, UTime: 10, STime: 20},
		},
		{name: "truncated", in: "42 (x) R 1 42 42 0", wantErr: true},
		{name: "no comm", in: "42 x R 1 42 42 0 -1 4194304 97 0 0 0 10 20", wantErr: true},
		{name: "non-numeric utime", in: "42 (x) R 1 42 42 0 -1 4194304 97 0 0 0 ten 20 0", wantErr: true},
		{name: "empty", in: "", wantErr: true},
	}
	runParseCases(t, cases, parseProcStat)
}

func TestParseStatusRSS(t *testing.T) {
	t.Parallel()
	cases := []parseCase[rssKiB]{
		{
			name: "split lines present",
			in: "Name:\tportunus\nState:\tS (sleeping)\nVmPeak:\t   90000 kB\nVmHWM:\t   31000 kB\nVmRSS:\t   30720 kB\n" +
				"RssAnon:\t    9216 kB\nRssFile:\t   21248 kB\nRssShmem:\t     256 kB\nVmData:\t   50000 kB\n",
			want: rssKiB{Total: 30720, Anon: 9216, File: 21248 + 256},
		},
		{
			// Kernels before 4.5 have VmRSS only: the split is 0, not an error.
			name: "no Rss lines",
			in:   "Name:\tnginx\nState:\tS (sleeping)\nVmPeak:\t   20000 kB\nVmRSS:\t   14812 kB\nVmData:\t    1000 kB\n",
			want: rssKiB{Total: 14812},
		},
		{name: "kernel thread", in: "Name:\tkthreadd\nState:\tS\n", wantErr: true},
		{name: "Rss lines without VmRSS", in: "RssAnon:\t 2000 kB\nRssFile:\t 1000 kB\n", wantErr: true},
		{name: "wrong unit", in: "VmRSS:\t 12 MB\n", wantErr: true},
		{name: "not a number", in: "VmRSS:\t lots kB\n", wantErr: true},
		{name: "malformed RssAnon", in: "VmRSS:\t 12 kB\nRssAnon:\t lots kB\n", wantErr: true},
	}
	runParseCases(t, cases, parseStatusRSS)
}

func TestProcReadersOnSelf(t *testing.T) {
	t.Parallel()
	// The live /proc files of this test process must parse; it has no
	// children, so its tree is itself.
	ticks, err := treeCPUTicks(os.Getpid())
	if err != nil {
		t.Fatalf("treeCPUTicks(self): %v", err)
	}
	rss, err := treeRSSKiB(os.Getpid())
	if err != nil || rss.Total == 0 {
		t.Fatalf("treeRSSKiB(self) = %+v, %v; want a total > 0", rss, err)
	}
	// The kernel computes VmRSS as RssAnon + RssFile + RssShmem from the
	// same counters, so where the split exists it adds up exactly.
	if rss.Anon > 0 && rss.Anon+rss.File != rss.Total {
		t.Errorf("treeRSSKiB(self) = %+v; want anon + file = total", rss)
	}
	_ = ticks // may legitimately be 0 right after start
}

func TestMedian(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		in   []float64
		want float64
	}{
		{"empty", nil, 0},
		{"one", []float64{7}, 7},
		{"odd unsorted", []float64{9, 1, 5}, 5},
		{"even", []float64{4, 1, 3, 2}, 2.5},
	}
	for _, tc := range cases {
		if got := median(tc.in); got != tc.want {
			t.Errorf("%s: median(%v) = %v; want %v", tc.name, tc.in, got, tc.want)
		}
	}
}

func TestSummarizeAndRatios(t *testing.T) {
	t.Parallel()
	run := func(target string, round int, rps float64, errText string) runResult {
		return runResult{Round: round, Target: target, Error: errText,
			wrkResult:         wrkResult{RequestsPerSec: rps, P50us: rps / 100, P99us: rps / 10, DurationSec: 10},
			RequestsPerCPUSec: rps * 2, RSSKiB: uint64(rps), RSSAnonKiB: uint64(rps / 4), RSSFileKiB: uint64(rps - rps/4),
			CPUSeconds: 5, OtherCPUSeconds: 1, WindowSec: 10}
	}
	runs := []runResult{
		run("direct", 1, 1000, ""), run("direct", 2, 3000, ""), run("direct", 3, 2000, ""),
		run("nginx", 1, 800, ""), run("nginx", 2, 1, "boom"), run("nginx", 3, 600, ""),
		run("portunus", 1, 400, ""), run("portunus", 2, 500, ""), run("portunus", 3, 600, ""),
	}
	rows := summarize([]string{"direct", "nginx", "portunus"}, runs)
	if len(rows) != 3 {
		t.Fatalf("got %d rows; want 3", len(rows))
	}
	if got := rows[1]; got.Rounds != 2 || got.RequestsPerSec != 700 || got.CPUPercent != 50 || got.OtherCPUPercent != 10 {
		t.Errorf("nginx row = %+v; want 2 rounds, median 700 req/s (failed round excluded), 50%% CPU, 10%% other", got)
	}
	if got := rows[1]; got.RSSKiB != 700 || got.RSSAnonKiB != 175 || got.RSSFileKiB != 525 {
		t.Errorf("nginx row RSS = %v, anon %v, file %v KiB; want medians 700, 175, 525", got.RSSKiB, got.RSSAnonKiB, got.RSSFileKiB)
	}
	rs := ratios(rows)
	if len(rs) != 2 || rs[0].Name != "portunus/nginx" || rs[1].Name != "portunus/direct" {
		t.Fatalf("ratios = %+v; want portunus/nginx then portunus/direct", rs)
	}
	if got, want := rs[0].RequestsPerSec, 500.0/700; math.Abs(got-want) > 1e-9 {
		t.Errorf("portunus/nginx req/s = %v; want %v", got, want)
	}
	if got, want := rs[1].RequestsPerSec, 0.25; math.Abs(got-want) > 1e-9 {
		t.Errorf("portunus/direct req/s = %v; want %v", got, want)
	}
	if got, want := rs[0].RSSAnon, 125.0/175; math.Abs(got-want) > 1e-9 {
		t.Errorf("portunus/nginx anon RSS = %v; want %v", got, want)
	}
	if got, want := rs[0].RSS, 500.0/700; math.Abs(got-want) > 1e-9 {
		t.Errorf("portunus/nginx RSS = %v; want %v (total RSS, not the split)", got, want)
	}
	if got := ratios(rows[:2]); got != nil {
		t.Errorf("ratios without portunus = %+v; want none", got)
	}
	// Next to portunus-plain (a policy's cost in one run): a third ratio.
	plain := summarize([]string{"portunus", "portunus-plain"}, []runResult{
		run("portunus", 1, 450, ""), run("portunus-plain", 1, 500, ""),
	})
	if rs := ratios(plain); len(rs) != 1 || rs[0].Name != "portunus/portunus-plain" || math.Abs(rs[0].RequestsPerSec-0.9) > 1e-9 {
		t.Errorf("ratios with portunus-plain = %+v; want portunus/portunus-plain at 0.9 req/s", rs)
	}

	// The load side: wrk and the upstream behind a proxy, wrk alone for
	// direct (whose upstream is the measured process).
	load := func(target string, wrkCPU, upCPU float64, requests int64) runResult {
		r := run(target, 1, 1000, "")
		r.WrkCPUSeconds, r.UpstreamCPUSeconds, r.Requests = wrkCPU, upCPU, requests
		return r
	}
	rows = summarize([]string{"direct", "portunus"}, []runResult{
		load("direct", 2, 5, 100000), load("portunus", 3, 6, 300000),
	})
	if got := rows[0]; got.LoadCPUPercent != 20 || got.LoadMicrosPerRequest != 20 {
		t.Errorf("direct load = %v%%, %v µs/req; want 20%% (wrk alone over 10 s), 20 µs", got.LoadCPUPercent, got.LoadMicrosPerRequest)
	}
	if got := rows[1]; got.LoadCPUPercent != 90 || got.LoadMicrosPerRequest != 30 {
		t.Errorf("portunus load = %v%%, %v µs/req; want 90%% (wrk and upstream over 10 s), 30 µs", got.LoadCPUPercent, got.LoadMicrosPerRequest)
	}

	// The measured process's user and kernel time per request.
	r := run("portunus", 1, 1000, "")
	r.Requests, r.UserCPUSeconds, r.SystemCPUSeconds = 250000, 1.5, 3.5
	rows = summarize([]string{"portunus"}, []runResult{r})
	if got := rows[0]; got.UserMicrosPerRequest != 6 || got.SystemMicrosPerRequest != 14 {
		t.Errorf("user, sys = %v, %v µs/req; want 6, 14", got.UserMicrosPerRequest, got.SystemMicrosPerRequest)
	}
}

func TestPrintTableAnonColumn(t *testing.T) {
	t.Parallel()
	rep := &report{
		Settings: settings{Scenario: "keepalive", Threads: 1, Connections: 50, DurationSec: 10, Rounds: 3},
		Summary: []summaryRow{
			{Target: "nginx", Rounds: 3, RequestsPerSec: 1000, RSSKiB: 8 * 1024, RSSAnonKiB: 2 * 1024, RSSFileKiB: 6 * 1024},
			{Target: "portunus", Rounds: 3, RequestsPerSec: 900, RSSKiB: 32 * 1024, RSSAnonKiB: 11 * 1024, RSSFileKiB: 21 * 1024},
			{Target: "direct", Rounds: 3, RequestsPerSec: 2000, RSSKiB: 16 * 1024}, // no RssAnon line
		},
	}
	rep.Ratios = ratios(rep.Summary)
	var b strings.Builder
	printTable(&b, rep)
	out := b.String()
	lines := map[string][]string{}
	for line := range strings.Lines(out) {
		if f := strings.Fields(line); len(f) > 0 {
			lines[f[0]] = f
		}
	}
	if got, want := strings.Join(lines["target"], " "), "target req/s p50 p99 req/CPU-s user-µs sys-µs RSS anon CPU% other% load% load-µs rounds"; got != want {
		t.Errorf("header = %q; want %q\n%s", got, want, out)
	}
	// Fields: target req/s p50 p99 req/CPU-s user-µs sys-µs RSS MiB anon MiB ...
	if got := strings.Join(lines["portunus"][7:11], " "); got != "32.0 MiB 11.0 MiB" {
		t.Errorf("portunus RSS and anon = %q; want 32.0 MiB 11.0 MiB\n%s", got, out)
	}
	if got := strings.Join(lines["direct"][7:10], " "); got != "16.0 MiB –" {
		t.Errorf("direct RSS and anon = %q; want 16.0 MiB –\n%s", got, out)
	}
	// Ratio row: name req/s p50 p99 req/CPU-s RSS anon.
	if got := strings.Join(lines["portunus/nginx"][5:], " "); got != "4.00x 5.50x" {
		t.Errorf("portunus/nginx RSS and anon ratios = %q; want 4.00x 5.50x\n%s", got, out)
	}
	if got := strings.Join(lines["portunus/direct"][5:], " "); got != "2.00x –" {
		t.Errorf("portunus/direct RSS and anon ratios = %q; want 2.00x –\n%s", got, out)
	}
}

func TestNginxConfig(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		asRoot bool
	}{{"as root", true}, {"as user", false}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			conf := nginxConfig("/tmp/x", 8080, "127.0.0.1:9000", tc.asRoot)
			for _, want := range []string{
				"worker_processes 1;", "daemon off;", "pid /tmp/x/nginx.pid;", "access_log off;",
				"server 127.0.0.1:9000;", "keepalive 256;", "proxy_http_version 1.1;",
				`proxy_set_header Connection "";`, "listen 127.0.0.1:8080 ", "proxy_temp_path /tmp/x/proxy;",
			} {
				if !strings.Contains(conf, want) {
					t.Errorf("config lacks %q:\n%s", want, conf)
				}
			}
			if got := strings.Contains(conf, "user root;"); got != tc.asRoot {
				t.Errorf("has user root = %v; want %v", got, tc.asRoot)
			}
			if strings.Count(conf, "{") != strings.Count(conf, "}") {
				t.Errorf("unbalanced braces:\n%s", conf)
			}
		})
	}
}

func TestPortunusConfig(t *testing.T) {
	t.Parallel()
	got := portunusConfig(8080, "127.0.0.1:9000", portunusExtra{})
	want := `listeners: [{ address: "127.0.0.1:8080" }]
observability: { access_log: { path: "off" } }
upstreams: [{ name: bench, targets: [{ url: "http://127.0.0.1:9000" }] }]
routes: [{ name: plain, match: { path_prefix: / }, upstream: bench }]
`
	if got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}

func TestParseFlags(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		args    []string
		wantErr bool
		check   func(options) bool
	}{
		{name: "defaults", check: func(o options) bool {
			return o.rounds == 3 && o.conns == 50 && o.duration.Seconds() == 10 && len(o.targets) == 3 && o.pinMode == "auto"
		}},
		{name: "smoke shortens", args: []string{"-smoke", "-rounds", "5"}, check: func(o options) bool {
			return o.rounds == 1 && o.duration.Seconds() == 2 && o.warmup == 0
		}},
		{name: "targets deduplicated", args: []string{"-targets", "nginx,direct,nginx"}, check: func(o options) bool {
			return strings.Join(o.targets, ",") == "nginx,direct"
		}},
		{name: "unknown target", args: []string{"-targets", "envoy"}, wantErr: true},
		{name: "zero rounds", args: []string{"-rounds", "0"}, wantErr: true},
		{name: "fewer connections than threads", args: []string{"-t", "4", "-c", "2"}, wantErr: true},
		{name: "sub-second duration", args: []string{"-d", "500ms"}, wantErr: true},
		{name: "stray argument", args: []string{"extra"}, wantErr: true},
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

func FuzzParseWrkOutput(f *testing.F) {
	f.Add(wrkKeepAlive)
	f.Add(wrkWithErrors)
	f.Add("")
	f.Add("Requests/sec: 1e9999\n")
	f.Add("  Socket errors: connect , read 1\n")
	f.Fuzz(func(t *testing.T, in string) {
		r, err := parseWrkOutput(in)
		if err != nil {
			return
		}
		for _, v := range []float64{r.RequestsPerSec, r.P50us, r.P75us, r.P90us, r.P99us, r.DurationSec} {
			if v < 0 || math.IsNaN(v) || math.IsInf(v, 0) {
				t.Fatalf("accepted output yields out-of-range figure %v in %+v", v, r)
			}
		}
		if r.Requests < 0 || r.Non2xx3xx < 0 {
			t.Fatalf("negative count in %+v", r)
		}
	})
}

func FuzzParseProcStat(f *testing.F) {
	f.Add("20939 (nginx) S 20930 20930 7568 0 -1 4194304 97 0 0 0 1234 567 0 0 20 0 1 0 105825")
	f.Add("42 (a) b) R 1 42 42 0 -1 4194304 97 0 0 0 10 20")
	f.Add(")(")
	f.Fuzz(func(t *testing.T, in string) {
		_, _ = parseProcStat([]byte(in)) // must not panic
		_, _ = parseStatusRSS([]byte(in))
	})
}

func TestNoisy(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name  string
		other []float64
		want  bool
	}{
		{"quiet", []float64{0, 3, 9.9}, false},
		{"one noisy target", []float64{2, 35}, true},
		{"no rows", nil, false},
	}
	for _, tc := range cases {
		var rows []summaryRow
		for _, o := range tc.other {
			rows = append(rows, summaryRow{OtherCPUPercent: o})
		}
		if got := noisy(rows); got != tc.want {
			t.Errorf("%s: noisy = %v; want %v", tc.name, got, tc.want)
		}
	}
}

func TestParseCPUBusy(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		in      string
		want    uint64
		wantErr bool
	}{
		{
			name: "aggregate line first",
			in:   "cpu  100 5 50 1000 20 3 2 1 0 0\ncpu0 50 2 25 500 10 1 1 0 0 0\n",
			want: 100 + 5 + 50 + 3 + 2 + 1,
		},
		{name: "per-cpu line only", in: "cpu0 50 2 25 500 10 1 1 0 0 0\n", wantErr: true},
		{name: "too few counters", in: "cpu  1 2 3\n", wantErr: true},
		{name: "garbage counter", in: "cpu  1 2 x 4 5 6 7 8\n", wantErr: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := parseCPUBusy([]byte(tc.in))
			if (err != nil) != tc.wantErr || got != tc.want {
				t.Errorf("parseCPUBusy = %d, %v; want %d (error %v)", got, err, tc.want, tc.wantErr)
			}
		})
	}
}

// portunus-plain gets the top-level additions but none of the route's.
func TestPortunusExtraForTarget(t *testing.T) {
	x := portunusExtra{route: "auth: [api_key]", top: "consumers: []", headers: []string{"X-API-Key: k"}}
	if got := x.forTarget(targetPortunus); got.route != x.route || got.top != x.top {
		t.Errorf("portunus gets %+v; want all of %+v", got, x)
	}
	got := x.forTarget(targetPortunusPlain)
	if got.route != "" || got.top != x.top || len(got.headers) != 1 {
		t.Errorf("portunus-plain gets %+v; want the top-level additions and headers, no route entries", got)
	}
	if x.route == "" {
		t.Error("forTarget changed its receiver's route")
	}
}

func TestPortunusConfigExtra(t *testing.T) {
	t.Parallel()
	got := portunusConfig(8080, "127.0.0.1:9000", portunusExtra{route: "rate_limits: [{ limit: 9, window: 1s }]", top: "store: { backend: memory }"})
	for _, want := range []string{
		`routes: [{ name: plain, match: { path_prefix: / }, upstream: bench, rate_limits: [{ limit: 9, window: 1s }] }]`,
		"store: { backend: memory }\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("config lacks %q:\n%s", want, got)
		}
	}
}
