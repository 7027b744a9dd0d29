// Package discovery keeps an upstream's targets in step with DNS: targets
// given by host name are re-resolved (A and AAAA) on the records' TTL,
// and with discovery.dns_srv the targets come from SRV records. Every
// address found becomes a target; the pool's set is replaced through
// Pool.SetTargets, which keeps the state of targets that stayed. A failed
// lookup keeps the last good set.
//
// A Discoverer does nothing until Start (called once its snapshot is
// live, never for explain or validate) and stops on Close.
package discovery

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"

	"github.com/portunus-gw/portunus/internal/config"
	"github.com/portunus-gw/portunus/internal/upstream"
)

// Defaults of discovery.min_ttl and discovery.max_ttl. Records are
// followed on their own TTL, but never more often than once a second (a
// TTL of 0 must not turn into a query storm) and at least every five
// minutes (a long TTL must not hide a changed fleet for hours).
const (
	DefaultMinTTL = time.Second
	DefaultMaxTTL = 5 * time.Minute
	// queryTimeout bounds one DNS exchange.
	queryTimeout = 2 * time.Second
	// resolvConf is where the default servers are read.
	resolvConf = "/etc/resolv.conf"
)

// Setter is the part of a pool a discoverer drives.
type Setter interface {
	SetTargets([]upstream.Endpoint) error
}

// Needed reports whether u needs a discoverer: it has discovery.dns_srv,
// or a target whose host is a name (not an address, not localhost).
func Needed(u config.Upstream) bool {
	if u.Discovery.DNSSRV != "" {
		return true
	}
	for _, t := range u.Targets {
		if pu, err := url.Parse(t.URL); err == nil && isName(pu.Hostname()) {
			return true
		}
	}
	return false
}

func isName(host string) bool {
	if host == "" || strings.EqualFold(host, "localhost") {
		return false
	}
	_, err := netip.ParseAddr(host)
	return err != nil
}

// Discoverer resolves one upstream's targets and keeps its pool current.
type Discoverer struct {
	pool    Setter
	name    string
	targets []config.Target
	srv     string
	servers []string
	min     time.Duration
	max     time.Duration
	log     *slog.Logger

	mu      sync.Mutex
	started bool
	cancel  context.CancelFunc
	done    chan struct{}
	last    []upstream.Endpoint
	err     error
}

// New builds the discoverer of upstream u for pool. It reads the
// resolver's address now (a bad resolver is a config error at load), but
// sends no query until Start. log may be nil.
func New(pool Setter, u config.Upstream, log *slog.Logger) (*Discoverer, error) {
	d := &Discoverer{
		pool:    pool,
		name:    u.Name,
		targets: u.Targets,
		srv:     u.Discovery.DNSSRV,
		min:     u.Discovery.MinTTL.D(),
		max:     u.Discovery.MaxTTL.D(),
		log:     log,
	}
	if d.min <= 0 {
		d.min = DefaultMinTTL
	}
	if d.max <= 0 {
		d.max = DefaultMaxTTL
	}
	if d.max < d.min {
		d.max = d.min
	}
	if d.log == nil {
		d.log = slog.New(slog.DiscardHandler)
	}
	if r := u.Discovery.Resolver; r != "" {
		if _, _, err := net.SplitHostPort(r); err != nil {
			return nil, fmt.Errorf("discovery.resolver %q: want host:port", r)
		}
		d.servers = []string{r}
	} else {
		if cc, err := dns.ClientConfigFromFile(resolvConf); err == nil {
			for _, s := range cc.Servers {
				d.servers = append(d.servers, net.JoinHostPort(s, cc.Port))
			}
		}
		if len(d.servers) == 0 {
			// As the C library and Go's resolver do without a
			// resolv.conf: a local server.
			d.servers = []string{"127.0.0.1:53", "[::1]:53"}
		}
	}
	return d, nil
}

// Start begins resolving in the background: at once, then on the
// records' TTL. Calling it again, or after Close, does nothing.
func (d *Discoverer) Start() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.started {
		return
	}
	d.started = true
	ctx, cancel := context.WithCancel(context.Background())
	d.cancel = cancel
	d.done = make(chan struct{})
	go d.run(ctx)
}

// Close stops the background work and waits for it to end.
func (d *Discoverer) Close() error {
	d.mu.Lock()
	if !d.started {
		d.started = true // a later Start does nothing
		d.mu.Unlock()
		return nil
	}
	cancel, done := d.cancel, d.done
	d.mu.Unlock()
	if cancel != nil {
		cancel()
		<-done
	}
	return nil
}

