package jwtauth

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

const (
	maxJWKSBytes       = 1 << 20 // a JWKS larger than this is refused
	jwksFetchTimeout   = 10 * time.Second
	jwksDefaultRefresh = 5 * time.Minute
	jwksMinRefresh     = time.Minute
	jwksMaxRefresh     = 24 * time.Hour
	jwksRetryMin       = 5 * time.Second
)

// jwks keeps the key set of one JWKS URL: fetched at start, refreshed in
// the background, re-fetched on an unknown kid at most once per cooldown.
// A failed fetch never replaces the last good set.
type jwks struct {
	url      string
	logURL   string // url without userinfo, for logs
	allowed  algSet // the provider's allow-list: JWKs outside it are dropped
	cooldown time.Duration
	client   *http.Client
	log      *slog.Logger
	now      func() time.Time

	keys atomic.Pointer[keySet] // last good set; nil until the first success

	mu          sync.Mutex
	inflight    chan struct{} // closed when the running fetch ends; nil when idle
	lastAttempt time.Time     // start of the last fetch, success or not
	nextRefresh time.Duration // from the last fetch: Cache-Control or retry backoff
	retry       time.Duration
	retryMin    time.Duration // first retry delay after a failure
	closed      bool

	fetches atomic.Int64 // fetch attempts, for tests and logs

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	kick   chan struct{}
}

func newJWKS(url string, allowed algSet, cooldown time.Duration, log *slog.Logger, now func() time.Time) *jwks {
	ctx, cancel := context.WithCancel(context.Background())
	j := &jwks{
		url: url, allowed: allowed, cooldown: cooldown, log: log, now: now,
		client: &http.Client{Timeout: jwksFetchTimeout},
		ctx:    ctx, cancel: cancel,
		kick:     make(chan struct{}, 1),
		retryMin: jwksRetryMin,
		logURL:   redactURL(url),
	}
	// The first fetch is marked in flight before New returns, so requests
	// arriving early wait for it instead of being refused.
	ch := j.begin(true, true)
	j.wg.Add(1)
	go func() { defer j.wg.Done(); j.run(ch) }()
	go func() { defer j.wg.Done(); j.refresher() }()
	return j
}

// begin marks a fetch as started and returns its completion channel, or
// nil when one is already running, the set is closed, or (unless force)
// the cooldown has not passed. When async, the caller will run the fetch
// in a new goroutine, counted here so that close waits for it.
func (j *jwks) begin(force, async bool) chan struct{} {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.inflight != nil || j.closed {
		return nil
	}
	if !force && !j.lastAttempt.IsZero() && j.now().Sub(j.lastAttempt) < j.cooldown {
		return nil
	}
	ch := make(chan struct{})
	j.inflight = ch
	j.lastAttempt = j.now()
	if async {
		j.wg.Add(1)
	}
	return ch
}

// run performs the fetch begun by begin and publishes the outcome.
func (j *jwks) run(ch chan struct{}) {
	ks, maxAge, err := j.fetch()
	j.mu.Lock()
	if err != nil {
		if j.retry == 0 {
			j.retry = j.retryMin
		} else {
			j.retry = min(2*j.retry, jwksDefaultRefresh)
		}
		j.nextRefresh = j.retry
	} else {
		j.retry = 0
		j.nextRefresh = maxAge
		j.keys.Store(ks)
	}
	j.inflight = nil
	j.mu.Unlock()
	close(ch)
	if err != nil && j.ctx.Err() == nil {
		j.log.Warn("jwks fetch failed; keeping the last good key set", "url", j.logURL, "error", err)
	}
	select {
	case j.kick <- struct{}{}: // let the refresher re-arm its timer
	default:
	}
}

func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(invalid URL)"
	}
	return u.Redacted()
}

// refetch is the unknown-kid path: start a fetch unless one ran within the
// cooldown, and wait (bounded by ctx) for the running one.
func (j *jwks) refetch(ctx context.Context) {
	j.mu.Lock()
	wait := j.inflight
	j.mu.Unlock()
	if wait == nil {
		if ch := j.begin(false, true); ch != nil {
			wait = ch
			go func() { defer j.wg.Done(); j.run(ch) }()
		}
	}
	if wait == nil {
		return
	}
	select {
	case <-wait:
	case <-ctx.Done():
	case <-j.ctx.Done():
	}
}

// refresher re-fetches the set on the interval the last fetch asked for.
func (j *jwks) refresher() {
	t := time.NewTimer(jwksDefaultRefresh)
	defer t.Stop()
	for {
		select {
		case <-j.ctx.Done():
			return
		case <-j.kick:
			j.mu.Lock()
			d := j.nextRefresh
			j.mu.Unlock()
			if d <= 0 {
				d = jwksDefaultRefresh
			}
			t.Reset(d)
		case <-t.C:
			if ch := j.begin(true, false); ch != nil {
				j.run(ch)
			} else {
				t.Reset(jwksRetryMin)
			}
		}
	}
}

func (j *jwks) close() {
	j.mu.Lock()
	j.closed = true
	j.mu.Unlock()
	j.cancel()
	j.wg.Wait()
	j.client.CloseIdleConnections()
}

