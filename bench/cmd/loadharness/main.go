// Command loadharness measures Portunus against nginx and against the bare
// upstream, on loopback only, with wrk.
//
// It builds and starts bench/cmd/upstream (a fixed 100-byte JSON answer),
// nginx (where installed) as an equivalent one-worker reverse proxy, and
// Portunus with one plain proxy route; pins the proxy under test to one CPU
// and wrk plus the upstream to another where taskset allows; then, for R
// interleaved rounds, runs wrk against each target and reads the measured
// process tree's CPU time and RSS from /proc. It prints the medians and the
// Portunus/nginx and Portunus/direct ratios and writes every raw figure to a
// JSON file.
//
// Everything is bounded: a global deadline, readiness timeouts, and every
// child (each in its own process group) is stopped by PID on exit, on error
// and on SIGINT/SIGTERM.
//
//	go run ./bench/cmd/loadharness                     # 3 rounds x 10 s x 3 targets, 50 connections
//	go run ./bench/cmd/loadharness -c 1000             # many connections
//	go run ./bench/cmd/loadharness -close              # Connection: close (new-connection rate)
//	go run ./bench/cmd/loadharness -targets direct,nginx
//	go run ./bench/cmd/loadharness -smoke              # CI: ~2 s per target, exits 1 on any failure
//	go run ./bench/cmd/loadharness -soak 10m           # RSS over one 10-minute run (soak.go)
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"
)

// options are the command-line settings.
type options struct {
	extra       portunusExtra
	targets     []string
	rounds      int
	conns       int
	threads     int
	duration    time.Duration
	warmup      time.Duration
	closeConn   bool
	smoke       bool
	pinMode     string
	proxyCPUs   string
	loadCPUs    string
	jsonPath    string
	deadline    time.Duration
	repo        string
	wrkBin      string
	nginxBin    string
	portunusBin string
	keep        bool
	auth        string        // -auth: apikey or jwt (auth.go)
	idle        int           // -idle: idle keep-alive connections per target (idle.go)
	idleHold    time.Duration // -idle-hold: read RSS again after the connections idled this long
	headers     []string      // sent by wrk with every request

	soak      time.Duration // -soak: one long wrk run per target with RSS sampling (soak.go)
	soakEvery time.Duration // -soak-every: RSS sampling interval
}

