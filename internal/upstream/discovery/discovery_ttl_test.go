package discovery_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/portunus-gw/portunus/internal/config"
	"github.com/portunus-gw/portunus/internal/upstream/discovery"
)

// aQueries returns when the zone was asked for name's A records, in order.
func (z *zone) aQueries(name string) []time.Time {
	z.mu.Lock()
	defer z.mu.Unlock()
	var out []time.Time
	for _, q := range z.asked {
		if q.qtype == dns.TypeA && q.name == dns.Fqdn(name) {
			out = append(out, q.at)
		}
	}
	return out
}

// waitRounds polls until the zone was asked for name's A records n times
// (one per lookup round) and returns when.
func waitRounds(t *testing.T, z *zone, name string, n int) []time.Time {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for {
		if q := z.aQueries(name); len(q) >= n {
			return q[:n]
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d lookup rounds of %s within %v; want %d", len(z.aQueries(name)), name, waitLimit, n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestTTLClamp: with a local DNS server counting the queries, a name is
// re-resolved on its record's TTL kept between min_ttl and max_ttl. The
// gaps between rounds are checked from below only (a timer never fires
// early); that the rounds come at all within the test's wait shows a
// one-hour TTL was cut to max_ttl.
func TestTTLClamp(t *testing.T) {
	t.Parallel()
	rows := []struct {
		name     string
		ttl      int // seconds, in the record
		min, max time.Duration
		// gap is the least time between two rounds.
		gap time.Duration
	}{
		// A one-hour TTL is re-queried every max_ttl (not every
		// min_ttl, not every hour).
		{"long TTL cut to max_ttl", 3600, 20 * time.Millisecond, 150 * time.Millisecond, 150 * time.Millisecond},
		// TTL 0 must not become a query storm.
		{"TTL 0 raised to min_ttl", 0, 200 * time.Millisecond, 5 * time.Minute, 200 * time.Millisecond},
		// Nor a TTL of 1 s when min_ttl is longer.
		{"TTL 1s raised to min_ttl", 1, 1200 * time.Millisecond, 5 * time.Minute, 1200 * time.Millisecond},
		// Between the bounds the record's own TTL is followed.
		{"TTL 1s between the bounds", 1, 50 * time.Millisecond, 5 * time.Minute, time.Second},
	}
	for i, row := range rows {
		t.Run(row.name, func(t *testing.T) {
			t.Parallel()
			z := startZone(t)
			name := fmt.Sprintf("ttl%d.test", i)
			z.set(t, dns.TypeA, name, fmt.Sprintf("%s. %d IN A 127.0.0.4%d", name, row.ttl, i))
			u := config.Upstream{
				Name:      "ttl",
				Targets:   []config.Target{{URL: "http://" + name + ":8080"}},
				Discovery: config.Discovery{Resolver: z.addr, MinTTL: config.Duration(row.min), MaxTTL: config.Duration(row.max)},
			}
			d, err := discovery.New(nopSetter{}, u, nil)
			if err != nil {
				t.Fatal(err)
			}
			d.Start()
			defer d.Close()
			rounds := waitRounds(t, z, name, 3)
			for k := 1; k < len(rounds); k++ {
				if gap := rounds[k].Sub(rounds[k-1]); gap < row.gap {
					t.Errorf("round %d came %v after the one before; want at least %v (TTL %ds, min_ttl %v, max_ttl %v)", k+1, gap, row.gap, row.ttl, row.min, row.max)
				}
			}
			if eps, err := d.Endpoints(); err != nil || len(eps) != 1 {
				t.Errorf("endpoints %v, %v; want the one address", eps, err)
			}
		})
	}
}

// TestTTLWait: the wait after a good round, exactly.
func TestTTLWait(t *testing.T) {
	t.Parallel()
	d, err := discovery.New(nopSetter{}, config.Upstream{Name: "w", Discovery: config.Discovery{
		DNSSRV: "_http._tcp.w.test", Resolver: "127.0.0.1:53", MinTTL: config.Duration(time.Second), MaxTTL: config.Duration(time.Minute)}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for ttl, want := range map[time.Duration]time.Duration{
		0: time.Second, time.Second: time.Second, 30 * time.Second: 30 * time.Second,
		time.Minute: time.Minute, time.Hour: time.Minute,
	} {
		if got := d.TTLWait(ttl); got != want {
			t.Errorf("TTL %v: wait %v; want %v", ttl, got, want)
		}
	}
}

// TestRetryWait: after a failed round the next comes after min_ttl, then
// twice that for each further failure in a row, at most max_ttl; with the
// defaults (1 s, 5 min) and with bounds where doubling would overflow.
func TestRetryWait(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		min, max time.Duration
		want     []time.Duration // after failure 1, 2, …
	}{
		{0, 0, []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 16 * time.Second,
			32 * time.Second, 64 * time.Second, 128 * time.Second, 256 * time.Second, 5 * time.Minute, 5 * time.Minute}},
		{100 * time.Millisecond, 350 * time.Millisecond, []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 350 * time.Millisecond, 350 * time.Millisecond}},
		{time.Minute, time.Minute, []time.Duration{time.Minute, time.Minute}},
		{1 << 61, 1<<63 - 1, []time.Duration{1 << 61, 1 << 62, 1<<63 - 1, 1<<63 - 1}},
	} {
		d, err := discovery.New(nopSetter{}, config.Upstream{Name: "w", Discovery: config.Discovery{
			DNSSRV: "_http._tcp.w.test", Resolver: "127.0.0.1:53", MinTTL: config.Duration(c.min), MaxTTL: config.Duration(c.max)}}, nil)
		if err != nil {
			t.Fatal(err)
		}
		for i, want := range c.want {
			if got := d.RetryWait(i + 1); got != want {
				t.Errorf("min_ttl %v, max_ttl %v, failure %d: wait %v; want %v", c.min, c.max, i+1, got, want)
			}
		}
		if got := d.RetryWait(1000); got != d.RetryWait(len(c.want)) {
			t.Errorf("min_ttl %v, max_ttl %v, failure 1000: wait %v; want the cap", c.min, c.max, got)
		}
	}
}

// TestFailedLookupBacksOff: against a server that answers SERVFAIL, the
// rounds come no more often than min_ttl, 2 × min_ttl, 4 × min_ttl, …
// (checked from below; TestRetryWait checks the exact waits), and the
// lookup keeps being retried.
func TestFailedLookupBacksOff(t *testing.T) {
	t.Parallel()
	z := startZone(t)
	z.setFail(true)
	const minTTL = 50 * time.Millisecond
	u := config.Upstream{
		Name:      "down",
		Targets:   []config.Target{{URL: "http://down.test:8080"}},
		Discovery: config.Discovery{Resolver: z.addr, MinTTL: config.Duration(minTTL), MaxTTL: config.Duration(time.Second)},
	}
	d, err := discovery.New(nopSetter{}, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	d.Start()
	defer d.Close()
	rounds := waitRounds(t, z, "down.test", 5)
	for k := 1; k < len(rounds); k++ {
		want := minTTL << (k - 1)
		if gap := rounds[k].Sub(rounds[k-1]); gap < want {
			t.Errorf("retry %d came %v after the failed round; want at least %v", k, gap, want)
		}
	}
	if _, err := d.Endpoints(); err == nil {
		t.Error("Endpoints reports no error while every lookup fails")
	}
}
