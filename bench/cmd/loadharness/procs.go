package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// stopGrace is how long a child gets between SIGTERM and SIGKILL. Portunus
// drains on SIGTERM (up to 30 s by spec), but after a run no request is in
// flight, so a few seconds is plenty; beyond that we stop waiting.
const stopGrace = 5 * time.Second

// child is one process the harness started. It runs in its own process
// group whose id is its PID, so stopping it also stops anything it forked
// (nginx workers) without touching any process the harness did not start.
type child struct {
	name    string
	cmd     *exec.Cmd
	logPath string
	done    chan struct{} // closed once Wait returned
	waitErr error         // valid after done is closed
}

// pid is the PID of the started program (taskset execs it, so the PID is
// the program's own, not taskset's).
func (c *child) pid() int { return c.cmd.Process.Pid }

func (c *child) exited() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// supervisor starts children and guarantees they are stopped: stopAll runs
// on every exit path of the harness (normal, error, SIGINT, deadline).
type supervisor struct {
	dir string // where child logs go
	pin pinning

	mu       sync.Mutex
	children []*child
}

// start launches argv with stdout and stderr appended to logPath, pinned to
// cpus when pinning is enabled and cpus is not empty.
func (s *supervisor) start(name, cpus, logPath string, argv ...string) (*child, error) {
	if len(argv) == 0 {
		return nil, errors.New("start: empty command")
	}
	if s.pin.Enabled && cpus != "" {
		argv = append([]string{s.pin.tasksetPath, "-c", cpus}, argv...)
	}
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	defer logf.Close() // the child holds its own descriptor after Start

	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout = logf
	cmd.Stderr = logf
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Setpgid: true,
		// If the harness dies without running its cleanup (SIGKILL), the
		// kernel still kills the direct child.
		Pdeathsig: syscall.SIGKILL,
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("%s: start %s: %w", name, argv[0], err)
	}
	c := &child{name: name, cmd: cmd, logPath: logPath, done: make(chan struct{})}
	go func() {
		c.waitErr = cmd.Wait()
		close(c.done)
	}()
	s.children = append(s.children, c)
	return c, nil
}

// stop ends one child's process group: SIGTERM, then SIGKILL after the
// grace period. It returns once the child has been reaped (or gave up after
// a bounded wait, which is reported).
func stop(c *child) error {
	pgid := c.pid()
	if !c.exited() {
		_ = syscall.Kill(-pgid, syscall.SIGTERM)
		select {
		case <-c.done:
		case <-time.After(stopGrace):
		}
	}
	// Also sweeps group members that outlived the leader (nginx workers).
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
	select {
	case <-c.done:
		return nil
	case <-time.After(stopGrace):
		return fmt.Errorf("%s (pid %d) did not exit after SIGKILL", c.name, pgid)
	}
}

// release stops one child (a no-op beyond sweeping its group if it has
// already exited) and forgets it, so that stopAll does not later signal a
// process group id that may by then belong to another program.
func (s *supervisor) release(c *child) error {
	err := stop(c)
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, k := range s.children {
		if k == c {
			s.children = append(s.children[:i], s.children[i+1:]...)
			break
		}
	}
	return err
}

// stopAll stops every child, newest first, and forgets them.
func (s *supervisor) stopAll() []error {
	s.mu.Lock()
	children := s.children
	s.children = nil
	s.mu.Unlock()
	var errs []error
	for i := len(children) - 1; i >= 0; i-- {
		if err := stop(children[i]); err != nil {
			errs = append(errs, err)
		}
	}
	return errs
}

// runToCompletion starts argv and waits for it, stopping it if ctx ends
// first. The combined output is in logPath. It returns the CPU time
// (user+system) the process used.
func (s *supervisor) runToCompletion(ctx context.Context, name, cpus, logPath string, argv ...string) (time.Duration, error) {
	c, err := s.start(name, cpus, logPath, argv...)
	if err != nil {
		return 0, err
	}
	select {
	case <-c.done:
		if c.waitErr != nil {
			return 0, fmt.Errorf("%s: %w\n%s", name, c.waitErr, tailFile(logPath, 15))
		}
		st := c.cmd.ProcessState
		return st.UserTime() + st.SystemTime(), nil
	case <-ctx.Done():
		_ = stop(c)
		return 0, fmt.Errorf("%s: %w", name, context.Cause(ctx))
	}
}

// waitForLine polls logPath until a line starting with prefix appears and
// returns the rest of that line; it fails early if the child exits.
func waitForLine(ctx context.Context, c *child, prefix string, timeout time.Duration) (string, error) {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		if data, err := os.ReadFile(c.logPath); err == nil {
			sc := bufio.NewScanner(bytes.NewReader(data))
			for sc.Scan() {
				if rest, ok := strings.CutPrefix(sc.Text(), prefix); ok {
					return strings.TrimSpace(rest), nil
				}
			}
		}
		if c.exited() {
			return "", fmt.Errorf("%s exited before it was ready (%v)\n%s", c.name, c.waitErr, tailFile(c.logPath, 15))
		}
		select {
		case <-ctx.Done():
			return "", context.Cause(ctx)
		case <-deadline.C:
			return "", fmt.Errorf("%s: no %q line within %s\n%s", c.name, prefix, timeout, tailFile(c.logPath, 15))
		case <-tick.C:
		}
	}
}

// tailFile returns the last n lines of a log, indented, for error messages.
func tailFile(path string, n int) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return "  (no log: " + err.Error() + ")"
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return "  | " + strings.Join(lines, "\n  | ")
}
