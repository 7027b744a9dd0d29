package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// perSourceAddr is how many connections are opened from each 127.0.0.x
// source address: well under the ~28k ephemeral ports one address has
// towards one destination.
const perSourceAddr = 20000

// raiseFileLimitTo tries to lift both descriptor limits to n (root can
// raise the hard one), falling back to raiseFileLimit's soft = hard.
// Children started afterwards inherit it.
func raiseFileLimitTo(n uint64) uint64 {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0
	}
	if lim.Max < n {
		want := syscall.Rlimit{Cur: n, Max: n}
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &want); err == nil {
			return n
		}
	}
	raiseFileLimit()
	_ = syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim)
	return lim.Cur
}

// idleResult is one target's idle-connection memory figures.
type idleResult struct {
	Target string `json:"target"`
	Wanted int    `json:"wanted"`
	Opened int    `json:"opened"`
	// OpenAfter is how many of them were still open when RSS was read
	// (OpenHeld: after -idle-hold); the per-connection figures divide by
	// it, since a server that closed some holds no memory for them.
	OpenAfter    int     `json:"open_after"`
	OpenHeld     int     `json:"open_held,omitempty"`
	StopReason   string  `json:"stop_reason,omitempty"`
	RSSBeforeKiB uint64  `json:"rss_before_kib"`
	RSSAfterKiB  uint64  `json:"rss_after_kib"`
	KiBPerConn   float64 `json:"kib_per_conn"` // from VmRSS (the RSS figures), not the anonymous part
	// The anonymous part of RSSBeforeKiB and RSSAfterKiB (rssKiB).
	RSSAnonBeforeKiB uint64 `json:"rss_anon_before_kib"`
	RSSAnonAfterKiB  uint64 `json:"rss_anon_after_kib"`
	// With -idle-hold: the same after the connections idled that long.
	HeldSec        float64 `json:"held_sec,omitempty"`
	RSSHeldKiB     uint64  `json:"rss_held_kib,omitempty"`
	RSSAnonHeldKiB uint64  `json:"rss_anon_held_kib,omitempty"`
	KiBPerConnHeld float64 `json:"kib_per_conn_held,omitempty"`
	// RSSError is why a reading failed; the figures it would have given
	// are then absent (printed as "?"), never zero.
	RSSError string `json:"rss_error,omitempty"`
	// Which readings succeeded.
	beforeOK, afterOK, heldOK bool
}

// fdReserve is how many descriptors the harness keeps for itself while
// it holds idle connections: reading /proc for the target's RSS opens
// files, and with none left every reading would fail.
const fdReserve = 64

// idleBudget is how many connections the harness can open with limit
// descriptors of which open are in use, keeping fdReserve: want, or less
// when the limit is lower (then limited is true).
func idleBudget(want int, limit uint64, open int) (n int, limited bool) {
	free := int64(limit) - int64(open) - fdReserve
	if free < 0 {
		free = 0
	}
	if int64(want) <= free {
		return want, false
	}
	return int(free), true
}

// descriptorLimit is the soft descriptor limit and how many descriptors
// the process has open; ok is false when either is unknown.
func descriptorLimit() (limit uint64, open int, ok bool) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0, 0, false
	}
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return 0, 0, false
	}
	return lim.Cur, len(fds), true
}

// measureIdle opens n keep-alive connections to each target, one request
// each (so every connection has served a request and sits idle between
// requests, as a real client's would), waits for the target to settle,
// and reports its RSS growth per connection. Connections come from
// several 127.0.0.x source addresses. It stops early, and says why, when
// the machine refuses more (descriptor limits, ports, memory).
//
// With hold > 0 the connections then stay open and idle that much longer
// and RSS is read again: a Go server shrinks the stacks of goroutines
// blocked on idle connections only at a garbage collection, and an idle
// process collects only when the runtime forces it (every two minutes),
// so the first reading shows the stacks as the last request left them.
func measureIdle(ctx context.Context, targets []*target, n int, hold time.Duration) []idleResult {
	var out []idleResult
	for _, t := range targets {
		if ctx.Err() != nil {
			break
		}
		out = append(out, idleOne(ctx, t, n, hold))
	}
	return out
}