func parseFlags(args []string) (options, error) {
	var o options
	fs := flag.NewFlagSet("loadharness", flag.ContinueOnError)
	targets := fs.String("targets", strings.Join(allTargets, ","), "comma-separated targets: direct, nginx, portunus, portunus-stdlib (Portunus on net/http alone: stdlib upstream transport and server), portunus-plain (Portunus without the measured route's policies: with -auth, -portunus-route or -cache, their cost in one run)")
	fs.IntVar(&o.rounds, "rounds", 3, "interleaved rounds per target (the table shows the median)")
	fs.IntVar(&o.conns, "c", 50, "wrk connections")
	fs.IntVar(&o.threads, "t", 1, "wrk threads")
	fs.DurationVar(&o.duration, "d", 10*time.Second, "wrk duration per run (whole seconds)")
	fs.DurationVar(&o.warmup, "warmup", 2*time.Second, "unrecorded wrk run per target before the rounds (0 = none)")
	fs.BoolVar(&o.closeConn, "close", false, "send Connection: close (measures the new-connection rate)")
	fs.BoolVar(&o.smoke, "smoke", false, "CI mode: 2 s per target, 1 round, no warm-up, no JSON unless -json; exit 1 on any failure")
	fs.StringVar(&o.pinMode, "pin", "auto", "CPU pinning with taskset: auto (when it works and ≥2 CPUs), on (required), off")
	fs.StringVar(&o.proxyCPUs, "proxy-cpus", "0", "taskset CPU list for the proxy under test")
	fs.StringVar(&o.loadCPUs, "load-cpus", "1", "taskset CPU list for wrk and the upstream")
	fs.StringVar(&o.jsonPath, "json", "", "write the raw run as JSON here (default bench/results/<timestamp>-<scenario>-c<C>.json)")
	fs.DurationVar(&o.deadline, "deadline", 0, "global deadline for the whole harness (0 = computed from the settings)")
	fs.StringVar(&o.repo, "repo", "", "Portunus module root (default: found upwards from the working directory)")
	fs.StringVar(&o.wrkBin, "wrk", "", "wrk binary (default: wrk on PATH)")
	fs.StringVar(&o.nginxBin, "nginx", "", "nginx binary (default: nginx on PATH or in /usr/sbin; skipped if absent)")
	fs.StringVar(&o.portunusBin, "portunus-bin", "", "prebuilt portunus binary (default: go build ./cmd/portunus)")
	fs.BoolVar(&o.keep, "keep", false, "keep the temporary directory (configs, logs, wrk output)")
	fs.StringVar(&o.extra.route, "portunus-route", "", `policies added to the measured route, as YAML flow-mapping entries, e.g. 'rate_limits: [{ limit: 1000000000, window: 1s }]'`)
	fs.DurationVar(&o.idleHold, "idle-hold", 0, "with -idle: keep the connections open and idle this long after the first reading, then read RSS again (150s spans the Go runtime's forced GC, which shrinks idle goroutines' stacks)")
	fs.IntVar(&o.idle, "idle", 0, "instead of wrk: open this many idle keep-alive connections (one request each) to every target and report RSS per connection; several 127.0.0.x sources, descriptor limit raised")
	fs.StringVar(&o.auth, "auth", "", "authenticate the measured route: apikey (a consumer's X-API-Key) or jwt (RS256, static key, one token); wrk sends the credential to every target")
	fs.StringVar(&o.extra.top, "portunus-top", "", `top-level YAML added to Portunus's config, e.g. 'store: { backend: redis, redis: { addresses: ["127.0.0.1:6379"] } }'`)
	fs.DurationVar(&o.soak, "soak", 0, "soak mode: instead of rounds, run wrk (same -c, -t and pinning as the rounds) this long against each target (default targets: portunus only) and sample its RSS (soak.go)")
	fs.DurationVar(&o.soakEvery, "soak-every", 10*time.Second, "with -soak: RSS sampling interval")
	fs.BoolVar(&cacheScenario, "cache", false, "cache-hit scenario: nginx with proxy_cache, Portunus with a response cache on the route (cache.go)")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	for t := range strings.SplitSeq(*targets, ",") {
		t = strings.TrimSpace(t)
		if !slices.Contains(knownTargets, t) {
			return o, fmt.Errorf("-targets: unknown target %q (want %s)", t, strings.Join(knownTargets, ", "))
		}
		if !slices.Contains(o.targets, t) {
			o.targets = append(o.targets, t)
		}
	}
	if o.smoke {
		o.duration, o.rounds, o.warmup = 2*time.Second, 1, 0
	}
	if o.soak > 0 {
		targetsSet := false
		fs.Visit(func(f *flag.Flag) { targetsSet = targetsSet || f.Name == "targets" })
		if !targetsSet {
			o.targets = []string{targetPortunus}
		}
		// The first minute of the soak is its warm-up.
		o.warmup = 0
	}
	if cacheScenario {
		o.extra.route = withCacheRoute(o.extra.route)
	}
	switch {
	case o.rounds < 1:
		return o, errors.New("-rounds must be at least 1")
	case o.threads < 1:
		return o, errors.New("-t must be at least 1")
	case o.conns < o.threads:
		return o, errors.New("-c must be at least -t (wrk needs a connection per thread)")
	case o.duration < time.Second:
		return o, errors.New("-d must be at least 1s")
	case o.warmup < 0:
		return o, errors.New("-warmup must not be negative")
	case o.soak < 0:
		return o, errors.New("-soak must not be negative")
	case o.soak > 0 && o.soak < time.Second:
		return o, errors.New("-soak must be at least 1s")
	case o.soak > 0 && o.soakEvery < soakMinEvery:
		return o, fmt.Errorf("-soak-every must be at least %s", soakMinEvery)
	case o.soak > 0 && (o.smoke || o.idle > 0):
		return o, errors.New("-soak cannot be combined with -smoke or -idle")
	}
	return o, nil
}

