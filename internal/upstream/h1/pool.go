package h1

import (
	"bufio"
	"context"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Buffers are lent to a connection for one request and returned when it
// goes idle, so idle connections cost no buffer memory.
var (
	readerPool = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, bufSize) }}
	writerPool = sync.Pool{New: func() any { return &writeBuf{Writer: *bufio.NewWriterSize(nil, bufSize)} }}
)

// hostPool holds the connections to one host. Its mutex is per host and
// held only to push or pop a connection, never across I/O.
type hostPool struct {
	c    *Client
	addr string // host:port to dial

	mu      sync.Mutex
	idle    []*conn // most recently used last
	open    int     // connections counted against MaxConnsPerHost
	dials   int     // connections ever dialed (tests, stats)
	waiters []chan *conn
	reaper  *time.Timer
	closed  bool
}

func newHostPool(c *Client, host string) *hostPool {
	addr := host
	if _, _, err := net.SplitHostPort(host); err != nil {
		// No port: the http default. A bracketed IPv6 literal keeps its
		// brackets.
		addr = strings.TrimSuffix(host, ":") + ":80"
	}
	return &hostPool{c: c, addr: addr}
}

// get returns a connection ready for req (lent at cn.lentAt): a pooled
// one that is still open, or a new one. With MaxConnsPerHost reached it
// waits for a connection to be released, for req's context, or until
// until (non-zero), failing with ErrDeadline then.
//
// replay says the request can be sent again on a new connection if this
// one turns out closed (no body, idempotent method): a connection such a
// request takes that was released less than probeAfter ago skips the
// liveness probe (one system call per request on a busy pool); one the
// upstream closed meanwhile fails before any answer byte and the
// request is sent again. Requests that cannot be replayed always probe.
func (hp *hostPool) get(req *http.Request, until time.Time, replay bool) (*conn, error) {
	for {
		hp.mu.Lock()
		if n := len(hp.idle); n > 0 {
			cn := hp.idle[n-1]
			hp.idle[n-1] = nil
			hp.idle = hp.idle[:n-1]
			hp.mu.Unlock()
			now := time.Now()
			// The read deadline left from the last request may have
			// passed while the connection idled; the liveness probe
			// would take that for a dead connection.
			probe := !replay || now.Sub(cn.idleAt) >= probeAfter
			if !cn.expired(now) && cn.cr.arm(now) == nil && (!probe || cn.alive()) {
				cn.lend(now)
				return cn, nil
			}
			cn.destroy()
			continue
		}
		max := hp.c.opts.MaxConnsPerHost
		if max <= 0 || hp.open < max {
			hp.open++
			hp.dials++
			hp.mu.Unlock()
			return hp.dial(req.Context(), until)
		}
		return hp.await(req.Context(), until)
	}
}

// await is get on a saturated host, called with hp.mu held: it waits for
// a released connection, or for a slot. Its select and timer stay off
// the stack of the common request.
//
//go:noinline
func (hp *hostPool) await(ctx context.Context, until time.Time) (*conn, error) {
	ch := make(chan *conn, 1)
	hp.waiters = append(hp.waiters, ch)
	hp.mu.Unlock()
	var expire <-chan time.Time
	if !until.IsZero() {
		t := time.NewTimer(time.Until(until))
		defer t.Stop()
		expire = t.C
	}
	var err error
	select {
	case cn := <-ch:
		if cn == nil {
			// A connection closed and handed us its slot.
			return hp.dial(ctx, until)
		}
		cn.lend(time.Now())
		return cn, nil
	case <-ctx.Done():
		err = context.Cause(ctx)
	case <-expire:
		err = ErrDeadline
	}
	hp.mu.Lock()
	for i, w := range hp.waiters {
		if w == ch {
			hp.waiters = append(hp.waiters[:i], hp.waiters[i+1:]...)
			break
		}
	}
	hp.mu.Unlock()
	// Something may have been handed over in the meantime: pass it
	// on rather than leak it.
	select {
	case cn := <-ch:
		if cn == nil {
			hp.slotFreed()
		} else {
			hp.put(cn)
		}
	default:
	}
	return nil, err
}

func (hp *hostPool) dial(ctx context.Context, until time.Time) (*conn, error) {
	d := hp.c.dialer
	if !until.IsZero() && (d.Deadline.IsZero() || until.Before(d.Deadline)) {
		dd := *d
		dd.Deadline = until
		d = &dd
	}
	nc, err := d.DialContext(ctx, "tcp", hp.addr)
	if err != nil {
		hp.slotFreed()
		if !until.IsZero() && ctx.Err() == nil && !time.Now().Before(until) {
			err = ErrDeadline
		}
		return nil, err
	}
	cn := newConn(hp, nc)
	cn.lend(time.Now())
	return cn, nil
}

// probeAfter is how long a connection may idle in the pool before even a
// replayable request probes it. Upstreams close idle connections after
// seconds (5 s is a common default), not within this.
const probeAfter = 500 * time.Millisecond

// put returns a healthy connection after a request: to a waiter, or to
// the idle stack.
func (hp *hostPool) put(cn *conn) {
	cn.giveBack()
	hp.mu.Lock()
	if len(hp.waiters) > 0 {
		ch := hp.waiters[0]
		hp.waiters = hp.waiters[1:]
		hp.mu.Unlock()
		ch <- cn
		return
	}
	if hp.closed || len(hp.idle) >= hp.c.opts.MaxIdlePerHost {
		hp.mu.Unlock()
		cn.destroy()
		return
	}
	cn.idleAt = time.Now()
	hp.idle = append(hp.idle, cn)
	if hp.reaper == nil {
		hp.reaper = time.AfterFunc(hp.c.opts.IdleTimeout, hp.reap)
	}
	hp.mu.Unlock()
}

// slotFreed is called when a counted connection is gone (closed, or its
// dial failed): its slot goes to a waiter, who dials.
func (hp *hostPool) slotFreed() {
	hp.mu.Lock()
	if len(hp.waiters) > 0 {
		ch := hp.waiters[0]
		hp.waiters = hp.waiters[1:]
		hp.mu.Unlock()
		ch <- nil
		return
	}
	hp.open--
	hp.mu.Unlock()
}

// reap closes idle connections past IdleTimeout and re-arms itself while
// any remain.
func (hp *hostPool) reap() {
	now := time.Now()
	var dead []*conn
	hp.mu.Lock()
	// The stack is ordered by idleAt, oldest first.
	n := 0
	for n < len(hp.idle) && hp.idle[n].expired(now) {
		n++
	}
	if n > 0 {
		dead = append(dead, hp.idle[:n]...)
		rest := copy(hp.idle, hp.idle[n:])
		clear(hp.idle[rest:])
		hp.idle = hp.idle[:rest]
	}
	if len(hp.idle) > 0 {
		next := hp.idle[0].idleAt.Add(hp.c.opts.IdleTimeout).Sub(now)
		hp.reaper = time.AfterFunc(max(next, time.Millisecond), hp.reap)
	} else {
		hp.reaper = nil
	}
	hp.mu.Unlock()
	for _, cn := range dead {
		cn.destroy()
	}
}

func (hp *hostPool) closeIdle() {
	hp.mu.Lock()
	dead := hp.idle
	hp.idle = nil
	hp.mu.Unlock()
	for _, cn := range dead {
		cn.destroy()
	}
}

// shutdown makes every connection released from now on close.
func (hp *hostPool) shutdown() {
	hp.mu.Lock()
	hp.closed = true
	hp.mu.Unlock()
}
