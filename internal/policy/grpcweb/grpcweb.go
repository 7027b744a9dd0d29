// Package grpcweb translates gRPC-Web calls (what browsers can send) into
// gRPC calls for the upstream, and the answers back.
//
// Request: Content-Type application/grpc-web[+codec] becomes
// application/grpc[+codec]; application/grpc-web-text[+codec] (base64
// of the same frames) is decoded as it streams and also becomes
// application/grpc[+codec]; "TE: trailers" is added, as gRPC requires.
//
// Response: the Content-Type goes back to the caller's gRPC-Web type; the
// body's message frames pass through (base64-encoded for -text); the gRPC
// trailers, which HTTP/1.1 browsers cannot read, become a trailer frame
// (flag 0x80, then "name: value\r\n" lines) at the end of the body. A
// Trailers-Only answer (status in the headers, no body, which is also how
// the gateway's own errors look) stays in the headers, as the gRPC-Web
// protocol allows.
//
// Requests that are not gRPC-Web pass through untouched, at the cost of
// one header lookup.
package grpcweb

import (
	"net/http"
	"strings"

	"github.com/portunus-gw/portunus/internal/pipeline"
)

const (
	ctGRPC     = "application/grpc"
	ctWeb      = "application/grpc-web"
	ctWebText  = "application/grpc-web-text"
	trailerBit = 0x80
)

// valTrailers is shared; header value slices are never written in place.
var valTrailers = []string{"trailers"}

// New returns the middleware; requests that are not gRPC-Web pass through.
func New() pipeline.Middleware {
	return func(next pipeline.Handler) pipeline.Handler {
		return func(w http.ResponseWriter, r *http.Request, s *pipeline.State) {
			ct := r.Header["Content-Type"]
			if len(ct) == 0 {
				next(w, r, s)
				return
			}
			text, suffix, ok := parseContentType(ct[0])
			if !ok {
				next(w, r, s)
				return
			}
			serve(next, w, r, s, text, suffix)
		}
	}
}

// parseContentType recognizes the gRPC-Web types. suffix is what follows
// the base type ("+proto", "" or ";charset=..."), kept for the gRPC type.
func parseContentType(v string) (text bool, suffix string, ok bool) {
	if len(v) < len(ctWeb) || !strings.EqualFold(v[:len(ctWeb)], ctWeb) {
		return false, "", false
	}
	rest := v[len(ctWeb):]
	if len(rest) >= len("-text") && strings.EqualFold(rest[:len("-text")], "-text") {
		text = true
		rest = rest[len("-text"):]
	}
	if rest != "" && rest[0] != '+' && rest[0] != ';' {
		return false, "", false
	}
	return text, rest, true
}

func serve(next pipeline.Handler, w http.ResponseWriter, r *http.Request, s *pipeline.State, text bool, suffix string) {
	out := new(http.Request)
	*out = *r
	out.Header = r.Header.Clone()
	out.Header["Content-Type"] = []string{ctGRPC + suffix}
	out.Header["Te"] = valTrailers
	if text {
		delete(out.Header, "Content-Length")
		out.ContentLength = -1
		if r.Body != nil && r.Body != http.NoBody {
			out.Body = newTextReader(r.Body)
		}
	}
	webType := ctWeb
	if text {
		webType = ctWebText
	}
	rw := &responseWriter{w: w, webType: webType, text: text}
	next(rw, out, s)
	rw.finish()
}