func main() {
	o, err := parseFlags(os.Args[1:])
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "loadharness:", err)
		os.Exit(2)
	}
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "loadharness:", err)
		os.Exit(1)
	}
}

// budget is the computed global deadline: builds, then per target its
// start-up, warm-up and rounds with generous slack for wrk and stops.
func (o options) budget() time.Duration {
	if o.soak > 0 {
		return 6*time.Minute + time.Duration(len(o.targets))*(readyTimeout+soakBudget(o.soak)+2*stopGrace)
	}
	perTarget := readyTimeout + o.warmup + time.Duration(o.rounds)*(time.Duration(wholeSeconds(o.duration))*time.Second+15*time.Second) + o.idleHold
	return 6*time.Minute + time.Duration(len(o.targets))*(perTarget+2*stopGrace)
}

func run(o options) (err error) {
	deadline := o.deadline
	if deadline <= 0 {
		deadline = o.budget()
	}
	ctx, cancel := context.WithTimeoutCause(context.Background(), deadline,
		fmt.Errorf("global deadline of %s exceeded", deadline))
	defer cancel()
	ctx, stopSignals := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	defer stopSignals()

	// Tools first, so a missing one is reported before anything starts.
	wrkBin := o.wrkBin
	if wrkBin == "" {
		if wrkBin, err = exec.LookPath("wrk"); err != nil {
			return errors.New("wrk is required but not found on PATH (Debian/Ubuntu: apt-get install wrk; or pass -wrk PATH)")
		}
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		goBin = "/usr/local/go/bin/go"
	}
	repo := o.repo
	if repo == "" {
		if repo, err = findModuleRoot(); err != nil {
			return err
		}
	}
	var skipped []targetInfo
	nginxBin := ""
	if slices.Contains(o.targets, targetNginx) {
		if nginxBin = findNginx(o.nginxBin); nginxBin == "" {
			why := "nginx not installed (Debian/Ubuntu: apt-get install nginx-light); target skipped"
			fmt.Fprintln(os.Stderr, "loadharness: warning:", why)
			skipped = append(skipped, targetInfo{Name: targetNginx, Skipped: why})
			o.targets = slices.DeleteFunc(o.targets, func(t string) bool { return t == targetNginx })
		}
	}
	if o.idle > 0 {
		nginxConnections = max(nginxConnections, o.idle+1024)
		// The harness and each target hold one descriptor per connection.
		if got := raiseFileLimitTo(uint64(o.idle) + 4096); got < uint64(o.idle) {
			logf("warning: open-file limit %d is below -idle %d; the run reports how far it got", got, o.idle)
		}
	} else {
		raiseFileLimit()
	}

	dir, err := os.MkdirTemp("", "portunus-loadharness-")
	if err != nil {
		return err
	}
	if o.keep {
		fmt.Fprintln(os.Stderr, "loadharness: keeping", dir)
	} else {
		defer os.RemoveAll(dir)
	}

	pin, err := choosePinning(ctx, o.pinMode, o.proxyCPUs, o.loadCPUs)
	if err != nil {
		return err
	}
	sup := &supervisor{dir: dir, pin: pin}
	if o.auth != "" {
		if o.extra, o.headers, err = authSetup(dir, o.auth, o.extra); err != nil {
			return err
		}
	}
	defer func() {
		for _, e := range sup.stopAll() {
			err = errors.Join(err, e)
		}
	}()

	scenario := "keepalive"
	if o.closeConn {
		scenario = "close"
	}
	if cacheScenario {
		scenario += "-cache"
	}
	if o.soak > 0 {
		scenario = "soak-" + scenario
	}
	rep := &report{
		Harness:   "portunus-loadharness/1",
		StartedAt: time.Now().UTC(),
		Commit:    gitCommit(ctx, repo),
		Command:   os.Args,
		Settings: settings{
			Scenario: scenario, Connections: o.conns, Threads: o.threads,
			DurationSec: wholeSeconds(o.duration), Rounds: o.rounds,
			WarmupSec: o.warmup.Seconds(), Smoke: o.smoke,
		},
		Machine: describeMachine(ctx, goBin, wrkBin, nginxBin),
		Pinning: pin,
		Targets: skipped,
	}
	if o.soak > 0 {
		rep.Settings.DurationSec, rep.Settings.Rounds = wholeSeconds(o.soak), 1
		rep.Settings.SoakEverySec = o.soakEvery.Seconds()
	}
	logf("%s, %d CPU(s), kernel %s; %s; load average %s; pinning %s",
		rep.Machine.CPUModel, rep.Machine.CPUs, rep.Machine.Kernel, rep.Machine.Wrk, rep.Machine.LoadAvgStart, pin)

	targets, upstream, err := startTargets(ctx, o, sup, rep, goBin, repo, nginxBin)
	if err != nil {
		return err
	}
	if o.idle > 0 {
		printIdle(measureIdle(ctx, targets, o.idle, o.idleHold))
		return nil
	}
	if o.soak > 0 {
		rep.Soak = soak(ctx, o, sup, rep, targets, upstream, wrkBin)
	} else {
		measure(ctx, o, sup, rep, targets, upstream, wrkBin)
	}

	rep.FinishedAt = time.Now().UTC()
	rep.Machine.LoadAvgEnd = loadAvg()
	names := make([]string, 0, len(targets))
	for _, t := range targets {
		names = append(names, t.name)
	}
	rep.Summary = summarize(names, rep.Runs)
	rep.Ratios = ratios(rep.Summary)
	if o.soak > 0 {
		printSoakTable(os.Stdout, rep)
	} else {
		printTable(os.Stdout, rep)
	}

	jsonPath := o.jsonPath
	if jsonPath == "" && !o.smoke {
		stamp := rep.StartedAt.Format("20060102T150405Z")
		jsonPath = filepath.Join(repo, "bench", "results", fmt.Sprintf("%s-%s-c%d.json", stamp, scenario, o.conns))
	}
	if jsonPath != "" {
		if werr := writeJSON(jsonPath, rep); werr != nil {
			return errors.Join(errors.New("writing JSON"), werr)
		}
		fmt.Println("\nraw results:", jsonPath)
	}
	if cerr := context.Cause(ctx); cerr != nil {
		return fmt.Errorf("stopped early: %w", cerr)
	}
	if len(rep.Errors) > 0 {
		return fmt.Errorf("%d error(s); see above", len(rep.Errors))
	}
	return nil
}

