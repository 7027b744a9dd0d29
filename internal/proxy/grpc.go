package proxy

import (
	"context"
	"errors"
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/portunus-gw/portunus/internal/problem"
)

// gRPC calls get three things plain requests do not:
//
//   - grpc-timeout (the call's deadline) bounds the whole upstream call,
//     headers and body, and is forwarded with the time that is left;
//   - when it passes, the client gets DEADLINE_EXCEEDED: as a
//     Trailers-Only answer before the response headers, as trailers
//     after them;
//   - an upstream that breaks mid-stream ends the call with UNAVAILABLE
//     trailers instead of a reset stream, so the client sees a status.
//
// A malformed grpc-timeout is refused (INTERNAL, as gRPC servers answer
// it) rather than ignored: forwarding it would only move the same refusal
// to the upstream, and silently dropping it would drop the caller's
// deadline.

// errGRPCDeadline is the cancel cause when a call's grpc-timeout passes.
var errGRPCDeadline = errors.New("proxy: grpc-timeout passed")

// maxGRPCTimeoutDigits is the gRPC spec's limit on the timeout value.
const maxGRPCTimeoutDigits = 8

// parseGRPCTimeout parses a grpc-timeout value: 1 to 8 ASCII digits and a
// unit, H M S m u n. Values beyond time.Duration's range are capped.
func parseGRPCTimeout(v string) (time.Duration, bool) {
	if len(v) < 2 || len(v) > maxGRPCTimeoutDigits+1 {
		return 0, false
	}
	var n int64
	for i := 0; i < len(v)-1; i++ {
		c := v[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	var unit time.Duration
	switch v[len(v)-1] {
	case 'H':
		unit = time.Hour
	case 'M':
		unit = time.Minute
	case 'S':
		unit = time.Second
	case 'm':
		unit = time.Millisecond
	case 'u':
		unit = time.Microsecond
	case 'n':
		unit = time.Nanosecond
	default:
		return 0, false
	}
	if n > math.MaxInt64/int64(unit) {
		return math.MaxInt64, true
	}
	return time.Duration(n) * unit, true
}

// grpcTimeoutUnits are tried from the finest down, so the forwarded value
// is as precise as 8 digits allow.
var grpcTimeoutUnits = [...]struct {
	d    time.Duration
	unit byte
}{
	{time.Nanosecond, 'n'}, {time.Microsecond, 'u'}, {time.Millisecond, 'm'},
	{time.Second, 'S'}, {time.Minute, 'M'}, {time.Hour, 'H'},
}

// formatGRPCTimeout renders d (> 0) as a grpc-timeout value, rounding up
// in the chosen unit so a forwarded deadline never reaches 0.
func formatGRPCTimeout(d time.Duration) string {
	const limit = 100_000_000 // 8 digits
	for _, u := range grpcTimeoutUnits {
		n := int64(d / u.d)
		if d%u.d != 0 {
			n++
		}
		if n < limit {
			var buf [maxGRPCTimeoutDigits + 1]byte
			b := strconv.AppendInt(buf[:0], n, 10)
			return string(append(b, u.unit))
		}
	}
	return "99999999H"
}

// grpcCall is what the proxy knows about a gRPC call.
type grpcCall struct {
	on       bool      // the request is a gRPC call
	deadline time.Time // from grpc-timeout; zero = none
}

// expired reports whether a failure is the call's deadline: its context
// was cancelled by it, or it has passed by the clock. The second matters
// because the upstream, told the same deadline, may reset the stream a
// moment before the gateway's own timer fires.
func (c grpcCall) expired(ctx context.Context, now time.Time) bool {
	if c.deadline.IsZero() {
		return false
	}
	return context.Cause(ctx) == errGRPCDeadline || !now.Before(c.deadline)
}

// isGRPC reports whether r is a gRPC call (the grpcweb policy has already
// turned gRPC-Web calls into gRPC ones).
func isGRPC(r *http.Request) bool {
	ct := r.Header["Content-Type"]
	return len(ct) > 0 && problem.IsGRPC(ct[0])
}

// grpcDeadlineCtx applies the call's grpc-timeout to ctx. It reports
// ok=false when the header is malformed; deadline is zero when there is
// none.
func grpcDeadlineCtx(ctx context.Context, r *http.Request, start time.Time) (context.Context, context.CancelFunc, time.Time, bool) {
	v := r.Header["Grpc-Timeout"]
	if len(v) == 0 {
		return ctx, nil, time.Time{}, true
	}
	d, ok := parseGRPCTimeout(v[0])
	if !ok || len(v) > 1 {
		return ctx, nil, time.Time{}, false
	}
	deadline := start.Add(d)
	if d == math.MaxInt64 || deadline.Before(start) {
		return ctx, nil, time.Time{}, true // effectively none
	}
	ctx, cancel := context.WithDeadlineCause(ctx, deadline, errGRPCDeadline)
	return ctx, cancel, deadline, true
}

// Static gRPC trailer values.
var (
	valGRPCDeadline    = []string{strconv.Itoa(int(problem.GRPCDeadlineExceeded))}
	valGRPCUnavailable = []string{strconv.Itoa(int(problem.GRPCUnavailable))}
	msgGRPCDeadline    = []string{problem.EncodeGRPCMessage("Upstream timed out: the call's grpc-timeout passed")}
	msgGRPCBroken      = []string{problem.EncodeGRPCMessage("Upstream unavailable: the upstream broke off the response")}
)

// endGRPC ends a gRPC response whose headers are already sent with a
// status in the trailers, replacing whatever trailers the upstream sent.
func endGRPC(w http.ResponseWriter, deadline bool) {
	h := w.Header()
	if deadline {
		h[http.TrailerPrefix+"Grpc-Status"] = valGRPCDeadline
		h[http.TrailerPrefix+"Grpc-Message"] = msgGRPCDeadline
		return
	}
	h[http.TrailerPrefix+"Grpc-Status"] = valGRPCUnavailable
	h[http.TrailerPrefix+"Grpc-Message"] = msgGRPCBroken
}
