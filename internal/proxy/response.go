package proxy

import (
	"context"
	"io"
	"mime"
	"net/http"
	"strings"
	"sync"

	"github.com/portunus-gw/portunus/internal/pipeline"
	"github.com/portunus-gw/portunus/internal/problem"
)

// copyBufferSize is the body copy buffer: large enough that a bulk body
// moves in few syscalls, small enough to pool per request.
const copyBufferSize = 32 << 10

var bufPool = sync.Pool{New: func() any {
	b := make([]byte, copyBufferSize)
	return &b
}}

// respond forwards the upstream's answer: status, headers (minus
// hop-by-hop), response header rules, body (streamed), trailers.
//
// Headers the gateway or an earlier policy already set on w (X-Request-Id,
// CORS, rate-limit fields) win over the upstream's copies, except Vary,
// which is merged, since both sides may legitimately vary the answer.
//
// For a gRPC call (call.on) a failure mid-body ends the call with a gRPC
// status in the trailers instead of a cut stream: DEADLINE_EXCEEDED when
// ctx's grpc-timeout passed, UNAVAILABLE when the upstream broke off.
func (h *handler) respond(w http.ResponseWriter, r *http.Request, s *pipeline.State, res *http.Response, ctx context.Context, call grpcCall) {
	defer res.Body.Close()
	removeHopByHop(res.Header)
	dst := w.Header()
	for k, vv := range res.Header {
		if old := dst[k]; len(old) > 0 {
			if k == "Vary" {
				dst[k] = append(old[:len(old):len(old)], vv...)
			}
			continue
		}
		dst[k] = vv
	}
	h.respRules.Apply(dst, r, s)

	// An HTTP/2 upstream may send Content-Length along with trailers; an
	// HTTP/1.1 client can only get trailers after a chunked body, so the
	// length goes when trailers are announced, or expected (gRPC sends
	// them unannounced).
	if r.ProtoMajor == 1 && res.ProtoMajor == 2 && (len(res.Trailer) > 0 || isGRPCResponse(res.Header)) {
		delete(dst, "Content-Length")
	}

	// Trailers the upstream announced are announced to the client before
	// the header is written, so net/http sends them after a chunked body.
	var announced []string
	if len(res.Trailer) > 0 {
		announced = announceTrailers(dst, res.Trailer)
	}

	w.WriteHeader(res.StatusCode)
	if r.Method == http.MethodHead {
		return
	}
	// Event streams and bodies of unknown length are flushed after every
	// write, so each event reaches the client as the upstream sends it;
	// the header is flushed at once too, so a stream whose first event
	// comes late is still seen as open.
	var flusher *http.ResponseController
	if res.ContentLength < 0 || isEventStream(res.Header) {
		flusher = http.NewResponseController(w)
		_ = flusher.Flush()
	}
	switch h.copyBody(w, r, res, flusher, call.on) {
	case copyDone:
	case copyGRPCFailed:
		endGRPC(w, call.expired(ctx, h.now()))
		return
	default:
		return
	}
	if len(res.Trailer) > 0 {
		copyTrailers(dst, res.Trailer, announced)
	}
}

// announceTrailers announces the upstream's trailer names in dst and
// returns them. It and copyTrailers are not inlined: their map iterators
// would sit in respond's frame, which is under every write to the client
// (see serve).
//
//go:noinline
func announceTrailers(dst, trailer http.Header) []string {
	announced := make([]string, 0, len(trailer))
	for k := range trailer {
		announced = append(announced, k)
	}
	dst["Trailer"] = []string{strings.Join(announced, ", ")}
	return announced
}

// copyTrailers sets the upstream's trailers in dst after the body: the
// announced ones by name, the others with http.TrailerPrefix.
//
//go:noinline
func copyTrailers(dst, trailer http.Header, announced []string) {
	for k, vv := range trailer {
		if contains(announced, k) {
			dst[k] = vv
		} else {
			dst[http.TrailerPrefix+k] = vv
		}
	}
}

// copyResult is how a body copy ended.
type copyResult uint8

const (
	copyDone       copyResult = iota // the whole body was copied
	copyClientGone                   // the client went away
	copyGRPCFailed                   // a gRPC call's upstream body failed
)

// copyBody streams the response body to the client with a pooled buffer,
// flushing after every write when flusher is set.
func (h *handler) copyBody(w http.ResponseWriter, r *http.Request, res *http.Response, flusher *http.ResponseController, grpc bool) copyResult {
	bp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bp)
	buf := *bp
	for {
		n, rerr := res.Body.Read(buf)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				return copyClientGone // the deferred Close cancels upstream
			}
			if flusher != nil {
				_ = flusher.Flush()
			}
		}
		if rerr == io.EOF {
			return copyDone
		}
		if rerr != nil {
			if r.Context().Err() != nil {
				return copyClientGone
			}
			if grpc {
				return copyGRPCFailed
			}
			// The upstream broke mid-body. The status is already sent;
			// aborting the handler makes net/http cut the connection
			// instead of ending the response cleanly, so the client can
			// tell the body is incomplete.
			panic(http.ErrAbortHandler)
		}
	}
}

func isEventStream(h http.Header) bool {
	ct := h["Content-Type"]
	if len(ct) == 0 {
		return false
	}
	v := ct[0]
	if strings.HasPrefix(v, "text/event-stream") {
		return true
	}
	if !strings.Contains(strings.ToLower(v), "event-stream") {
		return false
	}
	mt, _, _ := mime.ParseMediaType(v)
	return mt == "text/event-stream"
}

func isGRPCResponse(h http.Header) bool {
	ct := h["Content-Type"]
	return len(ct) > 0 && problem.IsGRPC(ct[0])
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