// startTargets builds and starts the upstream, then every requested proxy.
// The upstream failing is fatal; a proxy failing is recorded as an error and
// the others still run, so a broken Portunus build still yields direct and
// nginx figures.
func startTargets(ctx context.Context, o options, sup *supervisor, rep *report, goBin, repo, nginxBin string) ([]*target, *child, error) {
	upBin := filepath.Join(sup.dir, "upstream")
	logf("building bench/cmd/upstream")
	if err := goBuild(ctx, goBin, repo, upBin, "./bench/cmd/upstream"); err != nil {
		return nil, nil, err
	}
	up, upAddr, err := startUpstream(ctx, sup, upBin)
	if err != nil {
		return nil, nil, err
	}
	logf("upstream on %s (pid %d)", upAddr, up.pid())

	fail := func(name string, err error) {
		msg := fmt.Sprintf("%s: %v", name, err)
		rep.Errors = append(rep.Errors, msg)
		rep.Targets = append(rep.Targets, targetInfo{Name: name, Skipped: "failed to start"})
		fmt.Fprintln(os.Stderr, "loadharness:", msg)
	}
	var targets []*target
	for _, name := range o.targets {
		var t *target
		var err error
		switch name {
		case targetDirect:
			t = &target{name: targetDirect, url: "http://" + upAddr + "/", proc: up}
		case targetNginx:
			t, err = startNginx(ctx, sup, nginxBin, upAddr)
		case targetPortunus, targetPortunusStdlib, targetPortunusPlain:
			bin := o.portunusBin
			if bin == "" {
				bin = filepath.Join(sup.dir, "portunus")
			}
			if _, serr := os.Stat(bin); serr != nil && o.portunusBin == "" {
				bin = filepath.Join(sup.dir, "portunus")
				logf("building ./cmd/portunus")
				err = goBuild(ctx, goBin, repo, bin, "./cmd/portunus")
			}
			if err == nil {
				rep.Machine.Portunus = toolVersion(ctx, bin, "version")
				t, err = startPortunus(ctx, sup, name, bin, upAddr, o.extra.forTarget(name))
			}
		}
		if ctx.Err() != nil {
			return nil, nil, context.Cause(ctx)
		}
		if err != nil {
			fail(name, err)
			continue
		}
		logf("%s ready at %s (pid %d)", t.name, t.url, t.proc.pid())
		rep.Targets = append(rep.Targets, targetInfo{Name: t.name, URL: t.url, PID: t.proc.pid()})
		targets = append(targets, t)
	}
	return targets, up, nil
}