// fetch downloads and parses the set; maxAge is the refresh interval the
// response asks for, bounded.
func (j *jwks) fetch() (*keySet, time.Duration, error) {
	j.fetches.Add(1)
	ctx, cancel := context.WithTimeout(j.ctx, jwksFetchTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, j.url, nil)
	if err != nil {
		return nil, 0, err
	}
	req.Header.Set("Accept", "application/jwk-set+json, application/json")
	resp, err := j.client.Do(req)
	if err != nil {
		return nil, 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
		return nil, 0, fmt.Errorf("status %d", resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxJWKSBytes+1))
	if err != nil {
		return nil, 0, err
	}
	if len(body) > maxJWKSBytes {
		return nil, 0, fmt.Errorf("key set larger than %d bytes", maxJWKSBytes)
	}
	keys, skipped, err := parseJWKS(body, j.allowed)
	if err != nil {
		return nil, 0, err
	}
	if len(keys) == 0 {
		return nil, 0, fmt.Errorf("key set has no usable key (%d skipped)", skipped)
	}
	if skipped > 0 {
		j.log.Debug("jwks keys skipped", "url", j.logURL, "skipped", skipped)
	}
	return newKeySet(keys), maxAgeOf(resp.Header.Get("Cache-Control")), nil
}

// maxAgeOf reads max-age from Cache-Control, bounded to [1m, 24h];
// absent or invalid gives the 5-minute default.
func maxAgeOf(cc string) time.Duration {
	for part := range strings.SplitSeq(cc, ",") {
		name, val, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok || !strings.EqualFold(name, "max-age") {
			continue
		}
		n, err := strconv.ParseInt(strings.Trim(val, `"`), 10, 64)
		if err != nil || n < 0 {
			break
		}
		d := time.Duration(min(n, int64(jwksMaxRefresh/time.Second))) * time.Second
		return max(jwksMinRefresh, min(d, jwksMaxRefresh))
	}
	return jwksDefaultRefresh
}

// jwk is the subset of RFC 7517/7518/8037 members we read.
type jwk struct {
	Kty string `json:"kty"`
	Kid string `json:"kid"`
	Alg string `json:"alg"`
	Use string `json:"use"`
	N   string `json:"n"`
	E   string `json:"e"`
	Crv string `json:"crv"`
	X   string `json:"x"`
	Y   string `json:"y"`
}

// parseJWKS returns the usable keys of a JWK set. A key is used only for
// algorithms in allowed that its type permits; a key whose own alg is
// outside that set, an encryption key, a symmetric key ("oct": HMAC
// secrets are never taken from the network) or a malformed key is skipped.
func parseJWKS(body []byte, allowed algSet) (keys []*key, skipped int, err error) {
	var set struct {
		Keys []jwk `json:"keys"`
	}
	if err := json.Unmarshal(body, &set); err != nil {
		return nil, 0, fmt.Errorf("invalid key set: %w", err)
	}
	for _, k := range set.Keys {
		pub, err := k.publicKey()
		if err != nil || (k.Use != "" && k.Use != "sig") {
			skipped++
			continue
		}
		algs, err := algsForKey(pub)
		if err != nil {
			skipped++
			continue
		}
		algs &= allowed
		if k.Alg != "" {
			algs &= algBit(k.Alg)
		}
		if algs == 0 {
			skipped++
			continue
		}
		keys = append(keys, &key{kid: k.Kid, algs: algs, pub: pub})
	}
	return keys, skipped, nil
}

func b64(s string) ([]byte, error) {
	return base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "="))
}

func (k *jwk) publicKey() (any, error) {
	switch k.Kty {
	case "RSA":
		n, err1 := b64(k.N)
		e, err2 := b64(k.E)
		if err1 != nil || err2 != nil || len(n) == 0 || len(e) == 0 || len(e) > 4 {
			return nil, errors.New("bad RSA key")
		}
		ev := int(new(big.Int).SetBytes(e).Int64())
		if ev < 3 || ev%2 == 0 {
			return nil, errors.New("bad RSA exponent")
		}
		return &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: ev}, nil
	case "EC":
		var c elliptic.Curve
		switch k.Crv {
		case "P-256":
			c = elliptic.P256()
		case "P-384":
			c = elliptic.P384()
		case "P-521":
			c = elliptic.P521()
		default:
			return nil, errors.New("unsupported curve")
		}
		x, err1 := b64(k.X)
		y, err2 := b64(k.Y)
		size := (c.Params().BitSize + 7) / 8
		if err1 != nil || err2 != nil || len(x) != size || len(y) != size {
			return nil, errors.New("bad EC key")
		}
		// Validate the point via the uncompressed encoding, which checks
		// it is on the curve.
		raw := make([]byte, 0, 1+2*size)
		raw = append(append(append(raw, 4), x...), y...)
		pk, err := ecdsa.ParseUncompressedPublicKey(c, raw)
		if err != nil {
			return nil, errors.New("EC point not on curve")
		}
		return pk, nil
	case "OKP":
		x, err := b64(k.X)
		if k.Crv != "Ed25519" || err != nil || len(x) != ed25519.PublicKeySize {
			return nil, errors.New("bad OKP key")
		}
		return ed25519.PublicKey(x), nil
	}
	return nil, errors.New("unsupported key type")
}
