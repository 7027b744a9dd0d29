// Package cache is the response cache: RFC 9111 shared-cache semantics for
// GET and HEAD on routes with a `cache:` policy, with an in-process store
// (otter, bounded by bytes) or a Redis store shared by every instance.
//
// The policy (Policy.Middleware) sits in the route chain after the
// concurrency limit and inside compression, so one stored answer is
// compressed per client. It looks the request up, answers hits (with Age
// and Cache-Status, RFC 9211, and 304 for matching client conditionals),
// revalidates stale entries with their validators, serves stale answers
// within stale-while-revalidate (refreshing once per key in the
// background) and stale-if-error, coalesces concurrent misses and stale
// revalidations of one key into one upstream request, and stores what
// RFC 9111 allows a shared cache to store. Unsafe methods that succeed
// invalidate the cached answers of their URL. See docs/cache.md for the
// rules and their reasons.
package cache
