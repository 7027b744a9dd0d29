package h1server

import (
	"context"
	"sync"
	"time"
)

// reqCtx is a request's context. It is cancelled when the client goes
// away and when the handler returns, like net/http's, but watches the
// connection only on demand:
//
//   - Done starts a background read (once the request body is consumed)
//     that notices the client leaving;
//   - Err, asked without Done, answers with one non-blocking peek at the
//     socket (the upstream client polls Err while it waits for an
//     answer), so a request nobody waits on costs no goroutine.
//
// It carries no values and no deadline.
type reqCtx struct {
	c *conn

	mu       sync.Mutex
	err      error
	done     chan struct{}
	watching bool // a background read watches the connection
	wantDone bool // Done was asked for before the body was consumed
	bodyDone bool // nothing of the request body is left to read
	funcs    map[*afterFunc]struct{}
	// checked is when the client was last known to be there (monotonic
	// nanoseconds since clockBase): the request's arrival, then each
	// peek. Err peeks at most once per peekEvery, so callers that look at
	// Err on every step of a fast request cost no system call.
	checked int64
	// started is when the request's head had been read (see Started).
	started time.Time
}

// clockBase anchors reqCtx.checked; the monotonic clock alone costs
// half a time.Now, and Err reads it a few times per request.
var clockBase = time.Now()

func monoSince() int64 { return int64(time.Since(clockBase)) }

// Started is when the server had read the request's head, as the
// server's own clock reading: a handler that times the request (the
// gateway) takes it from the context, which it reaches through an
// interface{ Started() time.Time }, instead of reading the clock again.
func (x *reqCtx) Started() time.Time { return x.started }

// begin starts the context of a request whose head has just been read.
func (x *reqCtx) begin(c *conn) {
	now := time.Now()
	x.c, x.started, x.checked = c, now, int64(now.Sub(clockBase))
}

// peekEvery bounds how often Err looks at the socket. A client that left
// is noticed within it (the upstream client polls Err every 200 ms while
// it waits).
const peekEvery = 100 * time.Millisecond

type afterFunc struct {
	f    func()
	once sync.Once
}

var closedChan = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

func (x *reqCtx) Deadline() (time.Time, bool) { return time.Time{}, false }
func (x *reqCtx) Value(any) any               { return nil }
func (x *reqCtx) String() string              { return "h1server.requestContext" }

func (x *reqCtx) Done() <-chan struct{} {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.done == nil {
		if x.err != nil {
			x.done = closedChan
			return x.done
		}
		x.done = make(chan struct{})
	}
	x.watchLocked()
	return x.done
}

// watchLocked starts the background read if the body allows it now, or
// asks for it when the body ends.
func (x *reqCtx) watchLocked() {
	if x.watching || x.err != nil || x.c.hijacked.Load() {
		// After a hijack the connection is its new owner's to read.
		return
	}
	if !x.bodyDone {
		x.wantDone = true
		return
	}
	x.watching = true
	x.c.cr.startBackgroundRead()
}

// bodyEnded is called when the request body has been read to its end.
func (x *reqCtx) bodyEnded() {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.bodyDone = true
	if x.wantDone {
		x.watchLocked()
	}
}

func (x *reqCtx) Err() error {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.err != nil || x.watching {
		return x.err
	}
	if !x.bodyDone || x.c.hijacked.Load() {
		// While the body is being read its reads report a departure.
		return nil
	}
	now := monoSince()
	if now-x.checked < int64(peekEvery) {
		return nil
	}
	x.checked = now
	alive, ok := x.c.alive()
	if !ok {
		// No raw access, or a deadline passed: watch instead.
		x.watching = true
		x.c.cr.startBackgroundRead()
		return nil
	}
	if !alive {
		x.cancelLocked(context.Canceled)
	}
	return x.err
}

// AfterFunc lets context.AfterFunc and derived contexts register without
// a goroutine of their own per registration.
func (x *reqCtx) AfterFunc(f func()) (stop func() bool) {
	a := &afterFunc{f: f}
	x.mu.Lock()
	if x.err != nil {
		x.mu.Unlock()
		a.once.Do(func() { go f() })
		return func() bool { return false }
	}
	if x.funcs == nil {
		x.funcs = make(map[*afterFunc]struct{})
	}
	x.funcs[a] = struct{}{}
	if x.done == nil {
		x.done = make(chan struct{})
	}
	x.watchLocked()
	x.mu.Unlock()
	return func() bool {
		stopped := false
		a.once.Do(func() { stopped = true })
		if stopped {
			x.mu.Lock()
			delete(x.funcs, a)
			x.mu.Unlock()
		}
		return stopped
	}
}

// clientGone cancels the context: the client left.
func (x *reqCtx) clientGone() {
	x.mu.Lock()
	x.cancelLocked(context.Canceled)
	x.mu.Unlock()
}

// cancel ends the context when the handler returns.
func (x *reqCtx) cancel() {
	x.mu.Lock()
	x.cancelLocked(context.Canceled)
	x.mu.Unlock()
}

func (x *reqCtx) cancelLocked(err error) {
	if x.err != nil {
		return
	}
	x.err = err
	if x.done != nil {
		close(x.done)
	} else {
		x.done = closedChan
	}
	for a := range x.funcs {
		a.once.Do(func() { go a.f() })
	}
	x.funcs = nil
}
