package h1server

import (
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// The idle poller holds keep-alive connections that have waited hotWait
// for their next request: one epoll set for the process, one goroutine
// waiting on it and one sweeping idle timeouts, instead of a parked
// goroutine (its stack) and a read buffer per connection. A connection
// whose next request begins is handed to a new goroutine.
//
// Ownership: a parked connection's park flag is 1. Whoever swaps it to
// 0 — the event loop (bytes or a close arrived), the sweeper (idle
// timeout) or the server (shutdown) — removes it from the epoll set
// before anything else may close its descriptor, so a descriptor number
// reused by a new connection is never touched.
type idlePoller struct {
	once sync.Once
	epfd int // -1 when epoll is unavailable
	// epf is epfd as a pollable file: the goroutine that waits for the
	// set's events waits in the runtime's network poller for epfd to be
	// readable (it is while events are ready), like a connection, and
	// holds no thread. A blocking epoll_wait would hold its thread's P
	// in the system call until sysmon takes it back (20 µs to 10 ms
	// later): on a one-CPU server, a stall of every request each time a
	// parked connection wakes.
	epf *os.File

	mu    sync.Mutex
	conns map[int32]*conn
	next  int32
}

var poller idlePoller

// sweepEvery is how often idle timeouts of parked connections are
// checked: they close up to this late.
const sweepEvery = time.Second

func (p *idlePoller) start() bool {
	p.once.Do(func() {
		p.epfd = -1
		fd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
		if err != nil {
			return
		}
		if syscall.SetNonblock(fd, true) != nil {
			_ = syscall.Close(fd)
			return
		}
		// A non-blocking descriptor: os.NewFile registers it with the
		// runtime's poller.
		p.epf = os.NewFile(uintptr(fd), "h1server-idle-poller")
		rc, err := p.epf.SyscallConn()
		if err != nil {
			_ = p.epf.Close()
			return
		}
		p.epfd = fd
		p.conns = make(map[int32]*conn)
		go p.wait(rc)
		go p.sweep()
	})
	return p.epfd >= 0
}

// park hands c to the idle poller until its next request begins or
// until passes (zero: no idle timeout). It reports false when c cannot
// be parked; c is then still the caller's.
func (c *conn) park(until time.Time) bool {
	c.rawOnce()
	if c.raw == nil || !poller.start() {
		return false
	}
	fd := -1
	if c.raw.Control(func(f uintptr) { fd = int(f) }) != nil || fd < 0 {
		return false
	}
	// A buffer left from a spurious wake-up is dropped, not pooled: a
	// pool would keep it until two collections pass.
	c.bufr = nil
	c.parkFD, c.parkUntil = fd, until
	c.parked.Store(1)
	if poller.add(c, fd) {
		return true
	}
	if c.parked.CompareAndSwap(1, 0) {
		return false // still without a buffer: awaitRequest takes one
	}
	return true // the server closed it meanwhile: it is theirs
}

// add registers c, whose descriptor is fd. The check that c is still
// parked, the registration and the map entry happen under p.mu, which
// unpark also takes: a server that took c back first (shutdown) is seen
// here, and an event for c waits until it is in the map. From the
// unlock on, c may be resumed (and parked again) by others: add touches
// none of its fields after it.
func (p *idlePoller) add(c *conn, fd int) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if c.parked.Load() != 1 {
		return true // the server took it meanwhile: it is theirs
	}
	for {
		p.next++
		if p.next <= 0 {
			p.next = 1
		}
		if _, used := p.conns[p.next]; !used {
			break
		}
	}
	id := p.next
	ev := syscall.EpollEvent{Events: syscall.EPOLLIN | syscall.EPOLLRDHUP | syscall.EPOLLONESHOT, Fd: id}
	if err := syscall.EpollCtl(p.epfd, syscall.EPOLL_CTL_ADD, fd, &ev); err != nil {
		return false
	}
	c.parkID = id
	p.conns[id] = c
	return true
}

// unpark takes c back from the poller; the caller has won c.parked.
func (p *idlePoller) unpark(c *conn) {
	p.mu.Lock()
	// c may never have been registered this time (the server took it
	// before add did): its id may be another connection's by now.
	if p.conns[c.parkID] == c {
		delete(p.conns, c.parkID)
	}
	c.parkID = 0
	p.mu.Unlock()
	_ = syscall.EpollCtl(p.epfd, syscall.EPOLL_CTL_DEL, c.parkFD, nil)
}

// unparkToClose is the server's way to close a parked connection
// (shutdown); false when c is not parked.
func (c *conn) unparkToClose() bool {
	if !c.parked.CompareAndSwap(1, 0) {
		return false
	}
	poller.unpark(c)
	return true
}

func (p *idlePoller) wait(rc syscall.RawConn) {
	events := make([]syscall.EpollEvent, 128)
	var n int
	var werr error
	// ready takes what is ready without blocking; nothing: wait for the
	// runtime's poller to report epfd readable, then take it.
	ready := func(fd uintptr) bool {
		n, werr = syscall.EpollWait(int(fd), events, 0)
		return n > 0 || (werr != nil && werr != syscall.EINTR && werr != syscall.EAGAIN)
	}
	for {
		if err := rc.Read(ready); err != nil || werr != nil {
			// Not expected; parked connections fall to the sweeper.
			time.Sleep(10 * time.Millisecond)
			continue
		}
		for i := range n {
			p.mu.Lock()
			c := p.conns[events[i].Fd]
			p.mu.Unlock()
			if c == nil || !c.parked.CompareAndSwap(1, 0) {
				continue
			}
			p.unpark(c)
			c.s.start(c)
		}
	}
}

func (p *idlePoller) sweep() {
	var expired []*conn
	for now := range time.Tick(sweepEvery) {
		p.mu.Lock()
		for _, c := range p.conns {
			if !c.parkUntil.IsZero() && now.After(c.parkUntil) {
				expired = append(expired, c)
			}
		}
		p.mu.Unlock()
		for i, c := range expired {
			if c.parked.CompareAndSwap(1, 0) {
				p.unpark(c)
				go c.closeParked()
			}
			expired[i] = nil
		}
		expired = expired[:0]
	}
}

// parkState is the idle poller's part of a connection.
type parkState struct {
	parked    atomic.Int32
	parkID    int32
	parkFD    int
	parkUntil time.Time
}
