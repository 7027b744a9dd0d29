package cache

import "testing"

func TestParseCacheControl(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		desc string
		in   []string
		want directives
	}{
		{"empty", nil, directives{maxAge: -1, sMaxAge: -1, swr: -1, sie: -1}},
		{"case and spaces", []string{" Max-Age=60 , PUBLIC"}, directives{public: true, maxAge: 60, sMaxAge: -1, swr: -1, sie: -1}},
		{"quoted value", []string{`max-age="30"`}, directives{maxAge: 30, sMaxAge: -1, swr: -1, sie: -1}},
		{"qualified no-cache with a comma inside quotes", []string{`no-cache="Set-Cookie, X-A", max-age=5`}, directives{noCache: true, maxAge: 5, sMaxAge: -1, swr: -1, sie: -1}},
		{"duplicate keeps the smaller", []string{"max-age=60", "max-age=10"}, directives{maxAge: 10, sMaxAge: -1, swr: -1, sie: -1}},
		{"invalid max-age is stale", []string{"max-age=abc"}, directives{maxAge: 0, invalidMaxAge: true, sMaxAge: -1, swr: -1, sie: -1}},
		{"negative max-age is stale", []string{"max-age=-5"}, directives{maxAge: 0, invalidMaxAge: true, sMaxAge: -1, swr: -1, sie: -1}},
		{"huge max-age is capped", []string{"max-age=99999999999999999999"}, directives{maxAge: maxDeltaSeconds, sMaxAge: -1, swr: -1, sie: -1}},
		{"every flag", []string{"no-store, private, must-revalidate, proxy-revalidate, s-maxage=7, stale-while-revalidate=8, stale-if-error=9"},
			directives{noStore: true, private: true, mustRevalidate: true, proxyRevalidate: true, maxAge: -1, sMaxAge: 7, swr: 8, sie: 9}},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			if got := parseCacheControl(tc.in); got != tc.want {
				t.Fatalf("parseCacheControl(%q) = %+v; want %+v", tc.in, got, tc.want)
			}
		})
	}
}

func FuzzParseCacheControl(f *testing.F) {
	f.Add(`max-age=60, no-cache="a,b", s-maxage="x`)
	f.Fuzz(func(t *testing.T, s string) {
		d := parseCacheControl([]string{s})
		if d.maxAge < -1 || d.maxAge > maxDeltaSeconds || d.sMaxAge < -1 || d.swr < -1 || d.sie < -1 {
			t.Fatalf("out of range: %+v", d)
		}
	})
}