// measure runs the warm-up, then the rounds, rotating the target order each
// round so no target always runs first (or right after the same other).
func measure(ctx context.Context, o options, sup *supervisor, rep *report, targets []*target, upstream *child, wrkBin string) {
	if len(targets) == 0 {
		return
	}
	if o.warmup > 0 {
		for _, t := range targets {
			if ctx.Err() != nil {
				return
			}
			logf("warm-up %s (%s)", t.name, o.warmup)
			argv := wrkArgs(wrkBin, o.threads, o.conns, o.warmup, o.closeConn, o.headers, t.url)
			_, _ = sup.runToCompletion(ctx, "wrk", sup.pin.LoadCPUs, filepath.Join(sup.dir, "wrk-warmup-"+t.name+".out"), argv...)
		}
	}
	clk := float64(rep.Machine.ClockTicks)
	for round := range o.rounds {
		for i := range targets {
			t := targets[(i+round)%len(targets)]
			if ctx.Err() != nil {
				return
			}
			r := measureOnce(ctx, o, sup, t, upstream, wrkBin, round, clk)
			line := fmt.Sprintf("round %d %-8s %9.0f req/s  p50 %-8s p99 %-8s %8.0f req/CPU-s  RSS %.1f MiB (anon %.1f)  other work %.0f%% CPU",
				round+1, t.name, r.RequestsPerSec, formatLatency(r.P50us), formatLatency(r.P99us), r.RequestsPerCPUSec,
				float64(r.RSSKiB)/1024, float64(r.RSSAnonKiB)/1024, r.otherCPUPercent())
			if se := r.ErrConnect + r.ErrRead + r.ErrWrite + r.ErrTimeout; se > 0 {
				line += fmt.Sprintf("  (socket errors: connect %d, read %d, write %d, timeout %d)", r.ErrConnect, r.ErrRead, r.ErrWrite, r.ErrTimeout)
			}
			if !r.ok() {
				line = fmt.Sprintf("round %d %-8s FAILED: %s", round+1, t.name, r.Error)
				rep.Errors = append(rep.Errors, fmt.Sprintf("round %d %s: %s", round+1, t.name, r.Error))
			}
			logf("%s", line)
			rep.Runs = append(rep.Runs, r)
		}
	}
}

