package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	"github.com/portunus-gw/portunus/internal/config"
	"github.com/portunus-gw/portunus/internal/gateway"
	"github.com/portunus-gw/portunus/internal/heapfloor"
	"github.com/portunus-gw/portunus/internal/store"
	"github.com/portunus-gw/portunus/internal/telemetry"
)

// exit codes
const (
	exitOK      = 0
	exitInvalid = 1
	exitUsage   = 2
)

// drainGrace is how long SIGTERM waits for in-flight requests.
const drainGrace = 30 * time.Second

func newFlagSet(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

// reportConfigError prints a load error and returns the exit code.
func reportConfigError(err error, stderr io.Writer) int {
	var fe *config.FileError
	if errors.As(err, &fe) {
		fmt.Fprintf(stderr, "portunus: %v\n", err)
		return exitUsage
	}
	var el config.ErrorList
	if errors.As(err, &el) {
		for _, e := range el {
			fmt.Fprintln(stderr, e.Error())
		}
		return exitInvalid
	}
	fmt.Fprintf(stderr, "portunus: %v\n", err)
	return exitInvalid
}

func cmdValidate(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("validate", stderr)
	path := fs.String("c", "portunus.yaml", "config file")
	fs.StringVar(path, "config", "portunus.yaml", "config file")
	if err := fs.Parse(args); err != nil || fs.NArg() != 0 {
		if err == nil {
			fmt.Fprintf(stderr, "portunus validate: unexpected argument %q\n", fs.Arg(0))
		}
		return exitUsage
	}
	if _, err := config.Load(*path); err != nil {
		return reportConfigError(err, stderr)
	}
	fmt.Fprintf(stdout, "%s: valid\n", *path)
	return exitOK
}

func cmdRun(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("run", stderr)
	path := fs.String("c", "portunus.yaml", "config file")
	fs.StringVar(path, "config", "portunus.yaml", "config file")
	logLevel := fs.String("log-level", "info", "debug | info | warn | error")
	if err := fs.Parse(args); err != nil || fs.NArg() != 0 {
		if err == nil {
			fmt.Fprintf(stderr, "portunus run: unexpected argument %q\n", fs.Arg(0))
		}
		return exitUsage
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		fmt.Fprintf(stderr, "portunus run: invalid -log-level %q\n", *logLevel)
		return exitUsage
	}
	log := slog.New(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: level}))
	// The Redis client reports dial failures through our log, at the
	// gateway's level, instead of printing a line per attempt.
	store.SetClientLogger(log)
	telemetry.SetVersion(version)
	// Fewer collections while the live heap is small (see heapfloor;
	// GOGC or GOMEMLIMIT in the environment turn this off).
	defer heapfloor.Start(heapfloor.Default).Stop()

	// Signals are subscribed before the listeners open, so a SIGTERM
	// that arrives during start-up still drains instead of killing.
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGHUP, syscall.SIGTERM, syscall.SIGINT)
	defer signal.Stop(sigs)

	rt, err := gateway.Start(gateway.Options{ConfigPath: *path, Log: log, Watch: true})
	if err != nil {
		return reportConfigError(err, stderr)
	}
	log.Info("portunus started", "version", version, "listeners", rt.ListenerAddrs(), "admin", rt.AdminAddr())
	for sig := range sigs {
		switch sig {
		case syscall.SIGHUP:
			_ = rt.Reload("SIGHUP")
		default:
			log.Info("draining", "signal", sig.String(), "grace", drainGrace.String())
			ctx, cancel := context.WithTimeout(context.Background(), drainGrace)
			go func() {
				// A second signal stops waiting.
				select {
				case <-sigs:
					cancel()
				case <-ctx.Done():
				}
			}()
			rt.Shutdown(ctx)
			cancel()
			log.Info("stopped")
			return exitOK
		}
	}
	return exitOK
}

// headerFlags collects repeated -H 'Name: value' flags.
type headerFlags []string

func (h *headerFlags) String() string     { return strings.Join(*h, ", ") }
func (h *headerFlags) Set(v string) error { *h = append(*h, v); return nil }

