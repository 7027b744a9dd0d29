package ipfilter

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"

	"github.com/portunus-gw/portunus/internal/config"
	"github.com/portunus-gw/portunus/internal/pipeline"
)

func TestFilter(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		f    config.IPFilter
		ip   string // "" means unknown
		want bool
	}{
		{"allow v4 inside", config.IPFilter{Allow: []string{"10.0.0.0/8"}}, "10.1.2.3", true},
		{"allow v4 outside", config.IPFilter{Allow: []string{"10.0.0.0/8"}}, "11.0.0.1", false},
		{"allow v4 edges low", config.IPFilter{Allow: []string{"192.0.2.0/24"}}, "192.0.2.0", true},
		{"allow v4 edges high", config.IPFilter{Allow: []string{"192.0.2.0/24"}}, "192.0.2.255", true},
		{"allow v4 just past", config.IPFilter{Allow: []string{"192.0.2.0/24"}}, "192.0.3.0", false},
		{"bare address", config.IPFilter{Allow: []string{"192.0.2.7"}}, "192.0.2.7", true},
		{"bare address neighbour", config.IPFilter{Allow: []string{"192.0.2.7"}}, "192.0.2.8", false},
		{"mapped client matches v4 CIDR", config.IPFilter{Allow: []string{"10.0.0.0/8"}}, "::ffff:10.9.9.9", true},
		{"mapped CIDR is v4", config.IPFilter{Allow: []string{"::ffff:10.0.0.0/104"}}, "10.200.0.1", true},
		{"v6 CIDR never matches v4", config.IPFilter{Allow: []string{"::/0"}}, "10.0.0.1", false},
		{"v4 CIDR never matches v6", config.IPFilter{Allow: []string{"0.0.0.0/0"}}, "2001:db8::1", false},
		{"allow v6 inside", config.IPFilter{Allow: []string{"2001:db8::/32"}}, "2001:db8:ffff::1", true},
		{"allow v6 outside", config.IPFilter{Allow: []string{"2001:db8::/32"}}, "2001:db9::1", false},
		{"allow v6 /128", config.IPFilter{Allow: []string{"2001:db8::7/128"}}, "2001:db8::7", true},
		{"allow v6 /65", config.IPFilter{Allow: []string{"2001:db8:0:0:8000::/65"}}, "2001:db8::8000:0:0:1", true},
		{"allow v6 /65 other half", config.IPFilter{Allow: []string{"2001:db8:0:0:8000::/65"}}, "2001:db8::7fff:0:0:1", false},
		{"zoned client", config.IPFilter{Allow: []string{"fe80::/10"}}, "fe80::1%eth0", true},
		{"deny only, inside", config.IPFilter{Deny: []string{"203.0.113.0/24"}}, "203.0.113.9", false},
		{"deny only, outside", config.IPFilter{Deny: []string{"203.0.113.0/24"}}, "198.51.100.1", true},
		{"deny only, v6 client", config.IPFilter{Deny: []string{"203.0.113.0/24"}}, "2001:db8::1", true},
		{"deny wins over allow", config.IPFilter{Allow: []string{"10.0.0.0/8"}, Deny: []string{"10.9.0.0/16"}}, "10.9.1.1", false},
		{"allow beside deny", config.IPFilter{Allow: []string{"10.0.0.0/8"}, Deny: []string{"10.9.0.0/16"}}, "10.8.1.1", true},
		{"overlapping allows merged", config.IPFilter{Allow: []string{"10.0.0.0/9", "10.0.0.0/8", "10.128.0.0/9", "11.0.0.0/8"}}, "11.255.255.255", true},
		{"everything v4", config.IPFilter{Allow: []string{"0.0.0.0/0"}}, "255.255.255.255", true},
		{"everything v6", config.IPFilter{Allow: []string{"::/0"}}, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", true},
		{"unknown client with allow", config.IPFilter{Allow: []string{"0.0.0.0/0"}}, "", false},
		{"unknown client with deny only", config.IPFilter{Deny: []string{"10.0.0.0/8"}}, "", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			f, err := compile(c.f)
			if err != nil {
				t.Fatalf("compile: %v", err)
			}
			var a netip.Addr
			if c.ip != "" {
				a = netip.MustParseAddr(c.ip)
			}
			if got := f.allowed(a); got != c.want {
				t.Errorf("allowed(%s) with %+v = %v; want %v", c.ip, c.f, got, c.want)
			}
		})
	}
}