// measureOnce runs wrk once against t and charges the CPU time and RSS of
// t's process tree to it.
func measureOnce(ctx context.Context, o options, sup *supervisor, t *target, upstream *child, wrkBin string, round int, clk float64) runResult {
	r := runResult{Round: round + 1, Target: t.name}
	if t.proc.exited() {
		r.Error = fmt.Sprintf("%s is not running (%v)", t.name, t.proc.waitErr)
		return r
	}
	start := time.Now()
	machineBefore, err0 := machineBusyTicks()
	before, err1 := treeCPUTicks(t.proc.pid())
	upBefore, err2 := treeCPUTicks(upstream.pid())
	out := filepath.Join(sup.dir, fmt.Sprintf("wrk-%s-r%d.out", t.name, round+1))
	argv := wrkArgs(wrkBin, o.threads, o.conns, o.duration, o.closeConn, o.headers, t.url)
	wrkCPU, werr := sup.runToCompletion(ctx, "wrk", sup.pin.LoadCPUs, out, argv...)
	after, err3 := treeCPUTicks(t.proc.pid())
	upAfter, err4 := treeCPUTicks(upstream.pid())
	machineAfter, err5 := machineBusyTicks()
	r.WindowSec = time.Since(start).Seconds()
	rss, err6 := treeRSSKiB(t.proc.pid())
	if data, err := os.ReadFile(out); err == nil {
		r.WrkOutput = string(data)
	}
	if err := errors.Join(werr, err0, err1, err2, err3, err4, err5, err6); err != nil {
		r.Error = err.Error()
		return r
	}
	res, err := parseWrkOutput(r.WrkOutput)
	if err != nil {
		r.Error = err.Error()
		return r
	}
	r.wrkResult = res
	r.CPUSeconds = float64(after.total()-before.total()) / clk
	r.UserCPUSeconds = float64(after.User-before.User) / clk
	r.SystemCPUSeconds = float64(after.System-before.System) / clk
	r.UpstreamCPUSeconds = float64(upAfter.total()-upBefore.total()) / clk
	r.RSSKiB, r.RSSAnonKiB, r.RSSFileKiB = rss.Total, rss.Anon, rss.File
	r.WrkCPUSeconds = wrkCPU.Seconds()
	// Whatever the machine was busy with beyond our three processes is
	// other work competing for the CPUs: the noise indicator of this run.
	ours := r.CPUSeconds + r.WrkCPUSeconds
	if t.proc != upstream {
		ours += r.UpstreamCPUSeconds
	}
	r.MachineBusyCPUSeconds = float64(machineAfter-machineBefore) / clk
	r.OtherCPUSeconds = max(0, r.MachineBusyCPUSeconds-ours)
	if r.CPUSeconds > 0 {
		r.RequestsPerCPUSec = float64(res.Requests) / r.CPUSeconds
	}
	switch {
	case res.Requests == 0:
		r.Error = "no request completed"
	case res.Non2xx3xx > 0:
		// A proxy answering errors fast would otherwise look good.
		r.Error = fmt.Sprintf("%d of %d responses were not 2xx/3xx", res.Non2xx3xx, res.Requests)
	}
	return r
}

// findModuleRoot walks up from the working directory to the Portunus go.mod.
func findModuleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		data, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && strings.Contains(string(data), "module github.com/portunus-gw/portunus\n") {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("cannot find the Portunus module root above the working directory; pass -repo")
		}
		dir = parent
	}
}

// raiseFileLimit lifts the soft descriptor limit to the hard one. Calling
// Setrlimit explicitly makes children (wrk at -c 1000, nginx) inherit it;
// Go otherwise restores the original soft limit in children.
func raiseFileLimit() {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return
	}
	lim.Cur = lim.Max
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		logf("warning: cannot raise the open-file limit: %v", err)
	}
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
}
