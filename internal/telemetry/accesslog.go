package telemetry

import (
	"bufio"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/portunus-gw/portunus/internal/config"
)

// Entry is one finished request as the access log records it. Query
// strings are never logged (they may carry API keys): Path is cut at '?'.
type Entry struct {
	Time             time.Time // when the request arrived; zero = now
	RequestID        string
	TraceID          string // of the request's server span; "" when not sampled
	SpanID           string
	ClientIP         string
	Method           string
	Host             string
	Path             string
	Proto            string
	Route            string
	Upstream         string
	Target           string
	Consumer         string
	AuthMethod       string // the auth method that authenticated the request
	AuthError        string // why authentication failed (never the credential)
	UserAgent        string
	Referer          string // combined format only
	Error            string
	Status           int
	BytesIn          int64
	BytesOut         int64
	Duration         time.Duration
	UpstreamDuration time.Duration
	CacheStatus      string // the response cache's outcome; "" when none applied
	RateLimit        string // the rate limiter's decision; "" when none applied
}

// The JSON format writes one object per line with exactly these keys, in
// this order (empty strings included, so every line has the same shape):
//
//	time         RFC 3339 with up to nanoseconds (trailing zeros trimmed),
//	             when the request arrived
//	request_id   X-Request-Id as sent upstream and echoed to the client
//	trace_id, span_id   the request's server span (hex), "" when the
//	             request was not sampled for tracing (or tracing is off)
//	client_ip    the client address (after trusted-proxy resolution)
//	method, host, path (no query string), proto ("HTTP/1.1")
//	route        the matched route's name ("" when none matched)
//	upstream     the upstream pool's name; target the target URL host
//	consumer     the authenticated consumer ("" when anonymous)
//	auth_method  the method that authenticated it: api_key, basic, mtls,
//	             jwt:NAME, oauth2:NAME, forward:NAME ("" when anonymous)
//	auth_error   why authentication failed ("" otherwise; never a secret)
//	user_agent
//	status       the status sent to the client
//	bytes_in, bytes_out   body bytes read from the client / written to it
//	duration_ms  total time, milliseconds with fractions
//	upstream_ms  time spent waiting on the upstream, milliseconds
//	cache_status the response cache's outcome ("" when no cache applied)
//	rate_limit   the rate limiter's decision ("" when no limit applied)
//	error        why the gateway failed the request, if it did
//
// The combined format has no place for the added fields and stays the
// standard Apache line.
const (
	flushInterval = time.Second
	bufferSize    = 64 << 10
	maxPooledLine = 16 << 10
)

// AccessLog writes one line per request through a buffered writer flushed
// every second and on Close, so a burst costs no syscall per line.
type AccessLog struct {
	off      bool
	combined bool
	sample   float64 // share of successes logged, 0..1

	w     *lockedWriter
	lines sync.Pool // *[]byte, one line, reused between lines

	closer io.Closer // the file, when we opened one
	stop   chan struct{}
	done   chan struct{}
	once   sync.Once
}

