package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// report is the whole raw run, written as JSON so that later runs can be
// compared figure by figure.
type report struct {
	Harness    string       `json:"harness"`
	StartedAt  time.Time    `json:"started_at"`
	FinishedAt time.Time    `json:"finished_at"`
	Commit     string       `json:"commit"`
	Command    []string     `json:"command"`
	Settings   settings     `json:"settings"`
	Machine    machine      `json:"machine"`
	Pinning    pinning      `json:"pinning"`
	Targets    []targetInfo `json:"targets"`
	Runs       []runResult  `json:"runs"`
	Summary    []summaryRow `json:"summary"`
	Ratios     []ratioRow   `json:"ratios"`
	Soak       []soakResult `json:"soak,omitempty"` // -soak (soak.go)
	Errors     []string     `json:"errors,omitempty"`
}

type settings struct {
	Scenario    string  `json:"scenario"` // keepalive | close
	Connections int     `json:"connections"`
	Threads     int     `json:"threads"`
	DurationSec int     `json:"duration_sec"`
	Rounds      int     `json:"rounds"`
	WarmupSec   float64 `json:"warmup_sec"`
	Smoke       bool    `json:"smoke"`
	// SoakEverySec is the RSS sampling interval of a soak; DurationSec is
	// then the soak's length.
	SoakEverySec float64 `json:"soak_every_sec,omitempty"`
}

type machine struct {
	CPUModel       string `json:"cpu_model"`
	CPUs           int    `json:"cpus"`
	Kernel         string `json:"kernel"`
	GoToolchain    string `json:"go_toolchain"`
	HarnessGo      string `json:"harness_go"`
	Wrk            string `json:"wrk"`
	Nginx          string `json:"nginx,omitempty"`
	Portunus       string `json:"portunus,omitempty"`
	ClockTicks     int    `json:"clock_ticks"`
	ClockTicksFrom string `json:"clock_ticks_from"`
	// LoadAvgStart and LoadAvgEnd are /proc/loadavg before and after: a
	// busy machine makes the figures unreliable, and this shows it.
	LoadAvgStart string `json:"loadavg_start"`
	LoadAvgEnd   string `json:"loadavg_end,omitempty"`
}

type targetInfo struct {
	Name    string `json:"name"`
	URL     string `json:"url,omitempty"`
	PID     int    `json:"pid,omitempty"`
	Skipped string `json:"skipped,omitempty"` // why the target was not run
}

// runResult is one wrk run against one target in one round.
type runResult struct {
	Round  int    `json:"round"`
	Target string `json:"target"`
	wrkResult
	CPUSeconds         float64 `json:"cpu_seconds"`          // measured process tree, utime+stime
	UserCPUSeconds     float64 `json:"user_cpu_seconds"`     // its utime part
	SystemCPUSeconds   float64 `json:"system_cpu_seconds"`   // its stime part
	RequestsPerCPUSec  float64 `json:"requests_per_cpu_sec"` // requests / cpu_seconds
	RSSKiB             uint64  `json:"rss_kib"`              // measured process tree, after the run
	RSSAnonKiB         uint64  `json:"rss_anon_kib"`         // part of rss_kib: heap, stacks, buffers (0 without RssAnon)
	RSSFileKiB         uint64  `json:"rss_file_kib"`         // part of rss_kib: the binary, libraries, shared memory
	UpstreamCPUSeconds float64 `json:"upstream_cpu_seconds"`
	WrkCPUSeconds      float64 `json:"wrk_cpu_seconds"`
	// MachineBusyCPUSeconds is all CPUs' busy time during the run (from
	// /proc/stat); OtherCPUSeconds is what remains after subtracting the
	// proxy, the upstream and wrk: other work competing for the machine.
	MachineBusyCPUSeconds float64 `json:"machine_busy_cpu_seconds"`
	OtherCPUSeconds       float64 `json:"other_cpu_seconds"`
	WindowSec             float64 `json:"window_sec"` // wall time the CPU figures cover (wrk start to exit)
	Error                 string  `json:"error,omitempty"`
	WrkOutput             string  `json:"wrk_output,omitempty"`
}

func (r runResult) ok() bool { return r.Error == "" }

