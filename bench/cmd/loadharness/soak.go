package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"
)

// Soak mode (-soak DURATION): instead of rounds, each target gets one long
// wrk run with the keep-alive scenario's settings (chained runs beyond
// soakSegmentMax) while the harness samples the RSS of the target's process
// tree every -soak-every. The figures show whether memory stays flat under
// steady load. The harness reports them and does not judge them: the exit
// status reflects failures only (wrk failing, the target or the upstream
// dying, /proc unreadable).

const (
	// soakSegmentMax is the longest single wrk run. wrk's -d has no
	// practical limit, but wrk prints its report only when it exits, so a
	// crash of wrk loses at most this much of the request figures.
	soakSegmentMax = time.Hour
	// soakSettleMax is where the "after the first minute" figure is taken;
	// runs shorter than ten minutes use 10% of the run instead.
	soakSettleMax = time.Minute
	// wrkExitSlack is how long a wrk run may take beyond its -d (start-up,
	// connecting, printing) before the harness interrupts it.
	wrkExitSlack = 30 * time.Second
	// soakMinEvery is the shortest -soak-every: each sample scans /proc.
	soakMinEvery = time.Second
)

// soakSample is one RSS reading of the measured process tree.
type soakSample struct {
	AtSec      float64 `json:"at_sec"` // since the soak of this target started (the first sample is taken just before wrk starts)
	RSSKiB     uint64  `json:"rss_kib"`
	RSSAnonKiB uint64  `json:"rss_anon_kib"` // anonymous part of rss_kib (rssKiB)
}

// soakFigures summarise a target's samples. FirstKiB is 0 when no sample
// was taken at or after the settle point (the soak ended early); the growth
// and slope are then 0 too.
type soakFigures struct {
	SettleSec      float64 `json:"settle_sec"`    // the "first minute": min(60 s, 10% of the soak)
	FirstAtSec     float64 `json:"first_at_sec"`  // time of the first sample at or after settle_sec
	FirstKiB       uint64  `json:"rss_first_kib"` // RSS of that sample
	EndKiB         uint64  `json:"rss_end_kib"`   // RSS of the last sample
	MaxKiB         uint64  `json:"rss_max_kib"`   // over all samples
	GrowthMiB      float64 `json:"growth_mib"`    // end − first
	GrowthPercent  float64 `json:"growth_percent"`
	SlopeMiBPerMin float64 `json:"slope_mib_per_min"` // least-squares fit over the samples from first_at_sec on
	SlopeSamples   int     `json:"slope_samples"`     // samples in that fit; below 2 there is no slope
}

// soakSegment is one wrk run of a soak.
type soakSegment struct {
	PlannedSec int `json:"planned_sec"` // wrk's -d
	wrkResult
	WrkCPUSeconds float64 `json:"wrk_cpu_seconds"`
	Error         string  `json:"error,omitempty"`
	WrkOutput     string  `json:"wrk_output,omitempty"`
}

// runSeconds is how long wrk ran: requests ÷ wrk's req/s, which is exact
// to wrk's rounding of req/s, where the printed duration ("1.00m") may be
// off by up to 0.3 s; the printed duration when no request completed.
func (s soakSegment) runSeconds() float64 {
	if s.Requests > 0 && s.RequestsPerSec > 0 {
		return float64(s.Requests) / s.RequestsPerSec
	}
	return s.DurationSec
}