func cmdExplain(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("explain", stderr)
	path := fs.String("c", "portunus.yaml", "config file")
	fs.StringVar(path, "config", "portunus.yaml", "config file")
	asJSON := fs.Bool("json", false, "print JSON")
	clientIP := fs.String("client-ip", "127.0.0.1", "the client's address (the TCP peer)")
	var hdrs headerFlags
	fs.Var(&hdrs, "H", "request header 'Name: value' (repeatable)")
	// Flags may come after the positional METHOD and URL.
	var positional []string
	rest := args
	for {
		if err := fs.Parse(rest); err != nil {
			return exitUsage
		}
		if fs.NArg() == 0 {
			break
		}
		positional = append(positional, fs.Arg(0))
		rest = fs.Args()[1:]
	}
	if len(positional) != 2 {
		fmt.Fprintln(stderr, "usage: portunus explain -c FILE [--json] [--client-ip IP] METHOD URL [-H 'Name: value' ...]")
		return exitUsage
	}
	cfg, err := config.Load(*path)
	if err != nil {
		return reportConfigError(err, stderr)
	}
	snap, err := gateway.CompileForExplain(cfg)
	if err != nil {
		return reportConfigError(err, stderr)
	}
	h := http.Header{}
	for _, kv := range hdrs {
		name, value, ok := strings.Cut(kv, ":")
		if !ok || strings.TrimSpace(name) == "" {
			fmt.Fprintf(stderr, "portunus explain: header %q is not 'Name: value'\n", kv)
			return exitUsage
		}
		h.Add(strings.TrimSpace(name), strings.TrimSpace(value))
	}
	ex := snap.Explain(gateway.ExplainRequest{Method: positional[0], URL: positional[1], Header: h, ClientIP: *clientIP})
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(ex)
	} else {
		printExplanation(stdout, ex)
	}
	if ex.Outcome == "matched" {
		return exitOK
	}
	return exitInvalid
}

func printExplanation(w io.Writer, ex *gateway.Explanation) {
	fmt.Fprintf(w, "request:   %s %s%s", ex.Request.Method, ex.Request.Host, ex.Request.Path)
	if ex.Request.Query != "" {
		fmt.Fprintf(w, "?%s", ex.Request.Query)
	}
	fmt.Fprintf(w, " from %s\n", ex.Request.ClientIP)
	switch ex.Outcome {
	case "matched":
		fmt.Fprintf(w, "route:     %s\n", ex.Route)
	default:
		fmt.Fprintf(w, "outcome:   %s (%d)", ex.Outcome, ex.Status)
		if len(ex.Allow) > 0 {
			fmt.Fprintf(w, " Allow: %s", strings.Join(ex.Allow, ", "))
		}
		if ex.Detail != "" {
			fmt.Fprintf(w, " — %s", ex.Detail)
		}
		fmt.Fprintln(w)
		return
	}
	for k, v := range ex.Params {
		fmt.Fprintf(w, "param:     %s = %s\n", k, v)
	}
	for i, p := range ex.Policies {
		fmt.Fprintf(w, "step %d:    %s\n", i+1, p)
	}
	if a := ex.Action; a != nil {
		switch a.Kind {
		case "respond":
			fmt.Fprintf(w, "action:    respond %d\n", a.Status)
		case "aggregate":
			printAggregate(w, a.Aggregate)
		case "proxy":
			fmt.Fprintf(w, "action:    proxy to upstream %s (targets: %s)\n", a.Upstream, strings.Join(a.Targets, ", "))
			if u := a.UpstreamRequest; u != nil {
				fmt.Fprintf(w, "upstream:  %s %s (Host: %s)\n", u.Method, u.URL, u.Host)
				for k, vs := range u.Headers {
					for _, v := range vs {
						fmt.Fprintf(w, "           %s: %s\n", k, v)
					}
				}
			}
		}
	}
}

func cmdHashKey(args []string, stdout, stderr io.Writer) int {
	if len(args) != 1 || args[0] == "" {
		fmt.Fprintln(stderr, "usage: portunus hash-key KEY")
		return exitUsage
	}
	sum := sha256.Sum256([]byte(args[0]))
	fmt.Fprintf(stdout, "sha256:%s\n", hex.EncodeToString(sum[:]))
	return exitOK
}

func cmdVersion(stdout io.Writer) int {
	c := commit
	if c == "" {
		if bi, ok := debug.ReadBuildInfo(); ok {
			for _, s := range bi.Settings {
				if s.Key == "vcs.revision" {
					c = s.Value
				}
			}
		}
	}
	if c == "" {
		c = "unknown"
	}
	fmt.Fprintf(stdout, "portunus %s (commit %s, %s, %s/%s)\n", version, c, runtime.Version(), runtime.GOOS, runtime.GOARCH)
	return exitOK
}
