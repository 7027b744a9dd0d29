//go:build linux

package proxy_test

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"syscall"
	"testing"
	"time"

	"github.com/portunus-gw/portunus/internal/config"
	"github.com/portunus-gw/portunus/internal/pipeline"
	"github.com/portunus-gw/portunus/internal/proxy"
)

// fullBacklog returns a loopback address whose listener never accepts
// and whose accept queue is full: the kernel drops new SYNs, so a dial
// to it neither succeeds nor is refused, it hangs until its timeout.
func fullBacklog(t *testing.T) string {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Close(fd) })
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Listen(fd, 0); err != nil { // the smallest queue
		t.Fatal(err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", sa.(*syscall.SockaddrInet4).Port)
	// Fill the queue: connections complete (the kernel accepts them
	// into the queue) until it is full; then a dial times out.
	for range 64 {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				return addr
			}
			t.Fatalf("filling the accept queue of %s: %v", addr, err)
		}
		t.Cleanup(func() { c.Close() })
	}
	t.Fatalf("the accept queue of %s never filled", addr)
	return ""
}

// TestConnectTimeout: a target that never completes the TCP handshake
// (a loopback listener with a full accept queue) costs a request its
// connect timeout, not the route's: the client gets 502
// upstream-unavailable once timeouts.connect has passed. A 504 would
// mean the route timeout (a minute here) ended the wait instead; a
// quick 502 that the dial was refused and this path was not exercised.
func TestConnectTimeout(t *testing.T) {
	t.Parallel()
	addr := fullBacklog(t)
	const connect = 300 * time.Millisecond
	pool := newPool(t, config.Upstream{Timeouts: config.UpstreamTimeouts{Connect: config.Duration(connect)}}, "http://"+addr)
	states := make(chan pipeline.State, 1)
	front := startFront(t, proxy.New(proxy.Config{Pool: pool, Timeout: time.Minute}), frontOpts{states: states})
	start := time.Now()
	res, body := do(t, front, mustRequest(t, http.MethodGet, front.URL+"/", nil))
	took := time.Since(start)
	checkProblem(t, res, body, http.StatusBadGateway, "upstream-unavailable")
	if took < connect {
		t.Errorf("answered after %v, before the %v connect timeout: the dial did not hang", took, connect)
	}
	if s := receiveState(t, states); s.Target != "http://"+addr || s.ErrorCode != "upstream-unavailable" {
		t.Errorf("state: Target %q ErrorCode %q; want http://%s, upstream-unavailable", s.Target, s.ErrorCode, addr)
	}
	t.Logf("502 after %v (connect timeout %v, route timeout 1m)", took.Round(time.Millisecond), connect)
}

// TestConnectTimeoutRetried: with a second target and retries, the
// target that never accepts costs one connect timeout and the request is
// answered by the other.
func TestConnectTimeoutRetried(t *testing.T) {
	t.Parallel()
	addr := fullBacklog(t)
	good, hits, _ := counting(t, 200, "ok")
	pool := newPool(t, config.Upstream{
		Timeouts: config.UpstreamTimeouts{Connect: config.Duration(200 * time.Millisecond)},
		Retries:  retries(1),
	}, "http://"+addr, good)
	front := startFront(t, proxy.New(proxy.Config{Pool: pool, Timeout: time.Minute}), frontOpts{})
	for i := range 4 {
		res, body := do(t, front, mustRequest(t, http.MethodGet, front.URL+"/", nil))
		if res.StatusCode != 200 || body != "ok" {
			t.Fatalf("request %d: %d %q; want the other target's 200", i, res.StatusCode, body)
		}
	}
	if hits.Load() != 4 {
		t.Errorf("the accepting target answered %d of 4", hits.Load())
	}
}
