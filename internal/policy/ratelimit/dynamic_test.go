package ratelimit

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/portunus-gw/portunus/internal/config"
)

// TestLookupOverride: a runtime consumer's own limits come from Lookup,
// after the static map, and a change of them (a new slice) applies at
// once, with the buckets of the new limits.
func TestLookupOverride(t *testing.T) {
	t.Parallel()
	var limits atomic.Pointer[[]config.RateLimit]
	first := []config.RateLimit{{Name: "rt", Limit: 3, Window: win(time.Minute), By: "consumer", Burst: 3}}
	limits.Store(&first)
	hs := newHarness(t, Options{
		Limits:    []config.RateLimit{{Limit: 1, Window: win(time.Minute), By: "consumer", Burst: 1}},
		Consumers: map[string][]config.RateLimit{"static": {{Name: "static", Limit: 2, Window: win(time.Minute), By: "consumer", Burst: 2}}},
		Lookup: func(c string) []config.RateLimit {
			if c == "runtime" {
				return *limits.Load()
			}
			if c == "static" {
				t.Error("Lookup asked about a consumer the static map has")
			}
			return nil
		},
	})
	if got := hs.allowedN(10, req{consumer: "runtime"}); got != 3 {
		t.Errorf("runtime consumer: allowed %d; want its own 3", got)
	}
	if got := hs.allowedN(10, req{consumer: "static"}); got != 2 {
		t.Errorf("static consumer: allowed %d; want 2", got)
	}
	if got := hs.allowedN(10, req{consumer: "other"}); got != 1 {
		t.Errorf("consumer without limits: allowed %d; want the route's 1", got)
	}
	w, _ := hs.do(req{consumer: "runtime"})
	if got := w.Header().Get("RateLimit-Policy"); got != `"rt";q=3;w=60` {
		t.Errorf("RateLimit-Policy = %q; want the runtime override's", got)
	}
	second := []config.RateLimit{{Name: "rt2", Limit: 5, Window: win(time.Minute), By: "consumer", Burst: 5}}
	limits.Store(&second)
	if got := hs.allowedN(10, req{consumer: "runtime"}); got != 5 {
		t.Errorf("after the change: allowed %d; want the new 5", got)
	}
}
