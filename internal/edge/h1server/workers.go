package h1server

import "sync"

// Connection goroutines are reused. A new goroutine starts with the
// runtime's smallest stack (2 KiB) and a request's path needs about
// 3 KiB (docs/performance.md, "Stack depth"), so a goroutine per
// connection copies its stack once, and is created and destroyed: with
// one request per connection (Connection: close) that was 8–9 % of the
// gateway's user CPU, against about 3 % for handing a connection to a
// waiting goroutine. A goroutine that is done with a connection (closed,
// parked idle, or hijacked and finished) waits for the next one,
// accepted or resuming from the idle poller, with the stack it grew.
//
// At most maxIdleWorkers wait; a waiting one holds no connection and,
// once the collector has shrunk it, a 2 KiB stack. The last to finish
// is the first to be handed a connection (its stack is the most likely
// to be in the cache). Close and Shutdown end the waiting ones.
const maxIdleWorkers = 64

// worker is a goroutine waiting for a connection on its own channel: a
// new one, or a parked one whose next request has begun to arrive; nil
// tells it to end.
type worker chan *conn

// workers are the server's waiting goroutines.
type workers struct {
	mu      sync.Mutex
	idle    []worker // a stack
	stopped bool
}

// start serves c on a waiting worker, or on a new goroutine.
func (s *Server) start(c *conn) {
	ws := &s.workers
	ws.mu.Lock()
	if n := len(ws.idle); n > 0 {
		w := ws.idle[n-1]
		ws.idle[n-1] = nil
		ws.idle = ws.idle[:n-1]
		ws.mu.Unlock()
		w <- c // buffered: never blocks
		return
	}
	ws.mu.Unlock()
	go c.work()
}

// work serves c, then the connections handed to it while it waits. Its
// frame is under every request's: the waiting is in a function of its
// own.
func (c *conn) work() {
	var w worker
	for c != nil {
		c.loop()
		c, w = c.s.next(w)
	}
}

// next waits, on w (made on first use), for the next connection while
// the server runs and fewer than maxIdleWorkers wait; nil when the
// worker is to end.
//
//go:noinline
func (s *Server) next(w worker) (*conn, worker) {
	if w == nil {
		w = make(worker, 1)
	}
	ws := &s.workers
	ws.mu.Lock()
	if ws.stopped || len(ws.idle) >= maxIdleWorkers {
		ws.mu.Unlock()
		return nil, w
	}
	ws.idle = append(ws.idle, w)
	ws.mu.Unlock()
	return <-w, w
}

// stopWorkers ends the waiting workers and keeps any from waiting
// again; busy ones end when their connection does.
func (s *Server) stopWorkers() {
	ws := &s.workers
	ws.mu.Lock()
	ws.stopped = true
	idle := ws.idle
	ws.idle = nil
	ws.mu.Unlock()
	for _, w := range idle {
		w <- nil
	}
}
