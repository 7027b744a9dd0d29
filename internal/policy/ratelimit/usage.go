package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/portunus-gw/portunus/internal/config"
	"github.com/portunus-gw/portunus/internal/pipeline"
	"github.com/portunus-gw/portunus/internal/store"
)

// Scopes of a limit's bucket, as seen from one consumer.
const (
	// ScopeConsumer: the consumer has a bucket of its own (by: consumer).
	ScopeConsumer = "consumer"
	// ScopeRoute: one bucket for the whole route (by: route), which the
	// consumer's requests share with everyone's.
	ScopeRoute = "route"
	// ScopeNotPerConsumer: buckets per client address or header value
	// (by: ip, header:NAME); which of them hold the consumer's requests
	// is not known, so no usage is shown.
	ScopeNotPerConsumer = "not per consumer"
)

// ErrInvalidLimits is returned by ConsumerUsage for limits that do not
// compile. The limiter applies the route's limits instead of such an
// override (a runtime consumer's, which the admin API's checks prevent).
var ErrInvalidLimits = errors.New("ratelimit: invalid limits")

// Usage is one rate limit's policy and, where it can be told, one
// consumer's current use of it.
type Usage struct {
	Route string `json:"route"`
	// Name is the limit's name (its by plus its index when unnamed), the
	// name in the RateLimit headers.
	Name string `json:"name"`
	// Source is "route" for the route's limits, "consumer" for the
	// consumer's own (consumers[].rate_limits or a runtime consumer's),
	// which replace the route's for it and keep their own buckets.
	Source string `json:"source"`
	By     string `json:"by"`
	Limit  int    `json:"limit"`
	Window string `json:"window"`
	// WindowSeconds is Window in seconds.
	WindowSeconds float64 `json:"window_seconds"`
	// Burst is the bucket's capacity (the configured burst, else limit).
	Burst int `json:"burst"`
	// Scope is ScopeConsumer, ScopeRoute or ScopeNotPerConsumer.
	Scope string `json:"scope"`
	// Usage is the bucket's state; nil for ScopeNotPerConsumer.
	Usage *BucketUsage `json:"usage,omitempty"`
}

// BucketUsage is a GCRA bucket's state, read without taking from it.
type BucketUsage struct {
	// Remaining is how many requests the bucket would allow right now.
	Remaining int `json:"remaining"`
	// Used is Burst - Remaining: requests taken and not yet refilled.
	Used int `json:"used"`
	// Allowed is whether the next request would be allowed.
	Allowed bool `json:"allowed"`
	// RetryAfterSeconds is the time until a request would be allowed
	// again; 0 when Allowed.
	RetryAfterSeconds float64 `json:"retry_after_seconds"`
	// ResetAfterSeconds is the time until the bucket is full again; 0
	// when it is full.
	ResetAfterSeconds float64 `json:"reset_after_seconds"`
	// ResetsAt is now + ResetAfterSeconds.
	ResetsAt time.Time `json:"resets_at"`
}

// ConsumerUsage reads, without taking a token, consumer's use of route's
// limits. limits are the route's rate_limits (own false), or the
// consumer's own limits that replace them on route (own true). It builds
// the keys the way the limiter does, so it reads the very buckets the
// consumer's requests take from; a limit by ip or header:NAME is listed
// with ScopeNotPerConsumer and no usage. Limits that do not compile give
// ErrInvalidLimits. A store error is returned as is:
// the limiter's fail_open fallback is local and not worth showing.
func ConsumerUsage(ctx context.Context, st store.Store, route, consumer string, limits []config.RateLimit, own bool, now time.Time) ([]Usage, error) {
	if len(limits) == 0 {
		return []Usage{}, nil
	}
	owner, source := "", "route"
	if own {
		owner, source = consumer, "consumer"
	}
	set, err := compileSet(route, owner, limits, nil)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidLimits, err)
	}
	s := &pipeline.State{Consumer: consumer}
	req := &http.Request{Header: http.Header{}}
	out := make([]Usage, 0, len(set.limits))
	for i := range set.limits {
		lm := &set.limits[i]
		rl := limits[i]
		by := rl.By
		if by == "" {
			by = "ip"
		}
		burst := lm.sl.Burst
		if burst == 0 {
			burst = lm.sl.Rate
		}
		u := Usage{
			Route: route, Name: lm.name, Source: source, By: by,
			Limit: lm.quota, Window: lm.sl.Period.String(), WindowSeconds: lm.sl.Period.Seconds(), Burst: burst,
		}
		switch {
		case lm.by == byConsumer && consumer != "":
			u.Scope = ScopeConsumer
		case lm.by == byRoute:
			u.Scope = ScopeRoute
		default:
			u.Scope = ScopeNotPerConsumer
			out = append(out, u)
			continue
		}
		key := string(lm.appendKey(nil, req, s))
		d, err := store.Peek(ctx, st, key, lm.sl)
		if err != nil {
			return nil, err
		}
		u.Usage = &BucketUsage{
			Remaining: d.Remaining, Used: max(burst-d.Remaining, 0), Allowed: d.Allowed,
			RetryAfterSeconds: d.RetryAfter.Seconds(), ResetAfterSeconds: d.ResetAfter.Seconds(),
			ResetsAt: now.Add(d.ResetAfter).UTC(),
		}
		out = append(out, u)
	}
	return out, nil
}