func idleOne(ctx context.Context, t *target, n int, hold time.Duration) idleResult {
	r := idleResult{Target: t.name, Wanted: n}
	u, err := url.Parse(t.url)
	if err != nil {
		r.StopReason = err.Error()
		return r
	}
	// A reading that fails leaves its figures out and says why; a zero
	// would read as a process that grew by nothing.
	read := func(what string) (rssKiB, bool) {
		rss, err := treeRSSKiB(t.proc.pid())
		if err != nil {
			if r.RSSError == "" {
				r.RSSError = fmt.Sprintf("RSS %s: %v", what, err)
			}
			return rssKiB{}, false
		}
		return rss, true
	}
	settle := func(what string) (rssKiB, bool) {
		time.Sleep(2 * time.Second) // lets the target finish its bookkeeping; not a measurement
		return read(what)
	}
	before, okBefore := settle("before")
	r.beforeOK = okBefore
	r.RSSBeforeKiB, r.RSSAnonBeforeKiB = before.Total, before.Anon
	// The harness holds one descriptor per connection: past its own
	// limit the run would stop with no descriptor left to read the
	// target's RSS, so it stops short of it and says so.
	limitStop := ""
	if limit, open, ok := descriptorLimit(); ok {
		if budget, limited := idleBudget(n, limit, open); limited {
			n = budget
			limitStop = fmt.Sprintf("the harness's descriptor limit (%d; %d kept for its own reads)", limit, fdReserve)
		}
	}
	// Several dialers at once: one at a time, a loaded machine opens only
	// a few hundred connections a second.
	const workers = 32
	var (
		mu    sync.Mutex
		conns = make([]net.Conn, 0, n)
		next  int
		stop  string
		wg    sync.WaitGroup
	)
	defer func() {
		for _, c := range conns {
			// An abortive close: a normal one would leave each
			// connection's port in TIME_WAIT for a minute, and the next
			// target's dials from the same source addresses would find
			// none free ("address already in use").
			if tc, ok := c.(*net.TCPConn); ok {
				_ = tc.SetLinger(0)
			}
			c.Close()
		}
	}()
	claim := func() (int, bool) {
		mu.Lock()
		defer mu.Unlock()
		if stop != "" || next >= n || ctx.Err() != nil {
			return 0, false
		}
		next++
		return next - 1, true
	}
	req := []byte("GET / HTTP/1.1\r\nHost: bench\r\nUser-Agent: idle\r\n\r\n")
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			br := bufio.NewReaderSize(nil, 4096)
			for {
				i, ok := claim()
				if !ok {
					return
				}
				c, err := openIdle(ctx, u.Host, i, req, br)
				mu.Lock()
				if err != nil {
					if stop == "" {
						stop = fmt.Sprintf("connection %d: %v", i+1, err)
					}
				} else {
					conns = append(conns, c)
				}
				mu.Unlock()
			}
		}()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	for waiting := true; waiting; {
		select {
		case <-done:
			waiting = false
		case <-time.After(5 * time.Second):
			mu.Lock()
			logf("idle %s: %d connections open", t.name, len(conns))
			mu.Unlock()
		}
	}
	if stop == "" && len(conns) == n && n < r.Wanted {
		stop = limitStop
	}
	r.StopReason = stop
	r.Opened = len(conns)
	after, okAfter := settle("after")
	r.afterOK = okAfter
	r.RSSAfterKiB, r.RSSAnonAfterKiB = after.Total, after.Anon
	r.OpenAfter = stillOpen(conns)
	if okBefore && okAfter && r.OpenAfter > 0 && r.RSSAfterKiB > r.RSSBeforeKiB {
		r.KiBPerConn = float64(r.RSSAfterKiB-r.RSSBeforeKiB) / float64(r.OpenAfter)
	}
	if hold > 0 && r.Opened > 0 {
		logf("idle %s: holding %d connections for %s", t.name, r.Opened, hold)
		start := time.Now()
		select {
		case <-time.After(hold):
		case <-ctx.Done():
		}
		r.HeldSec = time.Since(start).Seconds()
		held, okHeld := read("held")
		r.heldOK = okHeld
		r.RSSHeldKiB, r.RSSAnonHeldKiB = held.Total, held.Anon
		r.OpenHeld = stillOpen(conns)
		if okBefore && okHeld && r.OpenHeld > 0 && r.RSSHeldKiB > r.RSSBeforeKiB {
			r.KiBPerConnHeld = float64(r.RSSHeldKiB-r.RSSBeforeKiB) / float64(r.OpenHeld)
		}
	}
	return r
}

