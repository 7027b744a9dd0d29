// Package deprecation marks a route's answers as deprecated and counts who
// still calls it.
//
// Config (a route policy, also allowed in defaults and policy sets):
//
//	deprecated:
//	  since:  "2026-01-01T00:00:00Z"               # optional; absent: "@0" (deprecated, date not stated)
//	  sunset: "2027-06-30T00:00:00Z"               # optional
//	  link:   "https://docs.example.com/migrate-v2" # optional
//
// Every answer of the route (errors included) carries
//
//	Deprecation: @1767225600                                   (RFC 9745)
//	Sunset: Wed, 30 Jun 2027 00:00:00 GMT                      (RFC 8594)
//	Link: <https://docs.example.com/migrate-v2>; rel="deprecation"; type="text/html"
//	Link: <https://docs.example.com/migrate-v2>; rel="sunset"; type="text/html"   (with sunset)
//
// and each call is counted per consumer (portunus_deprecated_requests_total
// and GET /api/v1/deprecations on the admin listener).
package deprecation

import (
	"net/http"
	"strconv"
	"time"

	"github.com/portunus-gw/portunus/internal/config"
	"github.com/portunus-gw/portunus/internal/pipeline"
	"github.com/portunus-gw/portunus/internal/telemetry"
)

// Headers are the precomputed header values of one deprecated route.
type Headers struct {
	Deprecation string
	Sunset      string   // "" = none
	Links       []string // "" entries never appear
}

// Compile turns the config block into header values. The times were
// checked by validation; an unparsable one is an error here too.
func Compile(c config.Deprecated) (Headers, error) {
	var h Headers
	h.Deprecation = "@0"
	if c.Since != "" {
		t, err := time.Parse(time.RFC3339, c.Since)
		if err != nil {
			return h, err
		}
		h.Deprecation = "@" + strconv.FormatInt(t.Unix(), 10)
	}
	if c.Sunset != "" {
		t, err := time.Parse(time.RFC3339, c.Sunset)
		if err != nil {
			return h, err
		}
		h.Sunset = t.UTC().Format(http.TimeFormat)
	}
	if c.Link != "" {
		h.Links = append(h.Links, "<"+c.Link+`>; rel="deprecation"; type="text/html"`)
		if h.Sunset != "" {
			h.Links = append(h.Links, "<"+c.Link+`>; rel="sunset"; type="text/html"`)
		}
	}
	return h, nil
}

// HeadersMiddleware sets the headers before the rest of the chain runs,
// so every answer carries them: it belongs first in the chain, so that an
// IP filter's 403, an authentication failure's 401 or a body limit's 413
// tell the client the route is going away too.
func HeadersMiddleware(h Headers) pipeline.Middleware {
	dep := []string{h.Deprecation}
	var sunset []string
	if h.Sunset != "" {
		sunset = []string{h.Sunset}
	}
	links := h.Links[:len(h.Links):len(h.Links)]
	return func(next pipeline.Handler) pipeline.Handler {
		return func(w http.ResponseWriter, r *http.Request, s *pipeline.State) {
			hdr := w.Header()
			hdr["Deprecation"] = dep
			if sunset != nil {
				hdr["Sunset"] = sunset
			}
			if len(links) > 0 {
				if len(hdr["Link"]) == 0 {
					hdr["Link"] = links // capped: an Add elsewhere copies
				} else {
					hdr["Link"] = append(hdr["Link"], links...)
				}
			}
			next(w, r, s)
		}
	}
}

// Count counts each call for its consumer ("anonymous" without one). It
// belongs after authentication, so the consumer is known; calls refused
// by authentication are not counted (they have no consumer to tell).
func Count(rec *telemetry.DeprecatedRecorder) pipeline.Middleware {
	return func(next pipeline.Handler) pipeline.Handler {
		return func(w http.ResponseWriter, r *http.Request, s *pipeline.State) {
			rec.Observe(s.Consumer)
			next(w, r, s)
		}
	}
}
