package main

import (
	"context"
	"fmt"
	"os/exec"
	"runtime"
	"time"
)

// pinning records which CPUs each side of the benchmark runs on. It is
// written to the JSON report because figures taken with and without pinning
// are not comparable.
type pinning struct {
	Enabled   bool   `json:"enabled"`
	Reason    string `json:"reason"`               // why it is on or off
	ProxyCPUs string `json:"proxy_cpus,omitempty"` // taskset -c list for the proxy under test
	LoadCPUs  string `json:"load_cpus,omitempty"`  // taskset -c list for wrk and the upstream

	tasksetPath string
}

func (p pinning) String() string {
	if !p.Enabled {
		return "off (" + p.Reason + ")"
	}
	return fmt.Sprintf("proxy on CPU %s; wrk and upstream on CPU %s (%s)", p.ProxyCPUs, p.LoadCPUs, p.Reason)
}

// choosePinning decides pinning for mode auto|on|off. In auto mode pinning
// is used only when taskset exists, accepts both CPU lists, and the harness
// may run on at least two CPUs; in on mode any of those failing is an error.
func choosePinning(ctx context.Context, mode, proxyCPUs, loadCPUs string) (pinning, error) {
	off := func(reason string) pinning { return pinning{Reason: reason} }
	switch mode {
	case "off":
		return off("disabled by -pin off"), nil
	case "auto", "on":
	default:
		return pinning{}, fmt.Errorf("-pin %q: want auto, on or off", mode)
	}
	fail := func(reason string) (pinning, error) {
		if mode == "on" {
			return pinning{}, fmt.Errorf("-pin on: %s", reason)
		}
		return off(reason), nil
	}
	if n := runtime.NumCPU(); n < 2 {
		return fail(fmt.Sprintf("only %d CPU available", n))
	}
	path, err := exec.LookPath("taskset")
	if err != nil {
		return fail("taskset not found (Debian/Ubuntu: util-linux)")
	}
	for _, cpus := range []string{proxyCPUs, loadCPUs} {
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		out, err := exec.CommandContext(cctx, path, "-c", cpus, "true").CombinedOutput()
		cancel()
		if err != nil {
			return fail(fmt.Sprintf("taskset -c %s does not work: %v %s", cpus, err, out))
		}
	}
	reason := "auto: taskset works and ≥2 CPUs"
	if mode == "on" {
		reason = "forced by -pin on"
	}
	return pinning{Enabled: true, Reason: reason, ProxyCPUs: proxyCPUs, LoadCPUs: loadCPUs, tasksetPath: path}, nil
}
