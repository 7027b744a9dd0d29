// Package concurrency caps how many requests of one route are in flight at
// once (policy key `concurrency`).
//
//	concurrency: { max: 100, queue: 200, queue_timeout: 1s, adaptive: false, per_consumer_share: 0.5 }
//
// A request holds a slot from the moment the middleware admits it until the
// rest of the chain returns; for a streamed answer that is when the stream
// ends. When every slot is taken, up to `queue` requests wait in FIFO order
// for at most `queue_timeout`; a waiter whose client goes away leaves the
// queue at once. Everything else is refused with 503 problem+json
// (urn:portunus:problem:upstream-unavailable, detail "concurrency limit
// reached") and Retry-After: 1.
//
// Fairness (per_consumer_share > 0): one consumer (the authenticated
// consumer, or the client IP when anonymous) may hold at most
// max(1, floor(share × limit)) slots and max(1, floor(share × queue))
// places in the queue. Over its share a request waits (or is refused) even
// when slots are free, and waiters of other consumers behind it are served
// first, so one noisy consumer cannot take every slot. Bookkeeping exists
// only for consumers with a request in flight or queued, so its memory is
// bounded by max + queue whatever the variety of client addresses.
//
// Adaptive mode (adaptive: true) lets the limit move between 1 and max by
// itself; see adaptive.go for the algorithm and its constants. In short:
// the baseline latency is measured by a periodic probe at low concurrency,
// then the limit grows (slow start, then +1 per window) while the median
// latency of completed requests stays within 1.5× the baseline, and is
// multiplied by 0.8 whenever it goes beyond.
//
// One mutex per Limiter (per route) guards the counts; the admission fast
// path takes it once and allocates nothing. A Limiter is carried across
// configuration reloads while its config is unchanged, so in-flight counts
// and the adaptive limit survive a reload.
package concurrency
