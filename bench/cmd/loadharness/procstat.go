package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// defaultClockTicks is USER_HZ on every mainstream Linux build; used when
// getconf is unavailable.
const defaultClockTicks = 100

// clockTicks returns the kernel's clock ticks per second (CLK_TCK), the unit
// of utime and stime in /proc/PID/stat, and where the value came from.
func clockTicks(ctx context.Context) (int, string) {
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	out, err := exec.CommandContext(cctx, "getconf", "CLK_TCK").Output()
	if err == nil {
		if n, err := strconv.Atoi(strings.TrimSpace(string(out))); err == nil && n > 0 {
			return n, "getconf CLK_TCK"
		}
	}
	return defaultClockTicks, "default (getconf unavailable)"
}

// procStat is what the harness needs from /proc/PID/stat.
type procStat struct {
	PPID  int
	UTime uint64 // clock ticks in user mode, all threads
	STime uint64 // clock ticks in kernel mode, all threads
}

// parseProcStat parses the single line of /proc/PID/stat. The command name
// (field 2) is in parentheses and may itself contain spaces and
// parentheses, so fields are counted from the last ')'.
func parseProcStat(data []byte) (procStat, error) {
	end := bytes.LastIndexByte(data, ')')
	if end < 0 || bytes.IndexByte(data, '(') < 0 {
		return procStat{}, errors.New("proc stat: no (comm) field")
	}
	// After "comm)" come field 3 (state), 4 (ppid), ... 14 (utime), 15 (stime).
	fields := strings.Fields(string(data[end+1:]))
	const stateField, ppidField, utimeField, stimeField = 3, 4, 14, 15
	if len(fields) < stimeField-stateField+1 {
		return procStat{}, fmt.Errorf("proc stat: %d fields after comm; want at least %d", len(fields), stimeField-stateField+1)
	}
	field := func(n int) string { return fields[n-stateField] }
	ppid, err := strconv.Atoi(field(ppidField))
	if err != nil {
		return procStat{}, fmt.Errorf("proc stat: ppid: %w", err)
	}
	utime, err := strconv.ParseUint(field(utimeField), 10, 64)
	if err != nil {
		return procStat{}, fmt.Errorf("proc stat: utime: %w", err)
	}
	stime, err := strconv.ParseUint(field(stimeField), 10, 64)
	if err != nil {
		return procStat{}, fmt.Errorf("proc stat: stime: %w", err)
	}
	return procStat{PPID: ppid, UTime: utime, STime: stime}, nil
}

// rssKiB is the resident set of a process, or the sum over a process tree,
// from /proc/PID/status, in KiB. Total is the headline figure; Anon and File
// show how much of it is the process's own memory (heap, stacks, buffers:
// what grows with connections) and how much is mapped files (the binary's
// code and read-only data, libraries). Anon and File are 0 on kernels
// before 4.5, which lack the RssAnon and RssFile lines.
type rssKiB struct {
	Total uint64 // VmRSS
	Anon  uint64 // RssAnon
	File  uint64 // RssFile + RssShmem
}

// parseStatusRSS reads VmRSS, RssAnon, RssFile and RssShmem from
// /proc/PID/status. RssShmem (shared memory, tmpfs) is folded into File:
// like file pages it is page cache that other processes may map too, and
// VmRSS = RssAnon + RssFile + RssShmem. A missing VmRSS is an error; a
// missing Rss* line is not (older kernels), it leaves its figure 0.
func parseStatusRSS(data []byte) (rssKiB, error) {
	var r rssKiB
	haveTotal := false
	for line := range strings.Lines(string(data)) {
		name, rest, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		var dst *uint64
		switch name {
		case "VmRSS":
			dst, haveTotal = &r.Total, true
		case "RssAnon":
			dst = &r.Anon
		case "RssFile", "RssShmem":
			dst = &r.File
		default:
			continue
		}
		f := strings.Fields(rest)
		if len(f) != 2 || f[1] != "kB" {
			return rssKiB{}, fmt.Errorf("proc status: malformed %s line %q", name, strings.TrimSpace(line))
		}
		kib, err := strconv.ParseUint(f[0], 10, 64)
		if err != nil {
			return rssKiB{}, fmt.Errorf("proc status: %s: %w", name, err)
		}
		*dst += kib
	}
	if !haveTotal {
		return rssKiB{}, errors.New("proc status: no VmRSS line (kernel thread or zombie?)")
	}
	return r, nil
}