// loadCPUSeconds is the load side's CPU time over the run: wrk's and,
// behind a proxy, the upstream's (for direct the upstream is the measured
// process, counted in CPUSeconds).
func (r runResult) loadCPUSeconds() float64 {
	if r.Target == targetDirect {
		return r.WrkCPUSeconds
	}
	return r.WrkCPUSeconds + r.UpstreamCPUSeconds
}

// otherCPUPercent is OtherCPUSeconds over the measured window (100 = one
// whole CPU taken by other work).
func (r runResult) otherCPUPercent() float64 {
	if r.WindowSec <= 0 {
		return 0
	}
	return 100 * r.OtherCPUSeconds / r.WindowSec
}

// summaryRow holds the median over a target's successful rounds.
type summaryRow struct {
	Target            string  `json:"target"`
	Rounds            int     `json:"rounds"` // successful rounds the medians are over
	RequestsPerSec    float64 `json:"requests_per_sec"`
	P50us             float64 `json:"p50_us"`
	P99us             float64 `json:"p99_us"`
	RequestsPerCPUSec float64 `json:"requests_per_cpu_sec"`
	RSSKiB            float64 `json:"rss_kib"`
	RSSAnonKiB        float64 `json:"rss_anon_kib"`
	RSSFileKiB        float64 `json:"rss_file_kib"`
	CPUPercent        float64 `json:"cpu_percent"` // measured tree's CPU time / window; 100 = one CPU busy
	OtherCPUPercent   float64 `json:"other_cpu_percent"`
	// LoadCPUPercent is the load side's CPU time (loadCPUSeconds) over
	// the window and LoadMicrosPerRequest the same per request: with the
	// load side pinned to one CPU, near 100 means req/s is bounded by it.
	LoadCPUPercent       float64 `json:"load_cpu_percent"`
	LoadMicrosPerRequest float64 `json:"load_us_per_request"`
	// UserMicrosPerRequest and SystemMicrosPerRequest are the measured
	// tree's CPU per request in user and in kernel mode: which side a gap
	// in req/CPU-s is on.
	UserMicrosPerRequest   float64 `json:"user_us_per_request"`
	SystemMicrosPerRequest float64 `json:"system_us_per_request"`
}

// ratioRow is one target's medians divided by another's.
type ratioRow struct {
	Name              string  `json:"name"` // e.g. "portunus/nginx"
	RequestsPerSec    float64 `json:"requests_per_sec"`
	P50               float64 `json:"p50"`
	P99               float64 `json:"p99"`
	RequestsPerCPUSec float64 `json:"requests_per_cpu_sec"`
	RSS               float64 `json:"rss"`
	RSSAnon           float64 `json:"rss_anon"`
}

// median of xs (mean of the middle two for an even count); 0 when empty.
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// summarize computes per-target medians over successful rounds, in the
// order of names, skipping targets without any.
func summarize(names []string, runs []runResult) []summaryRow {
	var rows []summaryRow
	for _, name := range names {
		var rps, p50, p99, perCPU, rss, rssAnon, rssFile, cpuPct, otherPct, loadPct, loadUs, userUs, sysUs []float64
		for _, r := range runs {
			if r.Target != name || !r.ok() {
				continue
			}
			rps = append(rps, r.RequestsPerSec)
			p50 = append(p50, r.P50us)
			p99 = append(p99, r.P99us)
			perCPU = append(perCPU, r.RequestsPerCPUSec)
			rss = append(rss, float64(r.RSSKiB))
			rssAnon = append(rssAnon, float64(r.RSSAnonKiB))
			rssFile = append(rssFile, float64(r.RSSFileKiB))
			if r.WindowSec > 0 {
				cpuPct = append(cpuPct, 100*r.CPUSeconds/r.WindowSec)
				otherPct = append(otherPct, r.otherCPUPercent())
				loadPct = append(loadPct, 100*r.loadCPUSeconds()/r.WindowSec)
			}
			if r.Requests > 0 {
				loadUs = append(loadUs, 1e6*r.loadCPUSeconds()/float64(r.Requests))
				userUs = append(userUs, 1e6*r.UserCPUSeconds/float64(r.Requests))
				sysUs = append(sysUs, 1e6*r.SystemCPUSeconds/float64(r.Requests))
			}
		}
		if len(rps) == 0 {
			continue
		}
		rows = append(rows, summaryRow{
			Target: name, Rounds: len(rps),
			RequestsPerSec: median(rps), P50us: median(p50), P99us: median(p99),
			RequestsPerCPUSec: median(perCPU), RSSKiB: median(rss), CPUPercent: median(cpuPct),
			RSSAnonKiB: median(rssAnon), RSSFileKiB: median(rssFile),
			OtherCPUPercent: median(otherPct),
			LoadCPUPercent:  median(loadPct), LoadMicrosPerRequest: median(loadUs),
			UserMicrosPerRequest: median(userUs), SystemMicrosPerRequest: median(sysUs),
		})
	}
	return rows
}