// Endpoints returns the last set applied to the pool, and the last
// lookup error (nil when the last round succeeded).
func (d *Discoverer) Endpoints() ([]upstream.Endpoint, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Clone(d.last), d.err
}

func (d *Discoverer) run(ctx context.Context) {
	defer close(d.done)
	fails := 0
	for {
		eps, ttl, err := d.Resolve(ctx)
		if ctx.Err() != nil {
			return
		}
		if err == nil && len(eps) == 0 {
			err = errors.New("no address found")
		}
		var wait time.Duration
		if err != nil {
			// Keep the last good set; look again soon, backing off up
			// to max_ttl while the failure lasts.
			fails++
			wait = d.retryWait(fails)
			d.log.Warn("upstream discovery failed; keeping the last targets", "upstream", d.name, "error", err, "retry_in", wait)
			d.mu.Lock()
			d.err = err
			d.mu.Unlock()
		} else {
			fails = 0
			wait = d.ttlWait(ttl)
			d.apply(eps)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// ttlWait is the wait before the next round after a lookup whose
// records' smallest TTL is ttl: the TTL kept between min_ttl and max_ttl.
func (d *Discoverer) ttlWait(ttl time.Duration) time.Duration {
	return min(max(ttl, d.min), d.max)
}

// retryWait is the wait after the fails-th failed round in a row:
// min_ttl after the first, doubling with each next one, at most max_ttl.
func (d *Discoverer) retryWait(fails int) time.Duration {
	w := d.min
	for i := 1; i < fails && w < d.max; i++ {
		if w > d.max/2 {
			return d.max
		}
		w *= 2
	}
	return min(w, d.max)
}

func (d *Discoverer) apply(eps []upstream.Endpoint) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.err = nil
	if slices.Equal(eps, d.last) {
		return
	}
	if err := d.pool.SetTargets(eps); err != nil {
		d.err = err
		d.log.Warn("upstream discovery: targets refused", "upstream", d.name, "error", err)
		return
	}
	d.last = eps
	d.log.Info("upstream targets changed", "upstream", d.name, "targets", len(eps))
}

// Resolve runs one round of lookups and returns the endpoints in a stable
// order and the smallest TTL seen (0 when no record had one). An error in
// any lookup fails the round: a partial answer must not shrink the set.
func (d *Discoverer) Resolve(ctx context.Context) ([]upstream.Endpoint, time.Duration, error) {
	var eps []upstream.Endpoint
	var ttl uint32
	seen := map[string]bool{}
	add := func(ep upstream.Endpoint) {
		if !seen[ep.URL] {
			seen[ep.URL] = true
			eps = append(eps, ep)
		}
	}
	note := func(t uint32) {
		if ttl == 0 || t < ttl {
			ttl = t
		}
	}
	for _, t := range d.targets {
		u, err := url.Parse(t.URL)
		if err != nil {
			return nil, 0, err
		}
		w := max(t.Weight, 1)
		host := u.Hostname()
		if !isName(host) {
			add(upstream.Endpoint{URL: t.URL, Weight: w})
			continue
		}
		addrs, rttl, err := d.lookupHost(ctx, host)
		if err != nil {
			return nil, 0, fmt.Errorf("%s: %w", host, err)
		}
		note(rttl)
		for _, a := range addrs {
			add(upstream.Endpoint{URL: withAddr(u, a, u.Port()), Weight: w, Host: u.Host})
		}
	}
	if d.srv != "" {
		sEps, sttl, err := d.lookupSRV(ctx)
		if err != nil {
			return nil, 0, fmt.Errorf("%s SRV: %w", d.srv, err)
		}
		note(sttl)
		for _, ep := range sEps {
			add(ep)
		}
	}
	slices.SortStableFunc(eps, func(a, b upstream.Endpoint) int { return strings.Compare(a.URL, b.URL) })
	return eps, time.Duration(ttl) * time.Second, nil
}

// withAddr is u with its host replaced by addr (port kept).
func withAddr(u *url.URL, addr netip.Addr, port string) string {
	c := *u
	h := addr.String()
	if port != "" {
		h = net.JoinHostPort(h, port)
	} else if addr.Is6() {
		h = "[" + h + "]"
	}
	c.Host = h
	return c.String()
}

// lookupHost returns the A and AAAA addresses of name and their
// smallest TTL. A name with no address of either family is an error.
func (d *Discoverer) lookupHost(ctx context.Context, name string) ([]netip.Addr, uint32, error) {
	var addrs []netip.Addr
	var ttl uint32
	for _, qt := range []uint16{dns.TypeA, dns.TypeAAAA} {
		rrs, err := d.query(ctx, name, qt)
		if err != nil {
			return nil, 0, err
		}
		for _, rr := range rrs {
			var ip net.IP
			switch r := rr.(type) {
			case *dns.A:
				ip = r.A
			case *dns.AAAA:
				ip = r.AAAA
			default:
				continue
			}
			if a, ok := netip.AddrFromSlice(ip); ok {
				addrs = append(addrs, a.Unmap())
				if t := rr.Header().Ttl; ttl == 0 || t < ttl {
					ttl = t
				}
			}
		}
	}
	if len(addrs) == 0 {
		return nil, 0, errors.New("no A or AAAA record")
	}
	return addrs, ttl, nil
}

// lookupSRV turns the SRV records of the lowest priority into endpoints:
// each record's target resolved to its addresses, with the record's port
// and weight (a weight of 0 counts as 1: RFC 2782 gives such records a
// small chance, not none). The scheme is https when the service label is
// _https, else http.
func (d *Discoverer) lookupSRV(ctx context.Context) ([]upstream.Endpoint, uint32, error) {
	rrs, err := d.query(ctx, d.srv, dns.TypeSRV)
	if err != nil {
		return nil, 0, err
	}
	var srvs []*dns.SRV
	ttl := uint32(0)
	for _, rr := range rrs {
		if s, ok := rr.(*dns.SRV); ok {
			srvs = append(srvs, s)
		}
	}
	if len(srvs) == 0 {
		return nil, 0, errors.New("no SRV record")
	}
	lowest := srvs[0].Priority
	for _, s := range srvs {
		lowest = min(lowest, s.Priority)
	}
	scheme := "http"
	if strings.HasPrefix(strings.ToLower(d.srv), "_https.") {
		scheme = "https"
	}
	var eps []upstream.Endpoint
	for _, s := range srvs {
		if s.Priority != lowest {
			continue
		}
		if ttl == 0 || s.Hdr.Ttl < ttl {
			ttl = s.Hdr.Ttl
		}
		host := strings.TrimSuffix(s.Target, ".")
		port := strconv.Itoa(int(s.Port))
		var addrs []netip.Addr
		if a, err := netip.ParseAddr(host); err == nil {
			addrs = []netip.Addr{a}
		} else {
			var attl uint32
			addrs, attl, err = d.lookupHost(ctx, host)
			if err != nil {
				return nil, 0, fmt.Errorf("%s: %w", host, err)
			}
			ttl = min(ttl, attl)
		}
		for _, a := range addrs {
			u := &url.URL{Scheme: scheme}
			eps = append(eps, upstream.Endpoint{URL: withAddr(u, a, port), Weight: max(int(s.Weight), 1), Host: net.JoinHostPort(host, port)})
		}
	}
	return eps, ttl, nil
}

// query asks the servers in turn for name's records of type qt and
// returns the answer section. NXDOMAIN and an empty answer are no
// records, not an error; a server that fails or refuses is skipped.
func (d *Discoverer) query(ctx context.Context, name string, qt uint16) ([]dns.RR, error) {
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), qt)
	m.RecursionDesired = true
	var lastErr error
	for _, srv := range d.servers {
		qctx, cancel := context.WithTimeout(ctx, queryTimeout)
		in, err := exchange(qctx, m, srv)
		cancel()
		if err != nil {
			lastErr = err
			continue
		}
		switch in.Rcode {
		case dns.RcodeSuccess, dns.RcodeNameError:
			return in.Answer, nil
		default:
			lastErr = fmt.Errorf("server %s answered %s", srv, dns.RcodeToString[in.Rcode])
		}
	}
	return nil, lastErr
}

// exchange sends m over UDP, and again over TCP when the answer was
// truncated.
func exchange(ctx context.Context, m *dns.Msg, srv string) (*dns.Msg, error) {
	c := &dns.Client{Net: "udp", Timeout: queryTimeout}
	in, _, err := c.ExchangeContext(ctx, m, srv)
	if err == nil && in.Truncated {
		c.Net = "tcp"
		in, _, err = c.ExchangeContext(ctx, m, srv)
	}
	return in, err
}
