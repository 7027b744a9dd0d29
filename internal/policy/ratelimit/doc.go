// Package ratelimit enforces a route's GCRA rate limits (rate_limits).
//
// Each limit is `limit` requests per `window`, refilled smoothly, with up
// to `burst` at once (burst defaults to limit). A request is counted in one
// bucket per limit; the bucket is chosen by the limit's `by`:
//
//   - consumer: the authenticated consumer; anonymous requests fall back to
//     the client address, so they are still limited;
//   - ip: the real client address (State.ClientIP, already resolved through
//     trusted proxies, so a spoofed X-Forwarded-For cannot change it); IPv6
//     clients are counted per /64, since one host usually owns a whole /64
//     and could otherwise rotate addresses to get fresh buckets;
//   - route: one bucket for the whole route;
//   - header:NAME: the header's first value, hashed (SHA-256, truncated to
//     128 bits) so a key never grows with the input; an absent header
//     counts by client address.
//
// Keys are built from the route name, the limit name and that value; the
// path never enters a key, so path spellings (/a, //a, /./a) cannot get
// around a limit. Buckets live in the Store: memory (one instance) or
// Redis (every instance sharing the server enforces one limit, each
// decision one atomic script). Idle buckets expire once full again.
//
// Several limits: they are taken in order of increasing window (the
// shortest first), stopping at the first that refuses. A refused request
// therefore consumes nothing from the limit that refused it nor from the
// longer ones after it; it may have consumed one unit of the shorter
// limits before it. That keeps a client hammering a 10/s limit from
// burning its 1000/day limit with refused requests, and what a refused
// request does consume refills soonest. Separate store calls are not one
// atomic step; a race between two instances can at worst cost one unit of
// a shorter limit.
//
// A consumer's own rate_limits (consumers[].rate_limits) replace the
// route's limits for that consumer; their buckets are separate from the
// route's.
//
// Every answer of a limited route carries RateLimit-Policy and RateLimit
// (draft-ietf-httpapi-ratelimit-headers, structured form) listing every
// limit, and RateLimit-Limit, RateLimit-Remaining and RateLimit-Reset for
// the limit closest to refusing. A refused request is answered 429
// problem+json (rate-limited) with Retry-After in whole seconds, at least 1.
//
// When the store fails (Redis unreachable), on_error decides: fail_open
// lets a local in-memory limiter decide with the same keys (limits become
// per instance); fail_closed answers 503 with Retry-After: 1. After a
// failure the store is left alone for a second, then tried again, so the
// limiter recovers by itself and a dead Redis does not add a timeout to
// every request.
//
// Everything that does not depend on the request (keys' prefixes, header
// names, the RateLimit-Policy value, metric counters) is computed in New,
// and so are the header values of a request that finds its buckets at rest
// (what a limit far from being reached reports). With the memory store
// such a request allocates nothing: its key is built on the stack, the
// store keeps a copy only of a new bucket's key, and its decisions share
// one clock reading (the request's start plus the monotonic time since).
package ratelimit
