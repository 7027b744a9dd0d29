// Package e2e runs the real portunus binary on real sockets.
package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

var (
	binary   string // the built portunus binary
	repoRoot string
)

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	wd, _ := os.Getwd()
	repoRoot = filepath.Clean(filepath.Join(wd, "..", ".."))
	dir, err := os.MkdirTemp("", "portunus-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	binary = filepath.Join(dir, "portunus")
	cmd := exec.Command("go", "build", "-o", binary, "./cmd/portunus")
	cmd.Dir = repoRoot
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "e2e: building portunus:", err)
		return 1
	}
	return m.Run()
}

// result is a finished command.
type result struct {
	code           int
	stdout, stderr string
}

// portunus runs the binary to completion.
func portunus(t *testing.T, args ...string) result {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Dir = repoRoot
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("portunus %v: %v", args, err)
	}
	return result{code, out.String(), errb.String()}
}

// server is a running `portunus run`.
type server struct {
	t    *testing.T
	cmd  *exec.Cmd
	mu   sync.Mutex
	logs []map[string]any
	raw  []string
	done chan struct{}
	code int
}

// startServer runs `portunus run -c path` and follows its JSON log.
func startServer(t *testing.T, path string) *server {
	t.Helper()
	cmd := exec.Command(binary, "run", "-c", path)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout = io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s := &server{t: t, cmd: cmd, done: make(chan struct{})}
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			var m map[string]any
			_ = json.Unmarshal([]byte(line), &m)
			s.mu.Lock()
			s.raw = append(s.raw, line)
			if m != nil {
				s.logs = append(s.logs, m)
			}
			s.mu.Unlock()
		}
		err := cmd.Wait()
		s.code = 0
		if ee, ok := err.(*exec.ExitError); ok {
			s.code = ee.ExitCode()
		}
		close(s.done)
	}()
	t.Cleanup(func() {
		select {
		case <-s.done:
		default:
			_ = syscall.Kill(cmd.Process.Pid, syscall.SIGKILL)
			<-s.done
		}
	})
	return s
}

// waitLog waits for a log line with msg and returns it.
func (s *server) waitLog(msg string, after int) (map[string]any, int) {
	s.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		s.mu.Lock()
		for i := after; i < len(s.logs); i++ {
			if s.logs[i]["msg"] == msg {
				m := s.logs[i]
				s.mu.Unlock()
				return m, i + 1
			}
		}
		s.mu.Unlock()
		select {
		case <-s.done:
			s.t.Fatalf("portunus exited (%d) before logging %q:\n%s", s.code, msg, s.log())
		case <-time.After(20 * time.Millisecond):
		}
	}
	s.t.Fatalf("no %q log line within 30s:\n%s", msg, s.log())
	return nil, 0
}

func (s *server) log() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return strings.Join(s.raw, "\n")
}

func (s *server) logCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.logs)
}

func (s *server) signal(sig syscall.Signal) {
	if err := s.cmd.Process.Signal(sig); err != nil {
		s.t.Fatal(err)
	}
}

// wait waits for exit and returns the code.
func (s *server) wait(d time.Duration) int {
	s.t.Helper()
	select {
	case <-s.done:
		return s.code
	case <-time.After(d):
		s.t.Fatalf("portunus did not exit within %v", d)
		return -1
	}
}