func TestMiddleware(t *testing.T) {
	t.Parallel()
	mw, err := New(config.IPFilter{Allow: []string{"10.0.0.0/8"}})
	if err != nil {
		t.Fatal(err)
	}
	calls := 0
	h := mw(func(w http.ResponseWriter, r *http.Request, s *pipeline.State) { calls++ })
	for _, c := range []struct {
		ip     string
		status int
		calls  int
	}{{"10.0.0.1", 200, 1}, {"192.0.2.1", 403, 1}} {
		rec := httptest.NewRecorder()
		s := &pipeline.State{ClientIP: netip.MustParseAddr(c.ip), RequestID: "req-1"}
		h(rec, httptest.NewRequest("GET", "/", nil), s)
		if rec.Code != c.status || calls != c.calls {
			t.Errorf("%s: status %d, next called %d times; want %d, %d", c.ip, rec.Code, calls, c.status, c.calls)
		}
		if c.status == 403 {
			if ct := rec.Header().Get("Content-Type"); ct != "application/problem+json" || !strings.Contains(rec.Body.String(), "urn:portunus:problem:forbidden") {
				t.Errorf("denied answer: Content-Type %q, body %q; want problem+json forbidden", ct, rec.Body.String())
			}
			if s.ErrorCode != "forbidden" {
				t.Errorf("State.ErrorCode = %q; want forbidden", s.ErrorCode)
			}
		}
	}
}

func TestNewInvalid(t *testing.T) {
	t.Parallel()
	for _, f := range []config.IPFilter{{Allow: []string{"10.0.0.0/33"}}, {Deny: []string{"nope"}}} {
		if _, err := New(f); err == nil {
			t.Errorf("New(%+v): got no error; want one", f)
		}
	}
}

// FuzzFilter checks the compiled ranges against netip.Prefix.Contains on
// two CIDRs and an address built from the fuzzer's bytes.
func FuzzFilter(f *testing.F) {
	f.Add([]byte{10, 0, 0, 0}, uint8(8), []byte{10, 9, 0, 0}, uint8(16), []byte{10, 9, 1, 1})
	f.Add(make([]byte, 16), uint8(0), []byte{0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, uint8(32), make([]byte, 16))
	f.Add([]byte{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 10, 0, 0, 0}, uint8(104), []byte{1, 2, 3, 4}, uint8(32), []byte{10, 1, 1, 1})
	f.Fuzz(func(t *testing.T, a []byte, abits uint8, d []byte, dbits uint8, ip []byte) {
		pa, ok1 := prefixOf(a, abits)
		pd, ok2 := prefixOf(d, dbits)
		addr, ok3 := netip.AddrFromSlice(ip)
		if !ok1 || !ok2 || !ok3 {
			return
		}
		flt, err := compile(config.IPFilter{Allow: []string{pa.String()}, Deny: []string{pd.String()}})
		if err != nil {
			t.Fatalf("compile(%s, %s): %v", pa, pd, err)
		}
		want := reference(pa, addr) && !reference(pd, addr)
		if got := flt.allowed(addr); got != want {
			t.Fatalf("allow %s deny %s: allowed(%s) = %v; want %v", pa, pd, addr, got, want)
		}
	})
}

func prefixOf(b []byte, bits uint8) (netip.Prefix, bool) {
	a, ok := netip.AddrFromSlice(b)
	if !ok || int(bits) > a.BitLen() {
		return netip.Prefix{}, false
	}
	return netip.PrefixFrom(a, int(bits)).Masked(), true
}

// reference is the rule written the slow, obvious way.
func reference(p netip.Prefix, a netip.Addr) bool {
	a = a.Unmap()
	if p.Addr().Is4In6() && p.Bits() >= 96 {
		p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
	}
	return p.Contains(a)
}

func BenchmarkAllowed(b *testing.B) {
	var allow []string
	for i := range 200 {
		allow = append(allow, netip.AddrFrom4([4]byte{10, byte(i), 0, 0}).String()+"/16")
		allow = append(allow, netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, byte(i)}).String()+"/40")
	}
	mw, err := New(config.IPFilter{Allow: allow, Deny: []string{"10.9.0.0/16"}})
	if err != nil {
		b.Fatal(err)
	}
	h := mw(func(w http.ResponseWriter, r *http.Request, s *pipeline.State) {})
	r := httptest.NewRequest("GET", "/", nil)
	for _, ip := range []string{"10.150.3.4", "2001:db8:77::1"} {
		b.Run(ip, func(b *testing.B) {
			s := &pipeline.State{ClientIP: netip.MustParseAddr(ip)}
			b.ReportAllocs()
			for b.Loop() {
				h(nil, r, s)
			}
		})
	}
}
