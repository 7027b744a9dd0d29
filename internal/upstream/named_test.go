package upstream

import (
	"testing"

	"github.com/portunus-gw/portunus/internal/config"
)

// https targets found under a host name get a transport naming it; one
// whose target left stays for one more change, then goes.
func TestNamedTransports(t *testing.T) {
	t.Parallel()
	p, err := NewPool(config.Upstream{Name: "svc", Targets: []config.Target{{URL: "https://a.test:8443"}}})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	names := func() map[string]string {
		got := map[string]string{}
		if m := p.named.Load(); m != nil {
			for host, tr := range *m {
				got[host] = tr.TLSClientConfig.ServerName
			}
		}
		return got
	}
	one := Endpoint{URL: "https://127.0.0.1:8443", Host: "a.test:8443"}
	two := Endpoint{URL: "https://127.0.0.2:8443", Host: "a.test:8443"}
	plain := Endpoint{URL: "http://127.0.0.3:8080", Host: "a.test:8080"}
	set := func(eps ...Endpoint) {
		t.Helper()
		if err := p.SetTargets(eps); err != nil {
			t.Fatal(err)
		}
	}
	set(one, two, plain)
	if got := names(); len(got) != 2 || got["127.0.0.1:8443"] != "a.test" || got["127.0.0.2:8443"] != "a.test" {
		t.Fatalf("named transports %v; want both https addresses naming a.test (none for http)", got)
	}
	for _, tg := range p.Targets() {
		if tg.Authority != "a.test:8443" && tg.Authority != "a.test:8080" {
			t.Errorf("target %s: authority %q", tg, tg.Authority)
		}
	}
	first := (*p.named.Load())["127.0.0.1:8443"]
	set(one)
	if got := names(); len(got) != 2 {
		t.Fatalf("after 127.0.0.2 left: %v; want its transport kept one more change", got)
	}
	if (*p.named.Load())["127.0.0.1:8443"] != first {
		t.Error("the transport of a target that stayed was replaced")
	}
	set(one)
	if got := names(); len(got) != 1 || got["127.0.0.1:8443"] != "a.test" {
		t.Fatalf("a change later: %v; want only 127.0.0.1", got)
	}

	// tls.server_name names the server for every target: no transports
	// of their own.
	q, err := NewPool(config.Upstream{Name: "fixed", Targets: []config.Target{{URL: "https://a.test:8443"}}, TLS: config.UpstreamTLS{ServerName: "b.test"}})
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	if err := q.SetTargets([]Endpoint{one}); err != nil {
		t.Fatal(err)
	}
	if q.named.Load() != nil {
		t.Error("named transports despite tls.server_name")
	}
}