// soakResult is one target's soak: samples, figures and the whole run's
// throughput and CPU cost.
type soakResult struct {
	Target string `json:"target"`
	soakFigures
	Requests          int64   `json:"requests"`
	WrkSeconds        float64 `json:"wrk_seconds"`      // sum of wrk's run times (runSeconds)
	RequestsPerSec    float64 `json:"requests_per_sec"` // requests / wrk_seconds
	CPUSeconds        float64 `json:"cpu_seconds"`      // measured process tree, the whole soak
	RequestsPerCPUSec float64 `json:"requests_per_cpu_sec"`
	SocketErrors      int64   `json:"socket_errors"` // connect + read + write + timeout, all segments
	// As in runResult: the upstream's and wrk's CPU, the machine's busy
	// time and what other work took, over WindowSec.
	UpstreamCPUSeconds    float64       `json:"upstream_cpu_seconds"`
	WrkCPUSeconds         float64       `json:"wrk_cpu_seconds"`
	MachineBusyCPUSeconds float64       `json:"machine_busy_cpu_seconds"`
	OtherCPUSeconds       float64       `json:"other_cpu_seconds"`
	WindowSec             float64       `json:"window_sec"`
	Samples               []soakSample  `json:"samples"`
	Segments              []soakSegment `json:"segments"`
	Error                 string        `json:"error,omitempty"`
}

// soakSettle is where the first-minute figure is read: a minute, or 10% of
// a run shorter than ten minutes.
func soakSettle(total time.Duration) time.Duration {
	return min(soakSettleMax, total/10)
}

// soakSegments splits a soak (rounded up to whole seconds, as wrk's -d)
// into wrk runs of at most maxSeg each.
func soakSegments(total, maxSeg time.Duration) []time.Duration {
	left := time.Duration(wholeSeconds(total)) * time.Second
	maxSeg = max(maxSeg.Truncate(time.Second), time.Second)
	var segs []time.Duration
	for left > 0 {
		seg := min(left, maxSeg)
		segs = append(segs, seg)
		left -= seg
	}
	return segs
}

// leastSquaresSlope fits y = a + b·x and returns b; ok is false with fewer
// than two points or when every x is the same.
func leastSquaresSlope(xs, ys []float64) (slope float64, ok bool) {
	n := len(xs)
	if n < 2 || len(ys) != n {
		return 0, false
	}
	var mx, my float64
	for i := range n {
		mx += xs[i]
		my += ys[i]
	}
	mx /= float64(n)
	my /= float64(n)
	var sxx, sxy float64
	for i := range n {
		dx := xs[i] - mx
		sxx += dx * dx
		sxy += dx * (ys[i] - my)
	}
	if sxx == 0 {
		return 0, false
	}
	return sxy / sxx, true
}

// summarizeSoak computes the figures of samples (in time order) for a soak
// whose first minute ends at settle.
func summarizeSoak(samples []soakSample, settle time.Duration) soakFigures {
	f := soakFigures{SettleSec: settle.Seconds()}
	if len(samples) == 0 {
		return f
	}
	f.EndKiB = samples[len(samples)-1].RSSKiB
	first := -1
	for i, s := range samples {
		f.MaxKiB = max(f.MaxKiB, s.RSSKiB)
		if first < 0 && s.AtSec >= f.SettleSec {
			first = i
		}
	}
	if first < 0 {
		return f
	}
	f.FirstAtSec, f.FirstKiB = samples[first].AtSec, samples[first].RSSKiB
	f.GrowthMiB = (float64(f.EndKiB) - float64(f.FirstKiB)) / 1024
	if f.FirstKiB > 0 {
		f.GrowthPercent = 100 * (float64(f.EndKiB) - float64(f.FirstKiB)) / float64(f.FirstKiB)
	}
	var mins, mibs []float64
	for _, s := range samples[first:] {
		mins = append(mins, s.AtSec/60)
		mibs = append(mibs, float64(s.RSSKiB)/1024)
	}
	if slope, ok := leastSquaresSlope(mins, mibs); ok {
		f.SlopeMiBPerMin, f.SlopeSamples = slope, len(mins)
	}
	return f
}

