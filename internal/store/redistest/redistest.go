// Package redistest starts throwaway redis-server processes for tests.
//
// Each server listens on a free loopback port, keeps nothing on disk and is
// stopped (by its own PID) when the test ends. Setting REDIS_URL makes Start
// use that server instead; tests must then keep to their own keys, which
// KeyPrefix provides. Without redis-server on PATH (or at
// /usr/bin/redis-server) tests skip, except under CI=true, where they fail.
package redistest

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

const (
	startTimeout = 10 * time.Second // per attempt, until the server answers PING
	stopTimeout  = 10 * time.Second // after SIGTERM, before SIGKILL
	portAttempts = 5                // fresh ports tried when one was taken meanwhile
)

var prefixSeq atomic.Int64

// KeyPrefix returns a key prefix unique to this test (and process), for
// tests that may run against a shared server set by REDIS_URL.
func KeyPrefix(t testing.TB) string {
	return fmt.Sprintf("portunus-test:%d:%d:%s:", os.Getpid(), prefixSeq.Add(1), t.Name())
}

// Start starts a throwaway redis-server for the test and stops it in
// t.Cleanup, returning its host:port. If REDIS_URL is set, its address is
// returned and nothing is started or flushed: use KeyPrefix for keys.
func Start(t testing.TB) (addr string) {
	t.Helper()
	if u := os.Getenv("REDIS_URL"); u != "" {
		a, err := addrFromURL(u)
		if err != nil {
			t.Fatalf("redistest: REDIS_URL: %v", err)
		}
		return a
	}
	return StartServer(t).Addr()
}

func addrFromURL(s string) (string, error) {
	u, err := url.Parse(s)
	if err != nil {
		return "", err
	}
	if u.Host == "" {
		return "", fmt.Errorf("no host in %q", s)
	}
	if u.Port() == "" {
		return net.JoinHostPort(u.Hostname(), "6379"), nil
	}
	return u.Host, nil
}

// Server is a redis-server owned by one test, which it may stop and
// restart mid-test (for example to check that clients recover).
type Server struct {
	t    testing.TB
	bin  string
	dir  string
	port int

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{} // closed when cmd has exited
	out  *syncBuffer
}

// StartServer starts a redis-server the test controls. It skips when
// REDIS_URL is set, since a shared server cannot be stopped.
func StartServer(t testing.TB) *Server {
	t.Helper()
	if os.Getenv("REDIS_URL") != "" {
		t.Skip("redistest: REDIS_URL is set; this test needs a server it can stop")
	}
	bin := findBinary()
	if bin == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("redistest: redis-server not found (required when CI=true)")
		}
		t.Skip("redistest: redis-server not found")
	}
	s := &Server{t: t, bin: bin, dir: t.TempDir()}
	var lastErr error
	for range portAttempts {
		port, err := freePort()
		if err != nil {
			t.Fatalf("redistest: free port: %v", err)
		}
		s.port = port
		if lastErr = s.start(); lastErr == nil {
			t.Cleanup(s.Stop)
			return s
		}
	}
	t.Fatalf("redistest: could not start redis-server: %v", lastErr)
	return nil
}

func findBinary() string {
	if p, err := exec.LookPath("redis-server"); err == nil {
		return p
	}
	if _, err := os.Stat("/usr/bin/redis-server"); err == nil {
		return "/usr/bin/redis-server"
	}
	return ""
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// Addr returns host:port.
func (s *Server) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port)) }

// start launches the process on s.port and waits until it answers PING.
func (s *Server) start() error {
	cmd := exec.Command(s.bin,
		"--port", strconv.Itoa(s.port),
		"--bind", "127.0.0.1",
		"--save", "",
		"--appendonly", "no",
		"--daemonize", "no",
		"--dir", s.dir,
	)
	out := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		return err
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()

	deadline := time.Now().Add(startTimeout)
	for {
		if err := ping(s.Addr()); err == nil {
			break
		}
		select {
		case <-done:
			return fmt.Errorf("redis-server exited early: %s", strings.TrimSpace(out.String()))
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			<-done
			return fmt.Errorf("redis-server did not answer PING within %s: %s", startTimeout, out.String())
		}
	}
	s.mu.Lock()
	s.cmd, s.done, s.out = cmd, done, out
	s.mu.Unlock()
	return nil
}

// Stop stops the server (SIGTERM, then SIGKILL) and waits for it to exit.
// Stopping a stopped server does nothing.
func (s *Server) Stop() {
	s.mu.Lock()
	cmd, done := s.cmd, s.done
	s.cmd, s.done = nil, nil
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(os.Interrupt)
	select {
	case <-done:
	case <-time.After(stopTimeout):
		_ = cmd.Process.Kill()
		<-done
	}
}

// Restart stops the server if it runs and starts it again on the same port.
// Data is not kept (nothing is saved).
func (s *Server) Restart() {
	s.t.Helper()
	s.Stop()
	var err error
	// The port is free again once the old process exited, unless another
	// process grabbed it meanwhile; retry briefly for TIME_WAIT-style hiccups.
	for range portAttempts {
		if err = s.start(); err == nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	s.t.Fatalf("redistest: restart on port %d: %v", s.port, err)
}

// ping sends one inline PING and expects +PONG.
func ping(addr string) error {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if strings.TrimSpace(line) != "+PONG" {
		return errors.New("unexpected reply " + strconv.Quote(line))
	}
	return nil
}

// syncBuffer collects the server's output for error messages.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.b.Len() > 64<<10 { // bounded: only the start matters for errors
		return len(p), nil
	}
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}
