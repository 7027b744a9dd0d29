// Package h1 is a purpose-built HTTP/1.1 client for the gateway's plain
// http:// upstreams. It exists because net/http's Transport hands every
// request to a per-connection writer goroutine and reader goroutine over
// channels and allocates per request; a gateway forwarding small answers
// spends more CPU there than in everything else it does.
//
// The Client writes the request and reads the response on the caller's
// goroutine, over keep-alive connections pooled per target host, with
// bufio buffers taken from a sync.Pool while a request is in flight and
// given back while the connection idles (an idle connection holds no
// buffer and no goroutine).
//
// Framing is strict: a response with both Content-Length and
// Transfer-Encoding, with more than one or an invalid Content-Length, with
// a transfer coding other than "chunked", with bad chunking or with bytes
// after its end is an error, and its connection is closed.
//
// Everything it does not handle goes to the Fallback round tripper (the
// stdlib transport): https targets, Upgrade (WebSocket) and CONNECT
// requests, Expect: 100-continue, and URLs it would not write verbatim.
package h1

import (
	"context"
	"errors"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults for zero Options fields.
const (
	DefaultConnectTimeout         = 2 * time.Second
	DefaultIdleTimeout            = 90 * time.Second
	DefaultMaxIdlePerHost         = 1024
	DefaultMaxResponseHeaderBytes = 1 << 20
	// bufSize is the size of the pooled read and write buffers: a request
	// head and a small answer fit in one syscall each, and body reads of
	// this size or more bypass the buffer.
	bufSize = 4 << 10
	// maxInformational bounds the 1xx answers skipped before the final one.
	maxInformational = 8
	// maxStaleRedials bounds how many pooled connections one request may
	// find closed by the upstream before it gives up.
	maxStaleRedials = 3
)

// Options configures a Client. Zero values take the defaults above.
type Options struct {
	// Fallback serves every request the client does not handle. Required.
	Fallback http.RoundTripper
	// Dialer opens connections; nil = a net.Dialer with ConnectTimeout and
	// 30 s TCP keep-alive.
	Dialer *net.Dialer
	// ConnectTimeout bounds a dial.
	ConnectTimeout time.Duration
	// ResponseHeaderTimeout bounds the wait for the response head after the
	// request is written; 0 = no bound of the client's own (the request's
	// context still applies).
	ResponseHeaderTimeout time.Duration
	// IdleTimeout closes a pooled connection unused for this long.
	IdleTimeout time.Duration
	// MaxConnsPerHost bounds connections (in use + idle + dialing) per
	// host; requests beyond it wait for one. 0 = unbounded.
	MaxConnsPerHost int
	// MaxIdlePerHost bounds pooled idle connections per host.
	MaxIdlePerHost int
	// MaxResponseHeaderBytes bounds a response head (and trailer section).
	MaxResponseHeaderBytes int
}

// Client is an http.RoundTripper for HTTP/1.1 over plain TCP. It is safe
// for concurrent use.
type Client struct {
	opts     Options
	fallback http.RoundTripper
	dialer   *net.Dialer

	// hosts is a copy-on-write map: a request looks its host up with one
	// atomic load and no lock; a new host copies the map under mu.
	hosts  atomic.Pointer[map[string]*hostPool]
	mu     sync.Mutex
	closed bool
}

// New returns a client for opts.
func New(opts Options) *Client {
	if opts.Fallback == nil {
		panic("h1: Options.Fallback is nil")
	}
	if opts.ConnectTimeout <= 0 {
		opts.ConnectTimeout = DefaultConnectTimeout
	}
	if opts.IdleTimeout <= 0 {
		opts.IdleTimeout = DefaultIdleTimeout
	}
	if opts.MaxIdlePerHost <= 0 {
		opts.MaxIdlePerHost = DefaultMaxIdlePerHost
	}
	if opts.MaxResponseHeaderBytes <= 0 {
		opts.MaxResponseHeaderBytes = DefaultMaxResponseHeaderBytes
	}
	d := opts.Dialer
	if d == nil {
		d = &net.Dialer{Timeout: opts.ConnectTimeout, KeepAlive: 30 * time.Second}
	}
	c := &Client{opts: opts, fallback: opts.Fallback, dialer: d}
	m := map[string]*hostPool{}
	c.hosts.Store(&m)
	return c
}

// Handles reports whether the client sends req itself rather than handing
// it to the fallback.
func Handles(req *http.Request) bool {
	u := req.URL
	if u == nil || u.Scheme != "http" || u.Host == "" || u.Opaque != "" || u.User != nil {
		return false
	}
	switch req.Method {
	case http.MethodConnect:
		return false
	case "":
	default:
		if !validToken(req.Method) {
			return false
		}
	}
	h := req.Header
	if len(h["Upgrade"]) > 0 || len(h["Expect"]) > 0 {
		return false
	}
	for _, v := range h["Connection"] {
		if hasToken(v, "upgrade") {
			return false
		}
	}
	return true
}

// ErrDeadline is what RoundTripUntil returns when its deadline passes
// before the response head is complete.
var ErrDeadline = errors.New("h1: deadline passed before the response head")

// RoundTrip sends req and returns the response head; the body streams
// from the connection, which goes back to the pool when the body has been
// read to its end (or is closed with nothing left unread).
func (c *Client) RoundTrip(req *http.Request) (*http.Response, error) {
	return c.send(req, time.Time{}, false)
}

// RoundTripUntil is RoundTrip with a deadline for the response head
// (zero: none besides ResponseHeaderTimeout and the request's context):
// past it, the request fails with ErrDeadline. It spares a caller the
// context and timer a deadline would otherwise take per request. The
// deadline applies only to requests the client sends itself (Handles);
// the fallback gets the request as it is.
//
// It is meant for a caller whose context can end only because its client
// went away: a bodiless request is then not watched by a context watcher
// of its own but looked at every pollSlice while it waits for the head
// (see conn.roundTrip), so its end is noticed up to pollSlice late.
// RoundTrip watches every request's context and notices at once.
func (c *Client) RoundTripUntil(req *http.Request, until time.Time) (*http.Response, error) {
	return c.send(req, until, true)
}

// send is RoundTrip and RoundTripUntil; poll allows the polled watch.
// It runs at the top of the deepest stack of a request (the round trip's
// I/O below it), so what only a failure needs is in resend and failed,
// off that stack.
func (c *Client) send(req *http.Request, until time.Time, poll bool) (*http.Response, error) {
	if !Handles(req) {
		return c.fallback.RoundTrip(req)
	}
	hp := c.hostPool(req.URL.Host)
	replay := replayable(req)
	for attempt := 0; ; attempt++ {
		cn, err := hp.get(req, until, replay && attempt == 0)
		if err == nil {
			var res *http.Response
			if res, err = cn.roundTrip(req, until, poll); err == nil {
				return res, nil
			}
			if replay && resend(req, err, attempt) {
				continue
			}
		}
		return nil, failed(req, err)
	}
}

// resend reports whether a request that failed with err on its attempt
// (from 0) is sent again. A pooled connection the upstream closed while
// it idled fails before any answer byte. Sending again is safe only when
// the upstream cannot have acted on the request: it has no body and an
// idempotent method (replayable, which the caller checked).
//
//go:noinline
func resend(req *http.Request, err error, attempt int) bool {
	_, stale := err.(*staleError) // as roundTrip returns it: never wrapped
	return stale && attempt < maxStaleRedials && req.Context().Err() == nil
}

// failed ends a request that gets no answer: its body is closed and a
// stale connection's error unwrapped.
//
//go:noinline
func failed(req *http.Request, err error) error {
	if se, ok := err.(*staleError); ok {
		err = se.err
	}
	closeBody(req)
	return err
}

// CloseIdleConnections closes every pooled idle connection.
func (c *Client) CloseIdleConnections() {
	for _, hp := range *c.hosts.Load() {
		hp.closeIdle()
	}
	if f, ok := c.fallback.(interface{ CloseIdleConnections() }); ok {
		f.CloseIdleConnections()
	}
}

// Close closes idle connections now and every other connection when its
// request ends; the client must not be used afterwards.
func (c *Client) Close() {
	c.mu.Lock()
	c.closed = true
	hosts := *c.hosts.Load()
	c.mu.Unlock()
	for _, hp := range hosts {
		hp.shutdown()
	}
	c.CloseIdleConnections()
}

// Stats are counters of one host's connections, for tests and the admin
// view.
type Stats struct {
	Open, Idle, Dials int
}

// HostStats returns the counters of the connections to host ("h:port" as
// in the request URL).
func (c *Client) HostStats(host string) Stats {
	hp := (*c.hosts.Load())[host]
	if hp == nil {
		return Stats{}
	}
	hp.mu.Lock()
	defer hp.mu.Unlock()
	return Stats{Open: hp.open, Idle: len(hp.idle), Dials: hp.dials}
}

func (c *Client) hostPool(host string) *hostPool {
	if hp := (*c.hosts.Load())[host]; hp != nil {
		return hp
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	old := *c.hosts.Load()
	if hp := old[host]; hp != nil {
		return hp
	}
	hp := newHostPool(c, host)
	if c.closed {
		hp.shutdown()
	}
	m := make(map[string]*hostPool, len(old)+1)
	for k, v := range old {
		m[k] = v
	}
	m[host] = hp
	c.hosts.Store(&m)
	return hp
}

func closeBody(req *http.Request) {
	if req.Body != nil {
		req.Body.Close()
	}
}

// replayable reports whether req may be sent again after a pooled
// connection failed before answering.
func replayable(req *http.Request) bool {
	if req.Body != nil && req.Body != http.NoBody {
		return false
	}
	switch req.Method {
	case "", http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace, http.MethodPut, http.MethodDelete:
		return true
	}
	return false
}

// staleError marks a failure on a reused connection before any byte of
// the answer arrived.
type staleError struct{ err error }

func (e *staleError) Error() string { return e.err.Error() }
func (e *staleError) Unwrap() error { return e.err }

// canceled returns the error a request whose context ended should fail
// with: the context's cause, as the stdlib transport does.
func canceled(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return context.Cause(ctx)
	}
	return err
}