// soak runs the soak against each target in turn and returns the results;
// failures are also added to rep.Errors.
func soak(ctx context.Context, o options, sup *supervisor, rep *report, targets []*target, upstream *child, wrkBin string) []soakResult {
	var out []soakResult
	clk := float64(rep.Machine.ClockTicks)
	for _, t := range targets {
		if ctx.Err() != nil {
			break
		}
		logf("soak %s: %s, RSS every %s", t.name, formatSoakDuration(o.soak), formatSoakDuration(o.soakEvery))
		r := soakOne(ctx, o, sup, t, upstream, wrkBin, clk)
		if r.Error != "" {
			rep.Errors = append(rep.Errors, fmt.Sprintf("soak %s: %s", t.name, r.Error))
			logf("soak %s FAILED: %s", t.name, r.Error)
		} else {
			logf("soak %s: %.0f req/s, RSS %.1f → %.1f MiB (max %.1f), slope %+.3f MiB/min", t.name,
				r.RequestsPerSec, float64(r.FirstKiB)/1024, float64(r.EndKiB)/1024, float64(r.MaxKiB)/1024, r.SlopeMiBPerMin)
		}
		out = append(out, r)
	}
	return out
}

// soakOne runs wrk against t for o.soak (one run, or chained runs of at
// most soakSegmentMax) and samples t's RSS every o.soakEvery. It stops wrk
// early when t or the upstream dies, when a wrk run overstays its -d by
// wrkExitSlack, or when ctx ends.
func soakOne(ctx context.Context, o options, sup *supervisor, t *target, upstream *child, wrkBin string, clk float64) soakResult {
	r := soakResult{Target: t.name}
	fail := func(msg string) {
		if r.Error == "" {
			r.Error = msg
		}
	}
	if t.proc.exited() {
		r.Error = fmt.Sprintf("%s is not running (%v)", t.name, t.proc.waitErr)
		return r
	}
	machineBefore, err0 := machineBusyTicks()
	before, err1 := treeCPUTicks(t.proc.pid())
	upBefore, err2 := treeCPUTicks(upstream.pid())
	if err := errors.Join(err0, err1, err2); err != nil {
		r.Error = err.Error()
		return r
	}
	start := time.Now()
	sample := func() error {
		rss, err := treeRSSKiB(t.proc.pid())
		if err != nil {
			// A target that dies shows as an unreadable /proc entry,
			// possibly before the harness has reaped it.
			select {
			case <-t.proc.done:
				return fmt.Errorf("%s exited during the soak (%v)", t.name, t.proc.waitErr)
			case <-time.After(time.Second):
			}
			return fmt.Errorf("reading the RSS of %s: %w", t.name, err)
		}
		at := time.Since(start)
		r.Samples = append(r.Samples, soakSample{AtSec: at.Seconds(), RSSKiB: rss.Total, RSSAnonKiB: rss.Anon})
		logf("soak %s %s/%s RSS %.1f MiB (anon %.1f)", t.name, formatSoakDuration(at), formatSoakDuration(o.soak),
			float64(rss.Total)/1024, float64(rss.Anon)/1024)
		return nil
	}
	if err := sample(); err != nil {
		r.Error = err.Error()
		return r
	}
	tick := time.NewTicker(o.soakEvery)
	defer tick.Stop()
	for i, seg := range soakSegments(o.soak, soakSegmentMax) {
		if r.Error != "" {
			break
		}
		if ctx.Err() != nil {
			fail(context.Cause(ctx).Error())
			break
		}
		out := filepath.Join(sup.dir, fmt.Sprintf("wrk-soak-%s-%d.out", t.name, i+1))
		s := runSoakSegment(ctx, o, sup, t, upstream, wrkBin, seg, out, tick.C, sample)
		if s.Error != "" {
			fail(s.Error)
		}
		r.Segments = append(r.Segments, s)
	}
	// The end of the soak, unless the last tick has just taken it.
	if last := r.Samples[len(r.Samples)-1].AtSec; time.Since(start).Seconds()-last >= 1 || r.Error != "" {
		if err := sample(); err != nil {
			fail(err.Error())
		}
	}
	r.WindowSec = time.Since(start).Seconds()
	after, err3 := treeCPUTicks(t.proc.pid())
	upAfter, err4 := treeCPUTicks(upstream.pid())
	machineAfter, err5 := machineBusyTicks()
	if err := errors.Join(err3, err4, err5); err == nil {
		r.CPUSeconds = float64(after.total()-before.total()) / clk
		r.UpstreamCPUSeconds = float64(upAfter.total()-upBefore.total()) / clk
		r.MachineBusyCPUSeconds = float64(machineAfter-machineBefore) / clk
	} else {
		fail(err.Error())
	}
	for _, s := range r.Segments {
		r.Requests += s.Requests
		r.WrkSeconds += s.runSeconds()
		r.WrkCPUSeconds += s.WrkCPUSeconds
		r.SocketErrors += s.ErrConnect + s.ErrRead + s.ErrWrite + s.ErrTimeout
	}
	if r.WrkSeconds > 0 {
		r.RequestsPerSec = float64(r.Requests) / r.WrkSeconds
	}
	if r.CPUSeconds > 0 {
		r.RequestsPerCPUSec = float64(r.Requests) / r.CPUSeconds
	}
	ours := r.CPUSeconds + r.WrkCPUSeconds
	if t.proc != upstream {
		ours += r.UpstreamCPUSeconds
	}
	r.OtherCPUSeconds = max(0, r.MachineBusyCPUSeconds-ours)
	r.soakFigures = summarizeSoak(r.Samples, soakSettle(o.soak))
	return r
}

