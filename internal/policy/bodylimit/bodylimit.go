// Package bodylimit is the max_body_bytes policy: it refuses request bodies
// larger than the route allows with 413 problem body-too-large.
//
// A body that announces its size (Content-Length) is refused at once, its
// bytes unread, and the connection is closed afterwards so they are never
// read as a next request. A body of unknown size (chunked) is wrapped in
// http.MaxBytesReader: reading past the limit fails with
// *http.MaxBytesError, which the proxy answers with 413 while streaming.
//
//	max_body_bytes: 1MiB
package bodylimit

import (
	"net/http"
	"strconv"

	"github.com/portunus-gw/portunus/internal/pipeline"
	"github.com/portunus-gw/portunus/internal/problem"
)

// New returns the middleware for a limit of max bytes. max <= 0 means no
// limit (the middleware passes requests through untouched).
func New(max int64) pipeline.Middleware {
	if max <= 0 {
		return func(next pipeline.Handler) pipeline.Handler { return next }
	}
	detail := "the request body is larger than " + strconv.FormatInt(max, 10) + " bytes"
	return func(next pipeline.Handler) pipeline.Handler {
		return func(w http.ResponseWriter, r *http.Request, s *pipeline.State) {
			if r.ContentLength > max {
				refuse(w, r, s, detail)
				return
			}
			// A known length within the limit needs no wrapper: net/http
			// never reads past Content-Length.
			if r.ContentLength < 0 && r.Body != nil && r.Body != http.NoBody {
				r.Body = http.MaxBytesReader(w, r.Body, max)
			}
			next(w, r, s)
		}
	}
}

// refuse answers 413. It is a function of its own so that the answer's
// temporaries stay off the stack of every request that passes: the rest
// of the route's chain, the proxy included, runs below the middleware.
//
//go:noinline
func refuse(w http.ResponseWriter, r *http.Request, s *pipeline.State, detail string) {
	// The body is left unread: closing the connection is the only way
	// to be sure none of it is taken as a request.
	w.Header().Set("Connection", "close")
	s.ErrorCode = string(problem.BodyTooLarge)
	problem.Write(w, r, problem.Problem{Code: problem.BodyTooLarge, Detail: detail, RequestID: s.RequestID})
}
