package gateway

// GET /api/v1/rate-limits: a consumer's rate-limit policies and current
// usage per route (docs/rate-limits.md), read from the shared store
// without taking a token.

import (
	"errors"
	"net/http"
	"time"

	"github.com/portunus-gw/portunus/internal/admin"
	"github.com/portunus-gw/portunus/internal/config"
	"github.com/portunus-gw/portunus/internal/policy/ratelimit"
	"github.com/portunus-gw/portunus/internal/problem"
)

// RateLimitsAnswer is the body of GET /api/v1/rate-limits.
type RateLimitsAnswer struct {
	Consumer   string            `json:"consumer"`
	RateLimits []ratelimit.Usage `json:"rate_limits"`
}

// registerRateLimitAPI mounts GET /api/v1/rate-limits on s.
func registerRateLimitAPI(s *admin.Server, rt *Runtime) {
	s.Handle("GET /api/v1/rate-limits", http.HandlerFunc(rt.serveRateLimits))
}

// serveRateLimits answers for consumer=NAME on one route (route=NAME) or
// on every route with rate_limits. On each, the limits that apply to the
// consumer are listed: its own (consumers[].rate_limits, or a runtime
// consumer's), which replace the route's there, else the route's. A limit
// by consumer or route shows its bucket's usage; one by ip or header is
// listed as "not per consumer", since which of its buckets the
// consumer's requests fall in is not known.
func (rt *Runtime) serveRateLimits(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	consumer := q.Get("consumer")
	if consumer == "" {
		problem.Write(w, r, problem.Problem{Code: problem.BadRequest, Detail: "give consumer"})
		return
	}
	snap := rt.snapshotOr503(w, r)
	if snap == nil {
		return
	}
	route := q.Get("route")
	found := route == ""
	st := rt.Store()
	if st == nil {
		storeUnavailable(w, r, "rate limit")
		return
	}
	now := time.Now()
	own := consumerRateLimits(snap, consumer)
	out := RateLimitsAnswer{Consumer: consumer, RateLimits: []ratelimit.Usage{}}
	for i := range snap.Config.Routes {
		rc := &snap.Config.Routes[i]
		if route != "" && rc.Name != route {
			continue
		}
		found = true
		if len(rc.RateLimits) == 0 {
			continue // a consumer's own limits apply only where the route has limits
		}
		limits, isOwn := rc.RateLimits, false
		if len(own) > 0 {
			limits, isOwn = own, true
		}
		got, err := ratelimit.ConsumerUsage(r.Context(), st, rc.Name, consumer, limits, isOwn, now)
		if isOwn && errors.Is(err, ratelimit.ErrInvalidLimits) {
			// As the limiter does: own limits that do not compile give way
			// to the route's.
			got, err = ratelimit.ConsumerUsage(r.Context(), st, rc.Name, consumer, rc.RateLimits, false, now)
		}
		if err != nil {
			storeUnavailable(w, r, "rate limit")
			return
		}
		out.RateLimits = append(out.RateLimits, got...)
	}
	if !found {
		noRouteNamed(w, r, route)
		return
	}
	admin.WriteJSON(w, http.StatusOK, out)
}

// consumerRateLimits are the own rate limits of the consumer called name,
// as the snapshot's requests see them (consumerQuotas' twin): a config
// consumer's (consumers[].rate_limits), else a runtime consumer's; nil
// when it has none.
func consumerRateLimits(snap *Snapshot, name string) []config.RateLimit {
	for i := range snap.Config.Consumers {
		if c := &snap.Config.Consumers[i]; c.Name == name {
			return c.RateLimits
		}
	}
	if snap.rc.dir == nil || !snap.rc.m.Enabled() {
		return nil
	}
	return snap.rc.dir.RuntimeRateLimits(name)
}