// ratios returns portunus/nginx, portunus/direct and
// portunus/portunus-plain where both sides ran.
func ratios(rows []summaryRow) []ratioRow {
	find := func(name string) (summaryRow, bool) {
		i := slices.IndexFunc(rows, func(r summaryRow) bool { return r.Target == name })
		if i < 0 {
			return summaryRow{}, false
		}
		return rows[i], true
	}
	div := func(a, b float64) float64 {
		if b == 0 {
			return 0
		}
		return a / b
	}
	num, ok := find(targetPortunus)
	if !ok {
		return nil
	}
	var out []ratioRow
	for _, base := range []string{targetNginx, targetDirect, targetPortunusPlain} {
		den, ok := find(base)
		if !ok {
			continue
		}
		out = append(out, ratioRow{
			Name:              targetPortunus + "/" + base,
			RequestsPerSec:    div(num.RequestsPerSec, den.RequestsPerSec),
			P50:               div(num.P50us, den.P50us),
			P99:               div(num.P99us, den.P99us),
			RequestsPerCPUSec: div(num.RequestsPerCPUSec, den.RequestsPerCPUSec),
			RSS:               div(num.RSSKiB, den.RSSKiB),
			RSSAnon:           div(num.RSSAnonKiB, den.RSSAnonKiB),
		})
	}
	return out
}

// formatLatency prints microseconds in the unit a reader expects.
func formatLatency(us float64) string {
	switch {
	case us >= 1e6:
		return fmt.Sprintf("%.2fs", us/1e6)
	case us >= 1e3:
		return fmt.Sprintf("%.2fms", us/1e3)
	default:
		return fmt.Sprintf("%.0fµs", us)
	}
}

// printTable writes the median table and the ratios.
func printTable(w io.Writer, rep *report) {
	s := rep.Settings
	fmt.Fprintf(w, "\nscenario %s: wrk -t%d -c%d -d%ds, %d round(s), median per target\n",
		s.Scenario, s.Threads, s.Connections, s.DurationSec, s.Rounds)
	fmt.Fprintf(w, "pinning: %s\n", rep.Pinning)
	fmt.Fprintf(w, "load average: %s at start, %s at end\n\n", rep.Machine.LoadAvgStart, rep.Machine.LoadAvgEnd)
	// A kernel without RssAnon leaves the anonymous figures 0: shown as –.
	anon := func(kib float64) string {
		if kib == 0 {
			return "–"
		}
		return fmt.Sprintf("%.1f MiB", kib/1024)
	}
	anonRatio := func(x float64) string {
		if x == 0 {
			return "–"
		}
		return fmt.Sprintf("%.2fx", x)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "target\treq/s\tp50\tp99\treq/CPU-s\tuser-µs\tsys-µs\tRSS\tanon\tCPU%\tother%\tload%\tload-µs\trounds\t")
	for _, r := range rep.Summary {
		fmt.Fprintf(tw, "%s\t%.0f\t%s\t%s\t%.0f\t%.1f\t%.1f\t%.1f MiB\t%s\t%.0f%%\t%.0f%%\t%.0f%%\t%.1f\t%d\t\n", r.Target, r.RequestsPerSec,
			formatLatency(r.P50us), formatLatency(r.P99us), r.RequestsPerCPUSec, r.UserMicrosPerRequest, r.SystemMicrosPerRequest,
			r.RSSKiB/1024, anon(r.RSSAnonKiB), r.CPUPercent, r.OtherCPUPercent, r.LoadCPUPercent, r.LoadMicrosPerRequest, r.Rounds)
	}
	for _, r := range rep.Ratios {
		fmt.Fprintf(tw, "%s\t%.2fx\t%.2fx\t%.2fx\t%.2fx\t\t\t%.2fx\t%s\t\t\t\t\t\t\n", r.Name, r.RequestsPerSec, r.P50, r.P99, r.RequestsPerCPUSec, r.RSS, anonRatio(r.RSSAnon))
	}
	_ = tw.Flush()
	fmt.Fprintln(w, "RSS = the measured process tree's resident memory after the run; anon = its anonymous part (heap, stacks,")
	fmt.Fprintln(w, "buffers: what grows per connection); the rest is file-backed (the binary's code and data, libraries, shared memory)")
	fmt.Fprintln(w, "user-µs, sys-µs = the measured process tree's CPU time per request in user and in kernel mode;")
	fmt.Fprintln(w, "CPU% = the measured process tree's CPU time over the run (the proxy's; for direct, the upstream's);")
	fmt.Fprintln(w, "other% = CPU taken by other work on the machine during the run (0 on a quiet box; 100 = one CPU)")
	fmt.Fprintln(w, "load% = the load side's CPU time over the run (wrk and the upstream; for direct, wrk): near 100 with the load side")
	fmt.Fprintln(w, "on one CPU, req/s is bounded by it; load-µs = that CPU time per request (µs), higher behind a slower proxy")
	if noisy(rep.Summary) {
		fmt.Fprintf(w, "warning: other work took over %.0f%% of a CPU during some runs; treat the figures as noisy\n", noisyOtherPercent)
	}
	for _, e := range rep.Errors {
		fmt.Fprintln(w, "error:", e)
	}
}

