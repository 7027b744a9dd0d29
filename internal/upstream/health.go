package upstream

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/portunus-gw/portunus/internal/config"
)

// CheckResult is the outcome of one active health probe.
type CheckResult struct {
	// Time is when the probe finished.
	Time time.Time
	// OK says the answer's status was expected.
	OK bool
	// Status is the answer's status (0 when none came).
	Status int
	// Error says why the probe failed ("" when OK).
	Error string
	// Duration is how long the probe took.
	Duration time.Duration
}

type activeConfig struct {
	path      string
	interval  time.Duration
	timeout   time.Duration
	healthy   int
	unhealthy int
	expected  statusRanges
}

func newActiveConfig(c *config.HealthCheck) (*activeConfig, error) {
	if c == nil {
		return nil, nil
	}
	ac := &activeConfig{
		path:      c.Path,
		interval:  orDefault(c.Interval.D(), 2*time.Second),
		timeout:   orDefault(c.Timeout.D(), time.Second),
		healthy:   max(c.HealthyThreshold, 0),
		unhealthy: max(c.UnhealthyThreshold, 0),
	}
	if ac.path == "" {
		ac.path = "/healthz"
	}
	if !strings.HasPrefix(ac.path, "/") {
		return nil, fmt.Errorf("health_check.path %q must start with /", ac.path)
	}
	if ac.healthy == 0 {
		ac.healthy = 2
	}
	if ac.unhealthy == 0 {
		ac.unhealthy = 2
	}
	exp := c.ExpectedStatus
	if exp == "" {
		exp = "200-399"
	}
	r, err := parseStatusRanges(exp)
	if err != nil {
		return nil, fmt.Errorf("health_check.expected_status: %w", err)
	}
	ac.expected = r
	return ac, nil
}

// statusRanges is an expected_status list: inclusive [lo, hi] pairs.
type statusRanges [][2]int

func parseStatusRanges(s string) (statusRanges, error) {
	var out statusRanges
	for part := range strings.SplitSeq(s, ",") {
		lo, hi, isRange := strings.Cut(strings.TrimSpace(part), "-")
		a, err1 := strconv.Atoi(strings.TrimSpace(lo))
		b := a
		var err2 error
		if isRange {
			b, err2 = strconv.Atoi(strings.TrimSpace(hi))
		}
		if err1 != nil || err2 != nil || a < 100 || b > 599 || a > b {
			return nil, fmt.Errorf("invalid status list %q: want e.g. \"200-399\" or \"200,204\"", s)
		}
		out = append(out, [2]int{a, b})
	}
	return out, nil
}

func (r statusRanges) contains(status int) bool {
	for _, p := range r {
		if status >= p[0] && status <= p[1] {
			return true
		}
	}
	return false
}

// jitter spreads probes: each wait is interval ±10%, so gateways started
// together drift apart instead of probing every target in lockstep.
func jitter(d time.Duration) time.Duration {
	spread := int64(d) / 5
	if spread <= 0 {
		return d
	}
	return d - time.Duration(spread/2) + time.Duration(rand.Int64N(spread+1))
}

// checker probes a pool's targets, one goroutine per target.
type checker struct {
	cfg    *activeConfig
	client *http.Client
	ctx    context.Context
	// serverName is the pool's namedServer: the TLS server name an https
	// target found by discovery needs; its probes use a client of their
	// own (named, by target Host), as its requests use a transport of
	// their own.
	serverName func(*Target) string
	mu         sync.Mutex
	named      map[string]*http.Client
}

// newChecker builds the probe client on a clone of the pool's transport:
// the same TLS settings (CA, client certificate, server name), but its own
// connections, so probes never queue behind max_connections and a probe
// connection is not handed to a client request.
func newChecker(ctx context.Context, cfg *activeConfig, tr *http.Transport, serverName func(*Target) string) *checker {
	return &checker{cfg: cfg, ctx: ctx, client: probeClient(tr), serverName: serverName}
}

