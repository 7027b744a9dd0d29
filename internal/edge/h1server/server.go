// Package h1server is the HTTP/1.x server of plain (cleartext) listeners.
//
// net/http's server is hardened and general, and most of it stays in use:
// requests are parsed by http.ReadRequest (the same parser, header and
// framing rules as net/http's own server), TLS listeners and HTTP/2 keep
// http.Server. What this package replaces is the machinery around the
// parser, which measured as the largest cost left on the gateway's hot
// path, and the memory an idle connection holds:
//
//   - the common, plainly well-formed head (no body, origin-form target
//     needing no unescaping, nothing ReadRequest would rewrite) is read
//     in place from the read buffer with three allocations (head.go);
//     everything else goes to http.ReadRequest, and a differential fuzz
//     test holds the two to the same request;
//   - no goroutine per request watching the connection: a request's
//     context starts a background read only when someone asks for its
//     Done channel (or registers an AfterFunc, or derives a context);
//     Err alone answers with one non-blocking MSG_PEEK, at most every
//     100 ms (the upstream client polls Err while it waits);
//   - the response head is written straight into a pooled buffered
//     writer at WriteHeader, Content-Length computed for short answers,
//     chunked framing otherwise; fewer deadline updates per request;
//   - a keep-alive connection idle for two seconds gives up its read
//     buffer and its goroutine: on Linux it waits in one epoll set for
//     the process (idlepoll_linux.go) and gets a goroutine again when its
//     next request begins;
//   - goroutines are reused: one done with a connection waits for the
//     next (workers.go) instead of ending, so a connection does not pay
//     for a goroutine's creation and first stack growth.
//
// Behaviour is net/http's where the gateway relies on it (the package
// tests compare the two on the same raw requests), with deliberate
// differences: errors before the handler runs are problem+json bodies;
// a response without Content-Type is not sniffed (a proxy must not
// invent one); header fields are written in map order; an HTTP/1.1
// request without a Host field, or with an empty one, is refused even
// in absolute form; empty lines before any request line are skipped; an
// HTTP/2 preface gets 505; Expect: 100-continue is removed from the
// request's header once the server has taken it over; answers up to
// 4 KiB without Content-Length get one. A request's context carries no
// values (http.ServerContextKey and http.LocalAddrContextKey are nil);
// nothing in the gateway reads them.
package h1server

import (
	"context"
	"errors"
	"log"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Server serves HTTP/1.0 and HTTP/1.1 on the listeners given to Serve.
// Its fields must not change once Serve has been called.
type Server struct {
	Handler http.Handler
	// ReadHeaderTimeout bounds the request head from its first byte.
	ReadHeaderTimeout time.Duration
	// IdleTimeout bounds the wait for the next request on a kept-alive
	// connection (ReadHeaderTimeout when zero; no bound when both are).
	IdleTimeout time.Duration
	// WriteTimeout bounds the writing of each response, from the end of
	// its request head.
	WriteTimeout time.Duration
	// MaxHeaderBytes bounds the request line and header fields
	// (http.DefaultMaxHeaderBytes when zero), with net/http's 4 KiB of
	// slack: the exact limit is the handler's to enforce.
	MaxHeaderBytes int
	// ConnState, when set, is told of every connection's state changes
	// as net/http's server reports them.
	ConnState func(net.Conn, http.ConnState)
	ErrorLog  *log.Logger

	inShutdown atomic.Bool
	workers    workers
	mu         sync.Mutex
	listeners  map[*net.Listener]struct{}
	conns      map[*conn]struct{}
}

// Serve accepts connections on ln until Shutdown or Close, and returns
// http.ErrServerClosed then (or the listener's error).
func (s *Server) Serve(ln net.Listener) error {
	if !s.trackListener(&ln, true) {
		return http.ErrServerClosed
	}
	defer s.trackListener(&ln, false)
	var delay time.Duration
	for {
		rw, err := ln.Accept()
		if err != nil {
			if s.inShutdown.Load() {
				return http.ErrServerClosed
			}
			if retryableAccept(err) {
				if delay == 0 {
					delay = 5 * time.Millisecond
				} else if delay *= 2; delay > time.Second {
					delay = time.Second
				}
				s.logf("h1server: accept error: %v; retrying in %v", err, delay)
				time.Sleep(delay)
				continue
			}
			return err
		}
		delay = 0
		c := newConn(s, rw)
		if !s.trackConn(c, true) {
			// Close or Shutdown began while this one was accepted.
			_ = rw.Close()
			return http.ErrServerClosed
		}
		c.setState(http.StateNew)
		s.start(c)
	}
}

// retryableAccept reports accept errors that pass (descriptor
// exhaustion, a connection aborted before it was accepted).
func retryableAccept(err error) bool {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return true
	}
	return errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) ||
		errors.Is(err, syscall.ECONNABORTED) || errors.Is(err, syscall.ENOBUFS) ||
		errors.Is(err, syscall.ENOMEM)
}