// writeJSON writes the report to path, creating its directory.
func writeJSON(path string, rep *report) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	data, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(data, '\n'), 0o644)
}

// describeMachine collects what makes figures comparable across runs.
func describeMachine(ctx context.Context, goBin, wrkBin, nginxBin string) machine {
	m := machine{
		CPUModel:    cpuModel(),
		CPUs:        runtime.NumCPU(),
		HarnessGo:   runtime.Version(),
		GoToolchain: toolVersion(ctx, goBin, "version"),
		Wrk:         toolVersion(ctx, wrkBin, "-v"),
	}
	if data, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(data))
	}
	if nginxBin != "" {
		m.Nginx = toolVersion(ctx, nginxBin, "-v")
	}
	m.ClockTicks, m.ClockTicksFrom = clockTicks(ctx)
	m.LoadAvgStart = loadAvg()
	return m
}

// loadAvg returns the first three fields of /proc/loadavg.
func loadAvg() string {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(data))
	return strings.Join(f[:min(3, len(f))], " ")
}

// noisyOtherPercent is the other% above which a summary is flagged: the
// load average cannot serve, as the benchmark itself keeps it near the CPU
// count.
const noisyOtherPercent = 10.0

// noisy reports whether any target's median other% exceeds the threshold.
func noisy(rows []summaryRow) bool {
	for _, r := range rows {
		if r.OtherCPUPercent > noisyOtherPercent {
			return true
		}
	}
	return false
}

// cpuModel reads the first model name from /proc/cpuinfo.
func cpuModel() string {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return "unknown"
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		key, val, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		switch strings.TrimSpace(key) {
		case "model name", "Hardware", "cpu model", "uarch":
			return strings.TrimSpace(val)
		}
	}
	return "unknown"
}

// gitCommit returns HEAD of repo, or a note saying why there is none.
func gitCommit(ctx context.Context, repo string) string {
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	cmd := exec.CommandContext(cctx, "git", "rev-parse", "HEAD")
	cmd.Dir = repo
	out, err := cmd.Output()
	if err != nil {
		return "unknown (git rev-parse HEAD failed)"
	}
	commit := strings.TrimSpace(string(out))
	cmd = exec.CommandContext(cctx, "git", "status", "--porcelain", "--untracked-files=no")
	cmd.Dir = repo
	if out, err := cmd.Output(); err == nil && len(strings.TrimSpace(string(out))) > 0 {
		commit += "-dirty"
	}
	return commit
}