// NewAccessLog opens the log cfg describes: path stdout (default), stderr,
// off, or a file (appended to, created 0640); format json (default) or combined.
func NewAccessLog(cfg config.AccessLog) (*AccessLog, error) {
	a := &AccessLog{sample: 1, stop: make(chan struct{}), done: make(chan struct{})}
	if cfg.SampleSuccess != nil {
		a.sample = min(max(*cfg.SampleSuccess, 0), 1)
	}
	switch cfg.Format {
	case "", "json":
	case "combined":
		a.combined = true
	default:
		return nil, fmt.Errorf("telemetry: access log format %q (want json or combined)", cfg.Format)
	}
	var out io.Writer
	switch cfg.Path {
	case "", "stdout":
		out = os.Stdout
	case "stderr":
		out = os.Stderr
	case "off":
		a.off = true
		close(a.done)
		return a, nil
	default:
		f, err := os.OpenFile(cfg.Path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
		if err != nil {
			return nil, fmt.Errorf("telemetry: access log: %w", err)
		}
		out, a.closer = f, f
	}
	a.w = &lockedWriter{bw: bufio.NewWriterSize(out, bufferSize)}
	a.lines.New = func() any { b := make([]byte, 0, 512); return &b }
	go a.flushLoop()
	return a, nil
}

// Enabled reports whether Log writes anything ("off" does not), so a
// caller can skip building entries.
func (a *AccessLog) Enabled() bool { return a != nil && !a.off }

// Log records e. Errors (status >= 400) are always logged; successes are
// sampled by sample_success.
func (a *AccessLog) Log(e *Entry) {
	if a.off {
		return
	}
	if e.Status < 400 && a.sample < 1 && (a.sample <= 0 || rand.Float64() >= a.sample) {
		return
	}
	t, path := lineTimePath(e)
	bp := a.lines.Get().(*[]byte)
	if a.combined {
		*bp = appendCombined((*bp)[:0], e, t, path)
	} else {
		*bp = appendJSON((*bp)[:0], e, t, path)
	}
	_, _ = a.w.Write(*bp)
	// A rare huge line (a long User-Agent) is not kept for every later one.
	if cap(*bp) <= maxPooledLine {
		a.lines.Put(bp)
	}
}

// lineTimePath is what a line shows of e's time and path: when the
// request arrived (now when unset), and the path without its query
// string, which may carry credentials.
func lineTimePath(e *Entry) (time.Time, string) {
	t := e.Time
	if t.IsZero() {
		t = time.Now()
	}
	path := e.Path
	if i := strings.IndexByte(path, '?'); i >= 0 {
		path = path[:i]
	}
	return t, path
}

func millis(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// appendCombined writes the Apache combined log format:
// host ident user [time] "request" status bytes "referer" "user-agent"
func appendCombined(b []byte, e *Entry, t time.Time, path string) []byte {
	b = appendField(b, e.ClientIP)
	b = append(b, " - "...)
	b = appendField(b, e.Consumer)
	b = append(b, " ["...)
	b = t.AppendFormat(b, "02/Jan/2006:15:04:05 -0700")
	b = append(b, "] \""...)
	b = appendEscaped(b, e.Method)
	b = append(b, ' ')
	b = appendEscaped(b, path)
	b = append(b, ' ')
	b = appendEscaped(b, e.Proto)
	b = append(b, "\" "...)
	b = strconv.AppendInt(b, int64(e.Status), 10)
	b = append(b, ' ')
	if e.BytesOut > 0 {
		b = strconv.AppendInt(b, e.BytesOut, 10)
	} else {
		b = append(b, '-')
	}
	b = append(b, " \""...)
	b = appendField(b, e.Referer)
	b = append(b, "\" \""...)
	b = appendField(b, e.UserAgent)
	return append(b, "\"\n"...)
}

// appendField writes s, or "-" when empty, escaped.
func appendField(b []byte, s string) []byte {
	if s == "" {
		return append(b, '-')
	}
	return appendEscaped(b, s)
}

// appendEscaped escapes as Apache does: '"' and '\' get a backslash,
// control and non-ASCII bytes become \xHH, so a client cannot forge lines.
func appendEscaped(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case c < 0x20 || c >= 0x7f:
			b = append(b, '\\', 'x', hex[c>>4], hex[c&15])
		default:
			b = append(b, c)
		}
	}
	return b
}

// Close flushes what is buffered, stops the flush goroutine and closes the
// file if the log opened one. Lines logged after Close are dropped.
func (a *AccessLog) Close() error {
	var err error
	a.once.Do(func() {
		if a.off {
			return
		}
		close(a.stop)
		<-a.done
		err = a.w.close()
		if a.closer != nil {
			if cerr := a.closer.Close(); err == nil {
				err = cerr
			}
		}
	})
	return err
}

// Flush writes out what is buffered.
func (a *AccessLog) Flush() error {
	if a.off {
		return nil
	}
	return a.w.flush()
}

func (a *AccessLog) flushLoop() {
	defer close(a.done)
	t := time.NewTicker(flushInterval)
	defer t.Stop()
	for {
		select {
		case <-a.stop:
			return
		case <-t.C:
			_ = a.w.flush()
		}
	}
}

// lockedWriter is a mutex-guarded buffered writer; one Write is one line.
type lockedWriter struct {
	mu     sync.Mutex
	bw     *bufio.Writer
	closed bool
}

func (w *lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return 0, os.ErrClosed
	}
	return w.bw.Write(p)
}

func (w *lockedWriter) flush() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return nil
	}
	return w.bw.Flush()
}

func (w *lockedWriter) close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.closed = true
	return w.bw.Flush()
}