// stillOpen counts the connections the target has not closed. A server
// may close idle connections to make room (nginx drops idle keep-alive
// connections once its worker_connections are in use) or on an idle
// timeout; a read with a short deadline times out on an open idle
// connection and ends (EOF, reset) at once on a closed one, whose end
// has already arrived. Open ones cost the deadline each, so it is short.
func stillOpen(conns []net.Conn) int {
	const workers = 32
	var (
		open atomic.Int64
		wg   sync.WaitGroup
		next atomic.Int64
	)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var b [1]byte
			for {
				i := int(next.Add(1)) - 1
				if i >= len(conns) {
					return
				}
				c := conns[i]
				_ = c.SetReadDeadline(time.Now().Add(2 * time.Millisecond))
				_, err := c.Read(b[:])
				_ = c.SetReadDeadline(time.Time{})
				// Bytes on an idle connection are unexpected, but it is open.
				if ne, ok := err.(net.Error); err == nil || ok && ne.Timeout() {
					open.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	return int(open.Load())
}

// openIdle opens connection i (source 127.0.0.x by i), sends one request
// and reads the whole answer, leaving the connection idle.
func openIdle(ctx context.Context, host string, i int, req []byte, br *bufio.Reader) (net.Conn, error) {
	src := &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(2+i/perSourceAddr))}
	d := net.Dialer{LocalAddr: src, Timeout: 5 * time.Second}
	c, err := d.DialContext(ctx, "tcp", host)
	if err != nil {
		return nil, err
	}
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write(req); err != nil {
		c.Close()
		return nil, err
	}
	br.Reset(c)
	res, err := http.ReadResponse(br, nil)
	if err == nil {
		_, err = io.Copy(io.Discard, res.Body)
		res.Body.Close()
	}
	if err != nil {
		c.Close()
		return nil, err
	}
	c.SetDeadline(time.Time{})
	return c, nil
}

// printIdle writes the table; the idle mode writes no JSON, so the table
// carries the anonymous part of the RSS after the connections opened.
func printIdle(results []idleResult) { writeIdle(os.Stdout, results) }

// writeIdle is printIdle's table. A figure whose reading failed is "?",
// and the reason is in the last column.
func writeIdle(w io.Writer, results []idleResult) {
	fmt.Fprintf(w, "\n%16s %8s %8s %8s %12s %12s %12s %10s %12s %8s %12s  %s\n", "target", "wanted", "opened", "open", "RSS before", "RSS after", "anon after", "KiB/conn", "RSS held", "open", "KiB/conn", "stopped by")
	for _, r := range results {
		perConn := "?"
		if r.beforeOK && r.afterOK {
			perConn = fmt.Sprintf("%.2f", r.KiBPerConn)
		}
		held := fmt.Sprintf("%12s %8s %12s", "-", "-", "-")
		if r.HeldSec > 0 {
			perHeld := "?"
			if r.beforeOK && r.heldOK {
				perHeld = fmt.Sprintf("%.2f", r.KiBPerConnHeld)
			}
			held = fmt.Sprintf("%12s %8d %12s", mib(r.RSSHeldKiB, r.heldOK), r.OpenHeld, fmt.Sprintf("%s @%.0fs", perHeld, r.HeldSec))
		}
		why := r.StopReason
		if r.RSSError != "" {
			if why != "" {
				why += "; "
			}
			why += r.RSSError
		}
		fmt.Fprintf(w, "%16s %8d %8d %8d %12s %12s %12s %10s %s  %s\n", r.Target, r.Wanted, r.Opened, r.OpenAfter,
			mib(r.RSSBeforeKiB, r.beforeOK), mib(r.RSSAfterKiB, r.afterOK), mib(r.RSSAnonAfterKiB, r.afterOK), perConn, held, why)
	}
}

// mib formats a reading in MiB, or "?" when it failed.
func mib(kib uint64, ok bool) string {
	if !ok {
		return "?"
	}
	return fmt.Sprintf("%.1f MiB", float64(kib)/1024)
}