// runSoakSegment runs one wrk run of seg, calling sample on every tick, and
// reads wrk's report. The run is interrupted (SIGINT: wrk stops and still
// prints its report) when t or the upstream exits, a sample fails, the run
// overstays seg by wrkExitSlack, or ctx ends; the segment's Error says why.
func runSoakSegment(ctx context.Context, o options, sup *supervisor, t *target, upstream *child, wrkBin string,
	seg time.Duration, out string, tick <-chan time.Time, sample func() error) soakSegment {
	s := soakSegment{PlannedSec: wholeSeconds(seg)}
	argv := wrkArgs(wrkBin, o.threads, o.conns, seg, o.closeConn, o.headers, t.url)
	c, err := sup.start("wrk", sup.pin.LoadCPUs, out, argv...)
	if err != nil {
		s.Error = err.Error()
		return s
	}
	limit := time.NewTimer(seg + wrkExitSlack)
	defer limit.Stop()
	var why string
wait:
	for {
		select {
		case <-c.done:
			break wait
		case <-tick:
			if err := sample(); err != nil {
				why = err.Error()
				break wait
			}
		case <-t.proc.done:
			why = fmt.Sprintf("%s exited during the soak (%v)", t.name, t.proc.waitErr)
			break wait
		case <-upstream.done:
			why = fmt.Sprintf("the upstream exited during the soak (%v)", upstream.waitErr)
			break wait
		case <-limit.C:
			why = fmt.Sprintf("wrk still running %s after its -d of %s", wrkExitSlack, seg)
			break wait
		case <-ctx.Done():
			why = context.Cause(ctx).Error()
			break wait
		}
	}
	if why != "" {
		interrupt(c)
	}
	if err := sup.release(c); err != nil && why == "" {
		why = err.Error()
	}
	if st := c.cmd.ProcessState; st != nil {
		s.WrkCPUSeconds = (st.UserTime() + st.SystemTime()).Seconds()
	}
	if data, err := os.ReadFile(out); err == nil {
		s.WrkOutput = string(data)
	}
	res, perr := parseWrkOutput(s.WrkOutput)
	if perr == nil {
		s.wrkResult = res
	}
	switch {
	case why != "":
		s.Error = why
	case c.waitErr != nil:
		s.Error = fmt.Sprintf("wrk: %v\n%s", c.waitErr, tailFile(out, 15))
	case perr != nil:
		s.Error = perr.Error()
	case res.Requests == 0:
		s.Error = "no request completed"
	case res.Non2xx3xx > 0:
		s.Error = fmt.Sprintf("%d of %d responses were not 2xx/3xx", res.Non2xx3xx, res.Requests)
	}
	return s
}

// interrupt asks a running wrk to stop early with SIGINT (it then prints
// its report as usual) and waits up to stopGrace for it to exit.
func interrupt(c *child) {
	if c.exited() {
		return
	}
	_ = syscall.Kill(c.pid(), syscall.SIGINT)
	select {
	case <-c.done:
	case <-time.After(stopGrace):
	}
}

