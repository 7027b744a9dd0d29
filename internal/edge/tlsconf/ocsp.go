package tlsconf

import (
	"bytes"
	"context"

	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"golang.org/x/crypto/ocsp"
)

// OCSP refresh bounds. A response is refreshed halfway to its NextUpdate,
// within [ocspMinRefresh, ocspMaxRefresh]; failures are retried from
// ocspMinRefresh, doubling up to ocspMaxRetry.
const (
	ocspTimeout    = 10 * time.Second
	ocspMaxBody    = 256 << 10
	ocspMinRefresh = time.Minute
	ocspMaxRefresh = 12 * time.Hour
	ocspMaxRetry   = 30 * time.Minute
	// ocspNoNextUpdate is how long a response without NextUpdate is served.
	ocspNoNextUpdate = 24 * time.Hour
	// ocspSkew tolerates a responder clock slightly ahead of ours.
	ocspSkew = 5 * time.Minute
)

// errRevoked marks a response saying the certificate is revoked.
var errRevoked = errors.New("certificate is revoked")

// startOCSP starts the staple refresher of s when its leaf names an OCSP
// responder and its issuer is in the chain. prev is the slot s replaces
// (nil at start-up): if it holds the same leaf, its staple is carried over
// so a reload that changed nothing but bytes of the file loses no staple.
func (m *Manager) startOCSP(s, prev *slot) {
	if s.ocspURL == "" {
		return
	}
	if s.issuer == nil {
		m.log.Info("tls certificate names an OCSP responder but its chain lacks the issuer; no stapling", "cert_file", s.files.CertFile)
		return
	}
	var st ocspState
	if prev != nil && bytes.Equal(prev.leaf.Raw, s.leaf.Raw) {
		if staple := prev.cert.Load().OCSPStaple; staple != nil {
			if r, err := ocsp.ParseResponseForCert(staple, s.leaf, s.issuer); err == nil {
				if exp := validUntil(r); exp.After(time.Now()) {
					setStaple(s, staple)
					st.expiry = exp
				}
			}
		}
	}
	ctx, cancel := context.WithCancel(m.ctx)
	s.stop = cancel
	m.wg.Add(1)
	go m.refreshOCSP(ctx, s, st)
}

// setStaple publishes a copy of s's certificate carrying staple (nil to
// drop it). Handshakes keep reading the old copy until the swap.
func setStaple(s *slot, staple []byte) {
	c := *s.cert.Load()
	c.OCSPStaple = staple
	s.cert.Store(&c)
}

// refreshOCSP keeps s's staple fresh until ctx ends. It never blocks a
// handshake: handshakes read whatever staple is published, if any.
func (m *Manager) refreshOCSP(ctx context.Context, s *slot, st ocspState) {
	defer m.wg.Done()
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		raw, next, err := m.fetchOCSP(ctx, s)
		if ctx.Err() != nil {
			return
		}
		var p ocspPlan
		st, p = st.step(time.Now(), raw, next, err)
		if p.publish {
			setStaple(s, p.staple)
		}
		attrs := []any{"cert_file", s.files.CertFile}
		switch p.event {
		case ocspUpdated:
			m.log.Debug("ocsp staple updated", append(attrs, "next_update", next.UTC().Format(time.RFC3339))...)
		case ocspRevoked:
			m.log.Error("ocsp responder says the certificate is revoked; not stapling", attrs...)
		case ocspExpired:
			m.log.Warn("ocsp staple expired and could not be refreshed; serving without it", append(attrs, "error", err)...)
		case ocspKept:
			m.log.Warn("ocsp fetch failed; keeping the last staple, if any", append(attrs, "error", err, "retry_in", p.wait.String())...)
		}
		timer.Reset(p.wait)
	}
}

// ocspState is what a refresher remembers between attempts.
type ocspState struct {
	expiry time.Time     // of the published staple; zero: none published
	retry  time.Duration // wait after the next failure; zero: ocspMinRefresh
}

// ocspEvent names the outcome of one attempt, for the log.
type ocspEvent int

const (
	ocspUpdated ocspEvent = iota
	ocspRevoked
	ocspExpired
	ocspKept
)

// ocspPlan is what to do after one attempt.
type ocspPlan struct {
	publish bool // replace the served staple with staple (nil drops it)
	staple  []byte
	wait    time.Duration
	event   ocspEvent
}

