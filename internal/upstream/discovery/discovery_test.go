package discovery_test

import (
	"context"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
	"go.uber.org/goleak"

	"github.com/portunus-gw/portunus/internal/config"
	"github.com/portunus-gw/portunus/internal/upstream"
	"github.com/portunus-gw/portunus/internal/upstream/discovery"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const waitLimit = 10 * time.Second

// zone is a DNS server on 127.0.0.1 whose records the test changes.
type zone struct {
	mu      sync.Mutex
	records map[uint16]map[string][]dns.RR // type -> fqdn -> answer
	fail    bool                           // answer SERVFAIL
	addr    string
	asked   []question // every query received, in order
}

// question is one query the zone received, and when.
type question struct {
	name  string
	qtype uint16
	at    time.Time
}

func startZone(t *testing.T) *zone {
	t.Helper()
	z := &zone{records: map[uint16]map[string][]dns.RR{}}
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	z.addr = pc.LocalAddr().String()
	started := make(chan struct{})
	srv := &dns.Server{PacketConn: pc, Handler: z, NotifyStartedFunc: func() { close(started) }}
	go srv.ActivateAndServe()
	<-started
	t.Cleanup(func() { srv.Shutdown() })
	return z
}

func (z *zone) ServeDNS(w dns.ResponseWriter, req *dns.Msg) {
	m := new(dns.Msg)
	m.SetReply(req)
	z.mu.Lock()
	z.asked = append(z.asked, question{name: req.Question[0].Name, qtype: req.Question[0].Qtype, at: time.Now()})
	if z.fail {
		m.Rcode = dns.RcodeServerFailure
	} else {
		q := req.Question[0]
		m.Answer = z.records[q.Qtype][q.Name]
	}
	z.mu.Unlock()
	w.WriteMsg(m)
}

// set replaces the records of one name and type, from zone-file lines.
func (z *zone) set(t *testing.T, qt uint16, name string, lines ...string) {
	t.Helper()
	var rrs []dns.RR
	for _, l := range lines {
		rr, err := dns.NewRR(l)
		if err != nil {
			t.Fatal(err)
		}
		rrs = append(rrs, rr)
	}
	z.mu.Lock()
	defer z.mu.Unlock()
	if z.records[qt] == nil {
		z.records[qt] = map[string][]dns.RR{}
	}
	z.records[qt][dns.Fqdn(name)] = rrs
}

func (z *zone) setFail(v bool) {
	z.mu.Lock()
	z.fail = v
	z.mu.Unlock()
}

func urls(p *upstream.Pool) []string {
	var out []string
	for _, t := range p.Targets() {
		out = append(out, t.String())
	}
	slices.Sort(out)
	return out
}

// waitFor polls until the pool's targets are want.
func waitFor(t *testing.T, p *upstream.Pool, want ...string) {
	t.Helper()
	slices.Sort(want)
	deadline := time.Now().Add(waitLimit)
	for !slices.Equal(urls(p), want) {
		if time.Now().After(deadline) {
			t.Fatalf("targets %v, want %v", urls(p), want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func start(t *testing.T, u config.Upstream) (*upstream.Pool, *discovery.Discoverer) {
	t.Helper()
	p, err := upstream.NewPool(u)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	if !discovery.Needed(u) {
		t.Fatal("discovery.Needed = false")
	}
	d, err := discovery.New(p, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	d.Start()
	t.Cleanup(func() { d.Close() })
	return p, d
}

func TestHostTargetsFollowDNS(t *testing.T) {
	t.Parallel()
	z := startZone(t)
	z.set(t, dns.TypeA, "svc.test", "svc.test. 0 IN A 127.0.0.11", "svc.test. 0 IN A 127.0.0.12")
	z.set(t, dns.TypeAAAA, "svc.test", "svc.test. 0 IN AAAA ::1")
	u := config.Upstream{
		Name:      "svc",
		Targets:   []config.Target{{URL: "http://svc.test:8080/base", Weight: 2}, {URL: "http://127.0.0.99:1"}},
		Discovery: config.Discovery{Resolver: z.addr, MinTTL: config.Duration(20 * time.Millisecond)},
	}
	p, d := start(t, u)
	waitFor(t, p, "http://127.0.0.11:8080/base", "http://127.0.0.12:8080/base", "http://[::1]:8080/base", "http://127.0.0.99:1")
	for _, tg := range p.Targets() {
		if tg.String() != "http://127.0.0.99:1" && tg.Weight != 2 {
			t.Errorf("%s weight %d, want the configured 2", tg, tg.Weight)
		}
	}
	eps, _ := d.Endpoints()
	for _, ep := range eps {
		if ep.URL != "http://127.0.0.99:1" && ep.Host != "svc.test:8080" {
			t.Errorf("endpoint %s carries host %q, want the configured svc.test:8080", ep.URL, ep.Host)
		}
	}
	var stayed *upstream.Target
	for _, tg := range p.Targets() {
		if tg.String() == "http://127.0.0.12:8080/base" {
			stayed = tg
			stayed.Begin() // state to survive: an in-flight request
		}
	}
	defer stayed.End()

	// The fleet changes: .11 and ::1 leave, .13 joins.
	z.set(t, dns.TypeA, "svc.test", "svc.test. 0 IN A 127.0.0.12", "svc.test. 0 IN A 127.0.0.13")
	z.set(t, dns.TypeAAAA, "svc.test")
	waitFor(t, p, "http://127.0.0.12:8080/base", "http://127.0.0.13:8080/base", "http://127.0.0.99:1")
	for _, tg := range p.Targets() {
		if tg.String() == "http://127.0.0.12:8080/base" && tg.InFlight() != 1 {
			t.Errorf("the target that stayed lost its state: in flight %d, want 1", tg.InFlight())
		}
	}

	// The server fails: the last good set stays.
	z.setFail(true)
	deadline := time.Now().Add(waitLimit)
	for {
		if _, err := d.Endpoints(); err != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the failing lookup was never reported")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if got := urls(p); len(got) != 3 {
		t.Fatalf("after a failed lookup the targets are %v, want the last good 3", got)
	}
	// And it recovers.
	z.setFail(false)
	z.set(t, dns.TypeA, "svc.test", "svc.test. 0 IN A 127.0.0.14")
	waitFor(t, p, "http://127.0.0.14:8080/base", "http://127.0.0.99:1")
}

func TestSRVTargets(t *testing.T) {
	t.Parallel()
	z := startZone(t)
	z.set(t, dns.TypeSRV, "_http._tcp.api.test",
		"_http._tcp.api.test. 0 IN SRV 10 5 9001 a.api.test.",
		"_http._tcp.api.test. 0 IN SRV 10 0 9002 b.api.test.",
		"_http._tcp.api.test. 0 IN SRV 20 100 9003 c.api.test.", // backup: not used
	)
	z.set(t, dns.TypeA, "a.api.test", "a.api.test. 0 IN A 127.0.0.21")
	z.set(t, dns.TypeA, "b.api.test", "b.api.test. 0 IN A 127.0.0.22")
	z.set(t, dns.TypeA, "c.api.test", "c.api.test. 0 IN A 127.0.0.23")
	u := config.Upstream{
		Name:      "api",
		Discovery: config.Discovery{DNSSRV: "_http._tcp.api.test", Resolver: z.addr, MinTTL: config.Duration(20 * time.Millisecond)},
	}
	p, _ := start(t, u)
	waitFor(t, p, "http://127.0.0.21:9001", "http://127.0.0.22:9002")
	for _, tg := range p.Targets() {
		want := map[string]int{"http://127.0.0.21:9001": 5, "http://127.0.0.22:9002": 1}[tg.String()]
		if tg.Weight != want {
			t.Errorf("%s weight %d, want %d (SRV weight; 0 counts as 1)", tg, tg.Weight, want)
		}
	}
	// The priority-10 records go away: the backups take over.
	z.set(t, dns.TypeSRV, "_http._tcp.api.test", "_http._tcp.api.test. 0 IN SRV 20 100 9003 c.api.test.")
	waitFor(t, p, "http://127.0.0.23:9003")
}

// TestResolveReturnsRecordTTL: Resolve reports the records' own TTL (one
// hour here), unclamped; the refresh loop bounds it (discovery_ttl_test.go).
func TestResolveReturnsRecordTTL(t *testing.T) {
	t.Parallel()
	z := startZone(t)
	z.set(t, dns.TypeA, "slow.test", "slow.test. 3600 IN A 127.0.0.31")
	u := config.Upstream{Name: "slow", Targets: []config.Target{{URL: "http://slow.test"}}, Discovery: config.Discovery{Resolver: z.addr}}
	d, err := discovery.New(nopSetter{}, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	eps, ttl, err := d.Resolve(context.Background())
	if err != nil || len(eps) != 1 || eps[0].URL != "http://127.0.0.31" || ttl != time.Hour {
		t.Fatalf("%v %v %v", eps, ttl, err)
	}
	d.Close()
}

type nopSetter struct{}

func (nopSetter) SetTargets([]upstream.Endpoint) error { return nil }

func TestNeeded(t *testing.T) {
	t.Parallel()
	for url, want := range map[string]bool{
		"http://127.0.0.1:80": false, "http://[::1]:80": false, "http://localhost:9": false,
		"http://svc.internal:80": true, "https://example.com": true,
	} {
		if got := discovery.Needed(config.Upstream{Targets: []config.Target{{URL: url}}}); got != want {
			t.Errorf("%s: %v, want %v", url, got, want)
		}
	}
}
