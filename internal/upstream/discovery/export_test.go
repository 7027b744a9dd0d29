package discovery

import "time"

// TTLWait and RetryWait expose the waits between lookup rounds to the
// tests: after a good round with the given TTL, and after the n-th failed
// round in a row.
func (d *Discoverer) TTLWait(ttl time.Duration) time.Duration { return d.ttlWait(ttl) }
func (d *Discoverer) RetryWait(n int) time.Duration           { return d.retryWait(n) }
