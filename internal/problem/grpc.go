package problem

import (
	"net/http"
	"strconv"
	"strings"
)

// GRPCStatus is a gRPC status code (google.rpc.Code).
type GRPCStatus int

// The gRPC status codes the gateway produces.
const (
	GRPCOK                GRPCStatus = 0
	GRPCCanceled          GRPCStatus = 1
	GRPCUnknown           GRPCStatus = 2
	GRPCInvalidArgument   GRPCStatus = 3
	GRPCDeadlineExceeded  GRPCStatus = 4
	GRPCNotFound          GRPCStatus = 5
	GRPCPermissionDenied  GRPCStatus = 7
	GRPCResourceExhausted GRPCStatus = 8
	GRPCUnimplemented     GRPCStatus = 12
	GRPCInternal          GRPCStatus = 13
	GRPCUnavailable       GRPCStatus = 14
	GRPCUnauthenticated   GRPCStatus = 16
)

// grpcStatusOf maps a problem code to the gRPC status a gRPC client is
// answered with. The choices, and why:
//
//   - no-route, method-not-allowed, invalid-path: UNIMPLEMENTED. For a
//     gRPC client the path names the method; a path the gateway does not
//     route (or cannot even normalize) is a method this server does not
//     implement, which is what a gRPC server itself answers.
//   - bad-request: INTERNAL, not INVALID_ARGUMENT. The gateway refuses a
//     request for its framing (unreadable body, malformed grpc-timeout),
//     never for its arguments; gRPC reserves INVALID_ARGUMENT for the
//     application's verdict on a message, and INTERNAL is what both the
//     gRPC HTTP mapping (400) and gRPC servers use for protocol errors.
//   - body-too-large, headers-too-large, uri-too-long, rate-limited:
//     RESOURCE_EXHAUSTED (a limit was hit; gRPC uses it for message and
//     header size limits too).
//   - request-timeout, upstream-timeout: DEADLINE_EXCEEDED.
//   - upstream-unavailable, bad-gateway: UNAVAILABLE (safe to retry).
//   - unauthorized: UNAUTHENTICATED; forbidden: PERMISSION_DENIED;
//     not-found: NOT_FOUND; internal: INTERNAL; unknown codes: UNKNOWN.
var grpcStatusOf = map[Code]GRPCStatus{
	BadRequest:          GRPCInternal,
	InvalidPath:         GRPCUnimplemented,
	NoRoute:             GRPCUnimplemented,
	MethodNotAllowed:    GRPCUnimplemented,
	BodyTooLarge:        GRPCResourceExhausted,
	URITooLong:          GRPCResourceExhausted,
	HeadersTooLarge:     GRPCResourceExhausted,
	RequestTimeout:      GRPCDeadlineExceeded,
	UpstreamUnavailable: GRPCUnavailable,
	UpstreamTimeout:     GRPCDeadlineExceeded,
	BadGateway:          GRPCUnavailable,
	Unauthorized:        GRPCUnauthenticated,
	Forbidden:           GRPCPermissionDenied,
	RateLimited:         GRPCResourceExhausted,
	NotFound:            GRPCNotFound,
	Internal:            GRPCInternal,
}

// GRPCStatus is the gRPC status a code is answered with on gRPC requests.
func (c Code) GRPCStatus() GRPCStatus {
	if g, ok := grpcStatusOf[c]; ok {
		return g
	}
	return GRPCUnknown
}

// IsGRPC reports whether a request Content-Type is gRPC's:
// "application/grpc" alone or followed by "+codec" or ";params". The
// gRPC-Web types ("application/grpc-web...") are not gRPC.
func IsGRPC(contentType string) bool {
	const p = "application/grpc"
	if len(contentType) < len(p) || !strings.EqualFold(contentType[:len(p)], p) {
		return false
	}
	if len(contentType) == len(p) {
		return true
	}
	switch contentType[len(p)] {
	case '+', ';':
		return true
	}
	return false
}