// processTree returns root and all its live descendants, found by scanning
// /proc for parent links. nginx's worker is a child of its master, and a
// process's own stat counts only itself (children count in cutime only once
// reaped), so the proxy's cost is the sum over its tree.
func processTree(root int) ([]int, error) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil, err
	}
	kids := make(map[int][]int)
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		data, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue // exited while scanning
		}
		st, err := parseProcStat(data)
		if err != nil {
			continue
		}
		kids[st.PPID] = append(kids[st.PPID], pid)
	}
	tree := []int{root}
	for i := 0; i < len(tree); i++ {
		tree = append(tree, kids[tree[i]]...)
	}
	return tree, nil
}

// cpuTicks is a process tree's CPU time in clock ticks, in user and in
// kernel mode.
type cpuTicks struct {
	User, System uint64
}

func (c cpuTicks) total() uint64 { return c.User + c.System }

// treeCPUTicks returns the utime and stime of root and all its descendants
// (a process that exits between the listing and the read is skipped; root
// itself must be readable).
func treeCPUTicks(root int) (cpuTicks, error) {
	tree, err := processTree(root)
	if err != nil {
		return cpuTicks{}, err
	}
	var total cpuTicks
	for i, pid := range tree {
		data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			if i == 0 {
				return cpuTicks{}, fmt.Errorf("pid %d: %w", pid, err)
			}
			continue
		}
		st, err := parseProcStat(data)
		if err != nil {
			return cpuTicks{}, fmt.Errorf("pid %d: %w", pid, err)
		}
		total.User += st.UTime
		total.System += st.STime
	}
	return total, nil
}

// treeRSSKiB sums VmRSS, and its anonymous and file-backed parts, over
// root's process tree (shared pages between an nginx master and worker are
// counted twice, as ps would).
func treeRSSKiB(root int) (rssKiB, error) {
	tree, err := processTree(root)
	if err != nil {
		return rssKiB{}, err
	}
	var total rssKiB
	for i, pid := range tree {
		data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
		if err != nil {
			if i == 0 {
				return rssKiB{}, fmt.Errorf("pid %d: %w", pid, err)
			}
			continue
		}
		r, err := parseStatusRSS(data)
		if err != nil {
			return rssKiB{}, fmt.Errorf("pid %d: %w", pid, err)
		}
		total.Total += r.Total
		total.Anon += r.Anon
		total.File += r.File
	}
	return total, nil
}

// parseCPUBusy reads the aggregate "cpu" line of /proc/stat and returns the
// busy clock ticks summed over all CPUs (user, nice, system, irq, softirq,
// steal; guest time is already inside user). It lets the harness tell how
// much CPU other work on the machine took during a run.
func parseCPUBusy(data []byte) (uint64, error) {
	line, _, _ := bytes.Cut(data, []byte("\n"))
	f := strings.Fields(string(line))
	if len(f) < 9 || f[0] != "cpu" {
		return 0, errors.New("proc stat: no aggregate cpu line with 8 counters")
	}
	var busy uint64
	for i, name := range []string{"user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal"} {
		v, err := strconv.ParseUint(f[i+1], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("proc stat: cpu %s: %w", name, err)
		}
		if name != "idle" && name != "iowait" {
			busy += v
		}
	}
	return busy, nil
}

// machineBusyTicks returns parseCPUBusy of the live /proc/stat.
func machineBusyTicks() (uint64, error) {
	data, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, err
	}
	return parseCPUBusy(data)
}
