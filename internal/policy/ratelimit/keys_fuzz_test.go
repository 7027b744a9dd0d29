package ratelimit

import (
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/portunus-gw/portunus/internal/config"
	"github.com/portunus-gw/portunus/internal/pipeline"
)

// FuzzKey: whatever the client sends (header value, address), a key is
// bounded, starts with its limit's prefix, and two different header
// values never share a key.
func FuzzKey(f *testing.F) {
	f.Add("tenant-1", "tenant-2", "192.0.2.1")
	f.Add("", "x", "2001:db8::1")
	f.Add(strings.Repeat("a", 4096), "a", "::ffff:10.0.0.1")
	f.Add("a\x00b", "a\x00c", "fe80::1%eth0")
	lm, err := compileLimit("route", "", 0, config.RateLimit{Limit: 1, Window: config.Duration(time.Second), By: "header:X-K"})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, v1, v2, ip string) {
		addr, _ := netip.ParseAddr(ip)
		s := &pipeline.State{ClientIP: addr}
		key := func(v string) string {
			r := httptest.NewRequest("GET", "/", nil)
			r.Header["X-K"] = []string{v}
			return string(lm.appendKey(nil, r, s))
		}
		k1, k2 := key(v1), key(v2)
		if !strings.HasPrefix(k1, lm.prefix) || len(k1) != len(lm.prefix)+2+2*headerHashBytes {
			t.Fatalf("key %q: want prefix %q and a fixed-size hash", k1, lm.prefix)
		}
		if (v1 == v2) != (k1 == k2) {
			t.Fatalf("values %q, %q gave keys %q, %q", v1, v2, k1, k2)
		}
		noHeader := string(lm.appendKey(nil, httptest.NewRequest("GET", "/", nil), s))
		if len(noHeader) > len(lm.prefix)+2+len("ffff:ffff:ffff:ffff::/64") {
			t.Fatalf("address key %q too long", noHeader)
		}
	})
}
