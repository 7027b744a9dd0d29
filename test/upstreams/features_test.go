package upstreams

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// TestSplitAndMirrorFromConfig: a route with a weighted, sticky split and
// a mirror, loaded from YAML: each client (by header) stays on one side,
// the weights hold over many clients, and the shadow gets copies of the
// requests without the client waiting for it.
func TestSplitAndMirrorFromConfig(t *testing.T) {
	t.Parallel()
	stable := healthy(t, "stable")
	canary := healthy(t, "canary")
	const shadowDelay = 2 * time.Second
	var mu sync.Mutex
	copies := map[string]int{}
	shadow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		copies[r.Header.Get("X-User")+" "+r.Header.Get("X-Portunus-Mirror")]++
		mu.Unlock()
		select {
		case <-time.After(shadowDelay):
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(shadow.Close)
	base := startGateway(t, fmt.Sprintf(`
listeners: [{ address: "127.0.0.1:0" }]
observability: { access_log: { path: "off" } }
upstreams:
  - { name: stable, targets: [{ url: %q }] }
  - { name: canary, targets: [{ url: %q }] }
  - { name: shadow, targets: [{ url: %q }] }
routes:
  - name: svc
    match: { path_prefix: /svc }
    upstream: [{ name: stable, weight: 80 }, { name: canary, weight: 20 }]
    sticky_by: header:X-User
    mirror: { upstream: shadow, percent: 100 }
`, stable.url, canary.url, shadow.URL))
	client := &http.Client{Timeout: waitLimit}
	defer client.CloseIdleConnections()
	get := func(user string) (string, time.Duration) {
		req, _ := http.NewRequest("GET", base+"/svc/x", nil)
		req.Header.Set("X-User", user)
		start := time.Now()
		res, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != 200 {
			t.Fatalf("status %d %s", res.StatusCode, b)
		}
		return string(b), time.Since(start)
	}
	const users = 400
	canaryUsers := 0
	for i := range users {
		user := fmt.Sprintf("user-%d", i)
		side, took := get(user)
		if took >= shadowDelay {
			t.Fatalf("a request took %v: the client waited for the shadow", took)
		}
		if again, _ := get(user); again != side {
			t.Fatalf("%s went to %s, then %s: not sticky", user, side, again)
		}
		if side == "canary" {
			canaryUsers++
		}
	}
	// 400 users at p = 0.2: sd = 8 users; ±40 is 5 sd.
	if canaryUsers < 40 || canaryUsers > 120 {
		t.Fatalf("%d of %d users on the 20%% canary", canaryUsers, users)
	}
	// Copies are dropped beyond 64 in flight (the shadow holds each for
	// 2 s), so not all 800 arrive; those that do are marked.
	poll(t, "mirrored copies", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return copies["user-0 1"] >= 1
	})
	mu.Lock()
	for k := range copies {
		if !strings.HasSuffix(k, " 1") {
			t.Errorf("a copy without X-Portunus-Mirror: %q", k)
		}
	}
	mu.Unlock()
}

// TestDiscoveryFromConfig: an upstream whose target is a host name,
// resolved by a DNS server the test runs; when the answer changes, the
// traffic follows to the new address.
func TestDiscoveryFromConfig(t *testing.T) {
	t.Parallel()
	// Two backends on different loopback addresses, same port number is
	// not needed: the name resolves to an address, the port is the
	// target's. Listen on 127.0.0.1 and 127.0.0.2 with one port.
	a, b := listenPair(t)
	var mu sync.Mutex
	answer := "127.0.0.1"
	resolver := startDNS(t, "svc.test.", func() string {
		mu.Lock()
		defer mu.Unlock()
		return answer
	})

	base := startGateway(t, fmt.Sprintf(`
listeners: [{ address: "127.0.0.1:0" }]
observability: { access_log: { path: "off" } }
upstreams:
  - name: svc
    targets: [{ url: "http://svc.test:%s" }]
    discovery: { resolver: %q, min_ttl: 50ms }
routes:
  - { name: svc, match: { path_prefix: /svc }, upstream: svc }
`, a.port, resolver))
	client := &http.Client{Timeout: waitLimit}
	defer client.CloseIdleConnections()
	who := func() string {
		res, err := client.Get(base + "/svc/x")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		return fmt.Sprintf("%d %s", res.StatusCode, b)
	}
	poll(t, "traffic to 127.0.0.1", func() bool { return who() == "200 "+a.name })
	mu.Lock()
	answer = "127.0.0.2"
	mu.Unlock()
	poll(t, "traffic to follow DNS to 127.0.0.2", func() bool { return who() == "200 "+b.name })
}

type backend struct{ name, port string }

// listenPair starts two backends on 127.0.0.1 and 127.0.0.2 with the same
// port (skipping the test where 127.0.0.2 is not available).
func listenPair(t *testing.T) (backend, backend) {
	t.Helper()
	for range 20 {
		l1, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		_, port, _ := net.SplitHostPort(l1.Addr().String())
		l2, err := net.Listen("tcp", "127.0.0.2:"+port)
		if err != nil {
			l1.Close()
			if strings.Contains(err.Error(), "assign requested address") {
				t.Skip("127.0.0.2 is not usable here")
			}
			continue
		}
		for _, x := range []struct {
			ln   net.Listener
			name string
		}{{l1, "one"}, {l2, "two"}} {
			s := &httptest.Server{Listener: x.ln, Config: &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				io.WriteString(w, x.name)
			})}}
			s.Start()
			t.Cleanup(s.Close)
		}
		return backend{"one", port}, backend{"two", port}
	}
	t.Fatal("no common free port on 127.0.0.1 and 127.0.0.2")
	return backend{}, backend{}
}

// startDNS serves A records for name (fully qualified) on a UDP port of
// 127.0.0.1, the address answer gives at each query, with TTL 0; it
// returns the server's address.
func startDNS(t *testing.T, name string, answer func() string) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	started := make(chan struct{})
	srv := &dns.Server{PacketConn: pc, NotifyStartedFunc: func() { close(started) }, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, req *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(req)
		if q := req.Question[0]; q.Qtype == dns.TypeA && q.Name == name {
			rr, _ := dns.NewRR(name + " 0 IN A " + answer())
			m.Answer = []dns.RR{rr}
		}
		w.WriteMsg(m)
	})}
	go srv.ActivateAndServe()
	<-started
	t.Cleanup(func() { srv.Shutdown() })
	return pc.LocalAddr().String()
}
