package upstream

// Retry helpers shared by every caller that retries attempts against a
// pool under its retries policy: the proxy action (internal/proxy) and the
// aggregate action's backend calls (internal/aggregate).

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"time"
)

// Retry backoff: the first retry waits 25 ms, each next one twice as
// long, never more than 250 ms; the actual wait is drawn from the upper
// half of that range so that clients retrying against the same broken
// target spread out instead of arriving in lockstep. The waits are short
// because a retry goes to another target, which is not the one that just
// failed: the point is to avoid a synchronized burst, not to give the
// failed target time to recover.
const (
	RetryBackoffBase = 25 * time.Millisecond
	RetryBackoffCap  = 250 * time.Millisecond
)

// RetryBackoff is the wait before retry n (1-based), jittered.
func RetryBackoff(n int) time.Duration {
	d := RetryBackoffBase << min(max(n-1, 0), 8)
	if d > RetryBackoffCap || d <= 0 {
		d = RetryBackoffCap
	}
	return d/2 + rand.N(d/2+1)
}

// ErrorCondition is the retry condition a failed attempt's transport
// error meets, for an attempt the caller did not cancel itself (a
// cancelled attempt is no retry case at all; the caller checks that
// first): a refused or timed-out dial, or a TLS verification failure (the
// request was never sent), is RetryConnectFailure; a timeout waiting for
// the answer is RetryTimeout; anything else (the connection broke) is
// RetryReset.
func ErrorCondition(err error) RetryCondition {
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return RetryConnectFailure
	}
	var cv *tls.CertificateVerificationError
	if errors.As(err, &cv) {
		return RetryConnectFailure
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return RetryTimeout
	}
	return RetryReset
}

// RetryReason names a retry condition for the retries metric (CountRetry).
func RetryReason(c RetryCondition) string {
	switch c {
	case RetryConnectFailure:
		return "connect_failure"
	case RetryReset:
		return "reset"
	case RetryTimeout:
		return "timeout"
	}
	return "status"
}

// discardDrainMax bounds how much of a discarded answer's body is read so
// its connection can carry the next request; larger bodies are cut.
const discardDrainMax = 4 << 10

// DiscardAnswer drops an answer a retry replaces (or that will not reach
// the client): a small body is read to its end so the connection can be
// reused, a large one is closed.
func DiscardAnswer(res *http.Response) {
	if res.ContentLength >= 0 && res.ContentLength <= discardDrainMax {
		_, _ = io.CopyN(io.Discard, res.Body, discardDrainMax)
	}
	res.Body.Close()
}

// SleepCtx waits d (a retry's backoff), or until ctx ends, returning its
// cause then.
func SleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}
