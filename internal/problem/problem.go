// Package problem writes the errors Portunus itself produces as RFC 9457
// problem details (application/problem+json), or, to gRPC clients, as a
// gRPC status (grpc.go). Every component returns or names a Code; this
// package is the one place that renders it.
package problem

import (
	"net/http"
	"strconv"
	"strings"
)

// Code is the last part of a problem type URN, urn:portunus:problem:<code>.
type Code string

// The problem codes Portunus produces. Their titles and statuses are in
// the table below, so a code always renders the same way.
const (
	BadRequest          Code = "bad-request"
	InvalidPath         Code = "invalid-path"
	NoRoute             Code = "no-route"
	MethodNotAllowed    Code = "method-not-allowed"
	BodyTooLarge        Code = "body-too-large"
	URITooLong          Code = "uri-too-long"
	HeadersTooLarge     Code = "headers-too-large"
	RequestTimeout      Code = "request-timeout"
	UpstreamUnavailable Code = "upstream-unavailable"
	UpstreamTimeout     Code = "upstream-timeout"
	BadGateway          Code = "bad-gateway"
	Unauthorized        Code = "unauthorized"
	Forbidden           Code = "forbidden"
	RateLimited         Code = "rate-limited"
	NotFound            Code = "not-found"
	Conflict            Code = "conflict"
	Internal            Code = "internal"
)

type info struct {
	status int
	title  string
}

var catalog = map[Code]info{
	BadRequest:          {http.StatusBadRequest, "Bad request"},
	InvalidPath:         {http.StatusBadRequest, "Invalid request path"},
	NoRoute:             {http.StatusNotFound, "No route matches the request"},
	MethodNotAllowed:    {http.StatusMethodNotAllowed, "Method not allowed"},
	BodyTooLarge:        {http.StatusRequestEntityTooLarge, "Request body too large"},
	URITooLong:          {http.StatusRequestURITooLong, "Request target too long"},
	HeadersTooLarge:     {http.StatusRequestHeaderFieldsTooLarge, "Request header fields too large"},
	RequestTimeout:      {http.StatusRequestTimeout, "Request body not received in time"},
	UpstreamUnavailable: {http.StatusBadGateway, "Upstream unavailable"},
	UpstreamTimeout:     {http.StatusGatewayTimeout, "Upstream timed out"},
	BadGateway:          {http.StatusBadGateway, "Bad gateway"},
	Unauthorized:        {http.StatusUnauthorized, "Authentication required"},
	Forbidden:           {http.StatusForbidden, "Forbidden"},
	RateLimited:         {http.StatusTooManyRequests, "Too many requests"},
	NotFound:            {http.StatusNotFound, "Not found"},
	Conflict:            {http.StatusConflict, "Conflict"},
	Internal:            {http.StatusInternalServerError, "Internal error"},
}

// Status is the HTTP status a code is answered with.
func (c Code) Status() int {
	if i, ok := catalog[c]; ok {
		return i.status
	}
	return http.StatusInternalServerError
}

// Title is the code's short, fixed summary.
func (c Code) Title() string {
	if i, ok := catalog[c]; ok {
		return i.title
	}
	return "Error"
}

// Type is the problem type URN.
func (c Code) Type() string { return "urn:portunus:problem:" + string(c) }

// Problem is one problem details object.
type Problem struct {
	Code Code
	// Status overrides the code's status when non-zero (e.g. 503 for
	// upstream-unavailable when every target is down).
	Status    int
	Detail    string
	RequestID string
}

// Write renders p. Headers already set on w (Allow, Retry-After,
// WWW-Authenticate) are kept. A HEAD request gets the headers only. A gRPC
// request (Content-Type application/grpc[+codec]) is answered with a gRPC
// status instead (see WriteGRPC), since a gRPC client cannot read
// problem+json; so is a gRPC-Web request, with its own Content-Type.
func Write(w http.ResponseWriter, r *http.Request, p Problem) {
	if ct, ok := grpcAnswerType(r); ok {
		writeGRPCProblem(w, ct, p)
		return
	}
	status := p.Status
	if status == 0 {
		status = p.Code.Status()
	}
	body := Render(p, status)
	h := w.Header()
	h.Set("Content-Type", "application/problem+json")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	if r == nil || r.Method != http.MethodHead {
		_, _ = w.Write(body)
	}
}

// Render returns the JSON body of p answered with status.
func Render(p Problem, status int) []byte {
	var b strings.Builder
	b.Grow(160 + len(p.Detail) + len(p.RequestID))
	b.WriteString(`{"type":`)
	writeJSONString(&b, p.Code.Type())
	b.WriteString(`,"title":`)
	writeJSONString(&b, p.Code.Title())
	b.WriteString(`,"status":`)
	b.WriteString(strconv.Itoa(status))
	if p.Detail != "" {
		b.WriteString(`,"detail":`)
		writeJSONString(&b, p.Detail)
	}
	if p.RequestID != "" {
		b.WriteString(`,"request_id":`)
		writeJSONString(&b, p.RequestID)
	}
	b.WriteString("}\n")
	return []byte(b.String())
}

const hexDigits = "0123456789abcdef"

// writeJSONString writes s as a JSON string, escaping what JSON and HTML
// need escaped so a problem body can never break out of its string.
func writeJSONString(b *strings.Builder, s string) {
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r < 0x20 || r == '<' || r == '>' || r == '&' || r == 0x2028 || r == 0x2029:
			b.WriteString(`\u`)
			b.WriteByte(hexDigits[(r>>12)&0xf])
			b.WriteByte(hexDigits[(r>>8)&0xf])
			b.WriteByte(hexDigits[(r>>4)&0xf])
			b.WriteByte(hexDigits[r&0xf])
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
}