func probeClient(tr *http.Transport) *http.Client {
	ptr := tr.Clone()
	ptr.MaxConnsPerHost = 0
	ptr.MaxIdleConnsPerHost = 1
	return &http.Client{
		Transport: ptr,
		// A redirect is an answer: its status is judged, not followed.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// maxNamedProbeClients bounds the probe clients kept for named targets.
const maxNamedProbeClients = 1024

// clientFor is the probe client for t.
func (c *checker) clientFor(t *Target) *http.Client {
	name := ""
	if c.serverName != nil {
		name = c.serverName(t)
	}
	if name == "" {
		return c.client
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	key := t.Host + " " + name
	cl := c.named[key]
	if cl == nil {
		cl = probeClient(withServerName(c.client.Transport.(*http.Transport), name))
		if c.named == nil || len(c.named) >= maxNamedProbeClients {
			// Targets come and go with discovery: start over rather
			// than keep clients of long-gone addresses.
			for _, old := range c.named {
				old.CloseIdleConnections()
			}
			c.named = map[string]*http.Client{}
		}
		c.named[key] = cl
	}
	return cl
}

// closeIdle closes the probe clients' idle connections.
func (c *checker) closeIdle() {
	c.client.CloseIdleConnections()
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, cl := range c.named {
		cl.CloseIdleConnections()
	}
}

// run probes t until stop is closed or the pool's context ends. The first
// probe waits a random part of the interval.
func (c *checker) run(t *Target, stop <-chan struct{}) {
	timer := time.NewTimer(time.Duration(rand.Int64N(int64(c.cfg.interval)) + 1))
	defer timer.Stop()
	for {
		select {
		case <-stop:
			return
		case <-c.ctx.Done():
			return
		case <-timer.C:
		}
		res := c.probe(t)
		t.recordCheck(res)
		timer.Reset(jitter(c.cfg.interval))
	}
}

// maxProbeBody bounds how much of a probe's answer is read (and
// discarded) so the connection can be reused.
const maxProbeBody = 64 << 10

func (c *checker) probe(t *Target) *CheckResult {
	start := time.Now()
	ctx, cancel := context.WithTimeout(c.ctx, c.cfg.timeout)
	defer cancel()
	u := *t.URL
	u.Path = t.URL.Path + c.cfg.path
	u.RawPath = ""
	if t.PathPrefix != "" {
		u.RawPath = t.PathPrefix + c.cfg.path
	}
	res := &CheckResult{}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err == nil {
		req.Header.Set("User-Agent", "portunus-health-check")
		req.Host = t.Authority
		var resp *http.Response
		resp, err = c.clientFor(t).Do(req)
		if err == nil {
			_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxProbeBody))
			_ = resp.Body.Close()
			res.Status = resp.StatusCode
			res.OK = c.cfg.expected.contains(resp.StatusCode)
			if !res.OK {
				res.Error = "unexpected status " + strconv.Itoa(resp.StatusCode)
			}
		}
	}
	if err != nil {
		res.Error = err.Error()
		if errors.Is(err, context.DeadlineExceeded) {
			res.Error = "no answer within " + c.cfg.timeout.String()
		}
	}
	res.Time = time.Now()
	res.Duration = res.Time.Sub(start)
	return res
}

// recordCheck applies one probe result to the target's active verdict.
func (t *Target) recordCheck(res *CheckResult) {
	ac := t.h.active
	t.lastCheck.Store(res)
	t.h.obs.HealthCheck(t.str, res.OK)
	t.activeMu.Lock()
	defer t.activeMu.Unlock()
	down := t.down.Load()&downActive != 0
	if res.OK {
		t.activeFail = 0
		t.activeOK++
		if down && t.activeOK >= ac.healthy {
			t.down.And(^downActive)
			t.h.obs.TargetUp(t.str, true)
		}
		return
	}
	t.activeOK = 0
	t.activeFail++
	if !down && t.activeFail >= ac.unhealthy {
		t.down.Or(downActive)
		t.h.obs.TargetUp(t.str, false)
	}
}
