package upstream

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/portunus-gw/portunus/internal/config"
	"github.com/portunus-gw/portunus/internal/pipeline"
)

func TestNewPoolErrors(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		cfg     config.Upstream
		wantErr string
	}{
		{"no name", config.Upstream{}, "name"},
		{"bad scheme", config.Upstream{Name: "u", Targets: []config.Target{{URL: "ftp://h"}}}, "scheme"},
		{"no host", config.Upstream{Name: "u", Targets: []config.Target{{URL: "http://"}}}, "no host"},
		{"query", config.Upstream{Name: "u", Targets: []config.Target{{URL: "http://h/x?a=1"}}}, "only scheme"},
		{"user info", config.Upstream{Name: "u", Targets: []config.Target{{URL: "http://u:p@h"}}}, "only scheme"},
		{"negative weight", config.Upstream{Name: "u", Targets: []config.Target{{URL: "http://h", Weight: -1}}}, "negative"},
		{"missing ca", config.Upstream{Name: "u", TLS: config.UpstreamTLS{CAFile: "/nonexistent/ca.pem"}}, "ca_file"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			_, err := NewPool(c.cfg)
			if err == nil || !strings.Contains(err.Error(), c.wantErr) {
				t.Errorf("NewPool: got error %v; want one mentioning %q", err, c.wantErr)
			}
		})
	}
}

func TestTargets(t *testing.T) {
	t.Parallel()
	p, err := NewPool(config.Upstream{Name: "u", PreserveHost: true, Targets: []config.Target{
		{URL: "http://a:8080"},
		{URL: "https://b/api/", Weight: 3},
		{URL: "http://c/a%2Fb/x"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	want := []struct {
		host, prefix, str string
		weight            int
	}{
		{"a:8080", "", "http://a:8080", 1},
		{"b", "/api", "https://b/api", 3},
		{"c", "/a%2Fb/x", "http://c/a%2Fb/x", 1},
	}
	for i, w := range want {
		tg := p.Targets()[i]
		if tg.Host != w.host || tg.PathPrefix != w.prefix || tg.String() != w.str || tg.Weight != w.weight {
			t.Errorf("target %d: got host %q prefix %q str %q weight %d; want %q %q %q %d",
				i, tg.Host, tg.PathPrefix, tg.String(), tg.Weight, w.host, w.prefix, w.str, w.weight)
		}
	}
	if p.Name() != "u" || !p.PreserveHost() {
		t.Errorf("Name, PreserveHost: got %q, %v; want u, true", p.Name(), p.PreserveHost())
	}
}

func TestSmoothSequence(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		weights []int
		want    string
	}{
		{"3:1 interleaves", []int{3, 1}, "AABA"},
		{"gcd reduced", []int{6, 2}, "AABA"},
		{"5:1:1", []int{5, 1, 1}, "AABACAA"},
		{"1:2", []int{1, 2}, "BAB"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			var b strings.Builder
			for _, i := range smoothSequence(append([]int(nil), c.weights...)) {
				b.WriteByte(byte('A' + i))
			}
			if got := b.String(); got != c.want {
				t.Errorf("smoothSequence(%v): got %s; want %s", c.weights, got, c.want)
			}
		})
	}
	// Huge weights are scaled, never a huge table.
	if n := len(smoothSequence([]int{1 << 20, 3})); n > maxSequence+2 {
		t.Errorf("sequence length for huge weights: got %d; want at most %d", n, maxSequence+2)
	}
}

func TestPickEmptyAndSingle(t *testing.T) {
	t.Parallel()
	empty, err := NewPool(config.Upstream{Name: "e"})
	if err != nil {
		t.Fatal(err)
	}
	if got := empty.Pick(&pipeline.State{}); got != nil {
		t.Errorf("Pick on empty pool: got %v; want nil", got)
	}
	one, err := NewPool(config.Upstream{Name: "o", Targets: []config.Target{{URL: "http://x"}}})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		if got := one.Pick(&pipeline.State{}); got != one.Targets()[0] {
			t.Errorf("Pick on single pool: got %v; want the target", got)
		}
	}
}

// TestPickConcurrentShares checks that concurrent picks keep exact shares:
// whole periods of the sequence, however interleaved, give exact counts.
func TestPickConcurrentShares(t *testing.T) {
	t.Parallel()
	p, err := NewPool(config.Upstream{Name: "w", Targets: []config.Target{
		{URL: "http://a", Weight: 3}, {URL: "http://b", Weight: 1}, {URL: "http://c", Weight: 2},
	}})
	if err != nil {
		t.Fatal(err)
	}
	const workers, each = 8, 600 // 4800 picks = 800 periods of 6
	var mu sync.Mutex
	counts := map[string]int{}
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			local := map[string]int{}
			s := &pipeline.State{}
			for i := 0; i < each; i++ {
				local[p.Pick(s).Host]++
			}
			mu.Lock()
			for k, v := range local {
				counts[k] += v
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	want := map[string]int{"a": 2400, "b": 800, "c": 1600}
	for k, v := range want {
		if counts[k] != v {
			t.Errorf("picks of %s: got %d; want %d", k, counts[k], v)
		}
	}
}

// TestDistributionOverRealTargets sends requests through the pool's own
// transport to real servers and counts what each received.
func TestDistributionOverRealTargets(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		weights []int
		want    []int
	}{
		{"round robin", []int{1, 1, 1}, []int{10, 10, 10}},
		{"weighted 3:1", []int{3, 1}, []int{30, 10}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			var mu sync.Mutex
			got := make([]int, len(c.weights))
			var targets []config.Target
			for i, w := range c.weights {
				srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					mu.Lock()
					got[i]++
					mu.Unlock()
					fmt.Fprint(w, i)
				}))
				t.Cleanup(srv.Close)
				targets = append(targets, config.Target{URL: srv.URL, Weight: w})
			}
			p, err := NewPool(config.Upstream{Name: "d", Targets: targets})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { p.Close() })
			total := 0
			for _, n := range c.want {
				total += n
			}
			for i := 0; i < total; i++ {
				tg := p.Pick(&pipeline.State{})
				req, _ := http.NewRequest(http.MethodGet, tg.String()+"/", nil)
				res, err := p.RoundTripper().RoundTrip(req)
				if err != nil {
					t.Fatalf("round trip %d: %v", i, err)
				}
				io.Copy(io.Discard, res.Body)
				res.Body.Close()
			}
			mu.Lock()
			defer mu.Unlock()
			for i := range c.want {
				if got[i] != c.want[i] {
					t.Errorf("target %d received %d requests; want %d", i, got[i], c.want[i])
				}
			}
		})
	}
}