// formatSoakDuration prints a duration without trailing zero units
// ("1m", "6s", "1h30m").
func formatSoakDuration(d time.Duration) string {
	s := d.Round(time.Second).String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// printSoakTable writes one row per soaked target.
func printSoakTable(w io.Writer, rep *report) {
	s := rep.Settings
	every := time.Duration(s.SoakEverySec * float64(time.Second))
	settle := soakSettle(time.Duration(s.DurationSec) * time.Second)
	fmt.Fprintf(w, "\nscenario %s: wrk -t%d -c%d for %s per target, RSS of the measured process tree every %s\n",
		s.Scenario, s.Threads, s.Connections, formatSoakDuration(time.Duration(s.DurationSec)*time.Second), formatSoakDuration(every))
	fmt.Fprintf(w, "pinning: %s\n", rep.Pinning)
	fmt.Fprintf(w, "load average: %s at start, %s at end\n\n", rep.Machine.LoadAvgStart, rep.Machine.LoadAvgEnd)
	mib := func(kib uint64) string {
		if kib == 0 {
			return "–"
		}
		return fmt.Sprintf("%.1f MiB", float64(kib)/1024)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "target\treq/s\treq/CPU-s\tCPU%%\tother%%\tRSS@%s\tRSS end\tRSS max\tgrowth\tgrowth%%\tslope\tsamples\t\n", formatSoakDuration(settle))
	for _, r := range rep.Soak {
		growth, pct, slope := "–", "–", "–"
		if r.FirstKiB > 0 {
			growth = fmt.Sprintf("%+.1f MiB", r.GrowthMiB)
			pct = fmt.Sprintf("%+.1f%%", r.GrowthPercent)
		}
		if r.SlopeSamples >= 2 {
			slope = fmt.Sprintf("%+.3f MiB/min", r.SlopeMiBPerMin)
		}
		cpuPct, otherPct := 0.0, 0.0
		if r.WindowSec > 0 {
			cpuPct, otherPct = 100*r.CPUSeconds/r.WindowSec, 100*r.OtherCPUSeconds/r.WindowSec
		}
		fmt.Fprintf(tw, "%s\t%.0f\t%.0f\t%.0f%%\t%.0f%%\t%s\t%s\t%s\t%s\t%s\t%s\t%d\t\n", r.Target, r.RequestsPerSec, r.RequestsPerCPUSec,
			cpuPct, otherPct, mib(r.FirstKiB), mib(r.EndKiB), mib(r.MaxKiB), growth, pct, slope, len(r.Samples))
	}
	_ = tw.Flush()
	fmt.Fprintf(w, "RSS@%s = the first sample at or after %s (the first minute, or 10%% of a shorter run); growth = end − RSS@%s;\n",
		formatSoakDuration(settle), formatSoakDuration(settle), formatSoakDuration(settle))
	fmt.Fprintln(w, "slope = least-squares fit of RSS against time over the samples from RSS@ on; req/s and req/CPU-s over the whole run")
	for _, r := range rep.Soak {
		if r.WindowSec > 0 && 100*r.OtherCPUSeconds/r.WindowSec > noisyOtherPercent {
			fmt.Fprintf(w, "warning: other work took over %.0f%% of a CPU during the soak of %s; treat the figures as noisy\n", noisyOtherPercent, r.Target)
		}
		if r.SocketErrors > 0 {
			fmt.Fprintf(w, "%s: %d socket errors (connect, read, write, timeout; see the JSON)\n", r.Target, r.SocketErrors)
		}
	}
	for _, e := range rep.Errors {
		fmt.Fprintln(w, "error:", e)
	}
}

// soakBudget is the computed global deadline's share of one soaked target:
// the soak plus, per wrk run, its exit slack and an interrupt and stop.
func soakBudget(total time.Duration) time.Duration {
	n := time.Duration(len(soakSegments(total, soakSegmentMax)))
	return time.Duration(wholeSeconds(total))*time.Second + n*(wrkExitSlack+3*stopGrace) + 2*time.Second
}