func (s *Server) trackListener(ln *net.Listener, add bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if add {
		if s.inShutdown.Load() {
			return false
		}
		if s.listeners == nil {
			s.listeners = make(map[*net.Listener]struct{})
		}
		s.listeners[ln] = struct{}{}
		return true
	}
	delete(s.listeners, ln)
	return true
}

// trackConn adds or removes c; adding fails once the server closes
// (checked under the lock Close and Shutdown take, so a connection is
// either closed by them or never served).
func (s *Server) trackConn(c *conn, add bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if add {
		if s.inShutdown.Load() {
			return false
		}
		if s.conns == nil {
			s.conns = make(map[*conn]struct{})
		}
		s.conns[c] = struct{}{}
		return true
	}
	delete(s.conns, c)
	return true
}

// closeListeners closes every listener; called with s.mu held.
func (s *Server) closeListeners() error {
	var err error
	for ln := range s.listeners {
		if cerr := (*ln).Close(); cerr != nil && err == nil {
			err = cerr
		}
	}
	return err
}

// Close closes the listeners and every connection at once.
func (s *Server) Close() error {
	s.inShutdown.Store(true)
	s.stopWorkers()
	s.mu.Lock()
	defer s.mu.Unlock()
	err := s.closeListeners()
	var parked []*conn
	for c := range s.conns {
		if c.unparkToClose() {
			parked = append(parked, c)
		} else {
			_ = c.rwc.Close()
		}
		delete(s.conns, c)
	}
	s.mu.Unlock()
	for _, c := range parked {
		c.closeParked()
	}
	s.mu.Lock()
	return err
}

// shutdownPoll bounds how often Shutdown looks for connections that
// became idle.
const shutdownPollMax = 500 * time.Millisecond

// Shutdown stops accepting, closes idle connections, and waits for the
// others to finish their current request (each closes after it) until
// ctx ends, when it returns ctx's error and leaves them to Close.
func (s *Server) Shutdown(ctx context.Context) error {
	s.inShutdown.Store(true)
	s.stopWorkers()
	s.mu.Lock()
	err := s.closeListeners()
	s.mu.Unlock()

	poll := time.Millisecond
	t := time.NewTimer(poll)
	defer t.Stop()
	for {
		if s.closeIdle() {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
			// Jittered exponential back-off, like net/http.
			if poll *= 2; poll > shutdownPollMax {
				poll = shutdownPollMax
			}
			t.Reset(poll)
		}
	}
}

// closeIdle closes the connections waiting for a request and reports
// whether none is left.
func (s *Server) closeIdle() bool {
	var parked []*conn
	defer func() {
		// Parked connections have no goroutine to report their end.
		for _, c := range parked {
			c.closeParked()
		}
	}()
	s.mu.Lock()
	defer s.mu.Unlock()
	quiescent := true
	for c := range s.conns {
		st, unix := c.getState()
		// A new connection that sent nothing for 5 s counts as idle
		// (net/http's rule): it may never send a request.
		if st == http.StateNew && unix < time.Now().Unix()-5 {
			st = http.StateIdle
		}
		if st != http.StateIdle || unix == 0 {
			quiescent = false
			continue
		}
		if c.unparkToClose() {
			parked = append(parked, c)
		} else {
			_ = c.rwc.Close()
		}
		delete(s.conns, c)
	}
	return quiescent
}

func (s *Server) logf(format string, args ...any) {
	if s.ErrorLog != nil {
		s.ErrorLog.Printf(format, args...)
	} else {
		log.Printf(format, args...)
	}
}

func (s *Server) maxHeaderBytes() int64 {
	n := s.MaxHeaderBytes
	if n <= 0 {
		n = http.DefaultMaxHeaderBytes
	}
	return int64(n) + 4096
}