func TestTransportTuning(t *testing.T) {
	t.Parallel()
	p, err := NewPool(config.Upstream{Name: "t", Timeouts: config.UpstreamTimeouts{
		ResponseHeader: config.Duration(5e9),
	}})
	if err != nil {
		t.Fatal(err)
	}
	tr := p.Transport()
	if tr.Proxy != nil || !tr.DisableCompression || tr.MaxIdleConnsPerHost < 100 {
		t.Errorf("transport: got Proxy set %v, DisableCompression %v, MaxIdleConnsPerHost %d; want nil proxy, true, >= 100",
			tr.Proxy != nil, tr.DisableCompression, tr.MaxIdleConnsPerHost)
	}
	if tr.ResponseHeaderTimeout != 5e9 || tr.IdleConnTimeout != DefaultIdleConnTimeout {
		t.Errorf("timeouts: got response header %v idle %v; want 5s, %v", tr.ResponseHeaderTimeout, tr.IdleConnTimeout, DefaultIdleConnTimeout)
	}
	if tr.Protocols == nil || !tr.Protocols.HTTP2() || !tr.Protocols.HTTP1() || tr.Protocols.UnencryptedHTTP2() {
		t.Errorf("protocols: got %v; want HTTP/1 and HTTP/2 over TLS (auto)", tr.Protocols)
	}
}

func BenchmarkPick(b *testing.B) {
	for _, bc := range []struct {
		name    string
		weights []int
	}{{"single", []int{1}}, {"equal", []int{1, 1, 1}}, {"weighted", []int{5, 3, 1}}} {
		b.Run(bc.name, func(b *testing.B) {
			var targets []config.Target
			for i, w := range bc.weights {
				targets = append(targets, config.Target{URL: fmt.Sprintf("http://t%d", i), Weight: w})
			}
			p, err := NewPool(config.Upstream{Name: "b", Targets: targets})
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				s := &pipeline.State{}
				for pb.Next() {
					if p.Pick(s) == nil {
						b.Fatal("nil target")
					}
				}
			})
		})
	}
}