// step decides, from the outcome of a fetch at now, what to publish and
// when to try again: a good response is stapled and refreshed halfway to
// its NextUpdate (within [ocspMinRefresh, ocspMaxRefresh]); a revoked
// status drops the staple; any other failure keeps the last good staple
// until it expires, retrying with doubling back-off, and wakes at the
// expiry to drop it if that comes first.
func (st ocspState) step(now time.Time, raw []byte, next time.Time, err error) (ocspState, ocspPlan) {
	retry := st.retry
	if retry == 0 {
		retry = ocspMinRefresh
	}
	switch {
	case err == nil:
		wait := min(max(next.Sub(now)/2, ocspMinRefresh), ocspMaxRefresh)
		return ocspState{expiry: next}, ocspPlan{publish: true, staple: raw, wait: wait, event: ocspUpdated}
	case errors.Is(err, errRevoked):
		return ocspState{}, ocspPlan{publish: true, wait: ocspMaxRefresh, event: ocspRevoked}
	}
	wait := retry
	st.retry = min(retry*2, ocspMaxRetry)
	if !st.expiry.IsZero() && !now.Before(st.expiry) {
		st.expiry = time.Time{}
		return st, ocspPlan{publish: true, wait: wait, event: ocspExpired}
	}
	if !st.expiry.IsZero() {
		wait = max(min(wait, st.expiry.Sub(now)), time.Second)
	}
	return st, ocspPlan{wait: wait, event: ocspKept}
}

// fetchOCSP asks s's responder for a fresh response and verifies it: the
// signature (by the issuer or a responder it delegated to), the serial, a
// good status and the validity window. It returns the raw response to
// staple and when it stops being valid.
func (m *Manager) fetchOCSP(ctx context.Context, s *slot) ([]byte, time.Time, error) {
	reqBody, err := ocsp.CreateRequest(s.leaf, s.issuer, nil)
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("ocsp request: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, ocspTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.ocspURL, bytes.NewReader(reqBody))
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("ocsp responder %q: %w", s.ocspURL, err)
	}
	req.Header.Set("Content-Type", "application/ocsp-request")
	req.Header.Set("Accept", "application/ocsp-response")
	resp, err := m.ocspClient.Do(req)
	if err != nil {
		return nil, time.Time{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, time.Time{}, fmt.Errorf("ocsp responder %s answered %d", s.ocspURL, resp.StatusCode)
	}
	raw, err := io.ReadAll(io.LimitReader(resp.Body, ocspMaxBody+1))
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("ocsp responder %s: %w", s.ocspURL, err)
	}
	if len(raw) > ocspMaxBody {
		return nil, time.Time{}, fmt.Errorf("ocsp responder %s: response over %d bytes", s.ocspURL, ocspMaxBody)
	}
	r, err := ocsp.ParseResponseForCert(raw, s.leaf, s.issuer)
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("ocsp responder %s: %w", s.ocspURL, err)
	}
	if r.SerialNumber == nil || r.SerialNumber.Cmp(s.leaf.SerialNumber) != 0 {
		return nil, time.Time{}, fmt.Errorf("ocsp responder %s: response for another certificate", s.ocspURL)
	}
	switch r.Status {
	case ocsp.Good:
	case ocsp.Revoked:
		return nil, time.Time{}, errRevoked
	default:
		return nil, time.Time{}, fmt.Errorf("ocsp responder %s: status unknown", s.ocspURL)
	}
	now := time.Now()
	if r.ThisUpdate.After(now.Add(ocspSkew)) {
		return nil, time.Time{}, fmt.Errorf("ocsp responder %s: response dated in the future", s.ocspURL)
	}
	next := validUntil(r)
	if !next.After(now) {
		return nil, time.Time{}, fmt.Errorf("ocsp responder %s: response already expired", s.ocspURL)
	}
	return raw, next, nil
}

// validUntil is when a response stops being servable: its NextUpdate, or
// ocspNoNextUpdate after ThisUpdate when it has none.
func validUntil(r *ocsp.Response) time.Time {
	if r.NextUpdate.IsZero() {
		return r.ThisUpdate.Add(ocspNoNextUpdate)
	}
	return r.NextUpdate
}
