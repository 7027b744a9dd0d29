package hygiene

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"time"
)

// WatchBody enforces body_read_timeout on r: every read of r's body must
// receive bytes within d, or it fails with a timeout (a net.Error whose
// Timeout() is true), which the proxy answers with 408 request-timeout and
// the connection closed. The deadline is armed only while the body is
// being read, so time the handler spends elsewhere (waiting on a policy,
// on the upstream's flow control) never counts against the client.
//
// It returns the request to serve (a shallow copy of r with the watched
// body) and a release func the caller runs once the handler returned.
// r is returned unchanged with a no-op release when d <= 0, r has no
// body, or r is a gRPC call over HTTP/2 (see isGRPCStream).
//
// Why the copy has its own context: when a connection read times out,
// net/http cancels the request's context as if the client had gone away,
// and the proxy would then record a 499 and answer nothing. The copy's
// context follows r's, except for a cancellation caused by this body's
// own read deadline, so the handler can still tell the client why.
func WatchBody(w http.ResponseWriter, r *http.Request, d time.Duration) (*http.Request, func()) {
	if d <= 0 || r.Body == nil || r.Body == http.NoBody || r.ContentLength == 0 || isGRPCStream(r) {
		return r, noop
	}
	b := &timedBody{rc: r.Body, ctl: http.NewResponseController(w), d: d}
	parent := r.Context()
	ctx, cancel := context.WithCancelCause(context.WithoutCancel(parent))
	stop := context.AfterFunc(parent, func() {
		if !b.expired() {
			cancel(context.Cause(parent))
		}
	})
	r2 := r.WithContext(ctx)
	r2.Body = b
	return r2, func() {
		stop()
		cancel(context.Canceled)
		b.disarm()
	}
}

func noop() {}

// isGRPCStream reports a gRPC call over HTTP/2. Its request body is a
// stream of messages that may legitimately pause for minutes (a
// bidirectional call waiting on the user); gRPC bounds it with its own
// deadline (grpc-timeout) and keepalives, and HTTP/2 flow control bounds
// what a stalled stream holds, so body_read_timeout does not apply.
func isGRPCStream(r *http.Request) bool {
	if r.ProtoMajor < 2 {
		return false
	}
	ct := r.Header["Content-Type"]
	return len(ct) > 0 && strings.HasPrefix(ct[0], "application/grpc") &&
		!strings.HasPrefix(ct[0], "application/grpc-web")
}

// timedBody renews the connection's read deadline before every read.
type timedBody struct {
	rc  io.ReadCloser
	ctl *http.ResponseController
	d   time.Duration
	// deadline is the armed deadline in Unix nanoseconds, 0 when none;
	// reading is set during a read of rc. Both are read by the context
	// callback on another goroutine.
	deadline atomic.Int64
	reading  atomic.Bool
	// timedOut is set when a read failed on the deadline, before
	// reading is cleared, so the callback sees one or the other.
	timedOut atomic.Bool
	// finished: rc returned EOF or an error; the deadline is disarmed
	// for good (net/http's own background read follows EOF and must
	// not inherit it).
	finished bool
}

func (b *timedBody) Read(p []byte) (int, error) {
	if b.finished {
		return b.rc.Read(p)
	}
	dl := time.Now().Add(b.d)
	if b.ctl.SetReadDeadline(dl) != nil {
		// Not supported by this connection: read without a deadline.
		b.finished = true
		return b.rc.Read(p)
	}
	b.deadline.Store(dl.UnixNano())
	b.reading.Store(true)
	n, err := b.rc.Read(p)
	if err != nil && err != io.EOF && (isTimeout(err) || time.Now().UnixNano() >= b.deadline.Load()) {
		// net/http reports some deadline expiries as other errors
		// ("unexpected EOF reading trailer"): whatever it says, a read
		// that failed once the deadline passed timed out.
		b.timedOut.Store(true)
		if !isTimeout(err) {
			err = &TimeoutError{Err: err}
		}
	}
	b.reading.Store(false)
	if err != nil {
		b.finished = true
		if !b.timedOut.Load() {
			b.disarm()
		}
	}
	return n, err
}

func (b *timedBody) Close() error { return b.rc.Close() }

// disarm clears the read deadline this body set.
func (b *timedBody) disarm() {
	if b.deadline.Swap(0) != 0 {
		_ = b.ctl.SetReadDeadline(time.Time{})
	}
}

// expired reports whether a read of the body is failing because its
// deadline passed (rather than because the client went away).
func (b *timedBody) expired() bool {
	if b.timedOut.Load() {
		return true
	}
	dl := b.deadline.Load()
	return dl != 0 && b.reading.Load() && time.Now().UnixNano() >= dl
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// TimeoutError is returned by a watched body's Read when body bytes
// stopped arriving for the timeout and net/http reported the expiry as
// some other error. It is a net.Error whose Timeout() is true.
type TimeoutError struct{ Err error }

func (e *TimeoutError) Error() string {
	return "hygiene: request body read timed out: " + e.Err.Error()
}

// Timeout reports true: the body read timed out.
func (e *TimeoutError) Timeout() bool { return true }

// Temporary reports false (net.Error).
func (e *TimeoutError) Temporary() bool { return false }

func (e *TimeoutError) Unwrap() error { return e.Err }