// IsGRPCWeb reports whether a request Content-Type is gRPC-Web's:
// application/grpc-web or application/grpc-web-text, alone or followed by
// "+codec" or ";params".
func IsGRPCWeb(contentType string) bool {
	const p = "application/grpc-web"
	if len(contentType) < len(p) || !strings.EqualFold(contentType[:len(p)], p) {
		return false
	}
	rest := contentType[len(p):]
	if len(rest) >= 5 && strings.EqualFold(rest[:5], "-text") {
		rest = rest[5:]
	}
	return rest == "" || rest[0] == '+' || rest[0] == ';'
}

// grpcAnswerType returns the Content-Type a gRPC-style error answer to r
// carries: application/grpc for gRPC, the request's own type for
// gRPC-Web (which reaches this point only when no route's grpcweb policy
// translated it, e.g. no-route). ok is false for other requests.
func grpcAnswerType(r *http.Request) (ct []string, ok bool) {
	if r == nil {
		return nil, false
	}
	v := r.Header["Content-Type"]
	switch {
	case len(v) == 0:
		return nil, false
	case IsGRPC(v[0]):
		return grpcValContentType, true
	case IsGRPCWeb(v[0]):
		return v[:1:1], true
	}
	return nil, false
}

// grpcValContentType is shared; header values are never written in place.
var grpcValContentType = []string{"application/grpc"}

// WriteGRPC answers a gRPC call with a Trailers-Only response: HTTP 200
// and the status in grpc-status / grpc-message headers, with no body, so
// the HTTP/2 server sends one HEADERS frame that ends the stream. The
// caller must not write a body or flush before returning.
func WriteGRPC(w http.ResponseWriter, status GRPCStatus, message, requestID string) {
	writeGRPC(w, grpcValContentType, status, message, requestID)
}

func writeGRPC(w http.ResponseWriter, ct []string, status GRPCStatus, message, requestID string) {
	h := w.Header()
	delete(h, "Content-Length")
	h["Content-Type"] = ct
	h["Grpc-Status"] = []string{strconv.Itoa(int(status))}
	if message != "" {
		h["Grpc-Message"] = []string{EncodeGRPCMessage(message)}
	}
	if requestID != "" {
		h["Portunus-Request-Id"] = []string{requestID}
	}
	w.WriteHeader(http.StatusOK)
}

// writeGRPCProblem renders p for a gRPC client: the title, then the
// detail, as grpc-message.
func writeGRPCProblem(w http.ResponseWriter, ct []string, p Problem) {
	msg := p.Code.Title()
	if p.Detail != "" {
		msg += ": " + p.Detail
	}
	writeGRPC(w, ct, p.Code.GRPCStatus(), msg, p.RequestID)
}

const upperHex = "0123456789ABCDEF"

// EncodeGRPCMessage percent-encodes s for the grpc-message header as the
// gRPC HTTP/2 protocol specifies: the UTF-8 bytes outside printable ASCII
// (0x20-0x7E) and '%' itself become %XX.
func EncodeGRPCMessage(s string) string {
	n := 0
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '%' {
			n++
		}
	}
	if n == 0 {
		return s
	}
	b := make([]byte, 0, len(s)+2*n)
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c > 0x7e || c == '%' {
			b = append(b, '%', upperHex[c>>4], upperHex[c&0xf])
			continue
		}
		b = append(b, c)
	}
	return string(b)
}

// DecodeGRPCMessage reverses EncodeGRPCMessage. A '%' not followed by two
// hex digits is kept as is, as the gRPC spec asks of receivers.
func DecodeGRPCMessage(s string) string {
	if strings.IndexByte(s, '%') < 0 {
		return s
	}
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		if s[i] == '%' && i+2 < len(s) {
			hi, ok1 := unhex(s[i+1])
			lo, ok2 := unhex(s[i+2])
			if ok1 && ok2 {
				b = append(b, hi<<4|lo)
				i += 2
				continue
			}
		}
		b = append(b, s[i])
	}
	return string(b)
}

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}
