package proxy

import (
	"math"
	"testing"
	"time"
)

func TestParseGRPCTimeout(t *testing.T) {
	t.Parallel()
	cases := []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"100m", 100 * time.Millisecond, true},
		{"5S", 5 * time.Second, true},
		{"1H", time.Hour, true},
		{"2M", 2 * time.Minute, true},
		{"7u", 7 * time.Microsecond, true},
		{"9n", 9, true},
		{"0S", 0, true},
		{"99999999S", 99999999 * time.Second, true},
		{"99999999H", math.MaxInt64, true}, // beyond Duration: capped
		{"123456789S", 0, false},           // 9 digits
		{"S", 0, false},
		{"", 0, false},
		{"10", 0, false},
		{"10s", 0, false},
		{"-1S", 0, false},
		{"1 S", 0, false},
		{"+1S", 0, false},
	}
	for _, tc := range cases {
		got, ok := parseGRPCTimeout(tc.in)
		if got != tc.want || ok != tc.ok {
			t.Errorf("parseGRPCTimeout(%q): got %v, %v; want %v, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}

func TestFormatGRPCTimeout(t *testing.T) {
	t.Parallel()
	cases := []struct {
		in   time.Duration
		want string
	}{
		{1, "1n"},
		{99999999, "99999999n"},
		{100 * time.Millisecond, "100000u"},
		{100*time.Millisecond + 1, "100001u"}, // rounded up, never down
		{5 * time.Minute, "300000m"},
		{30 * time.Hour, "108000S"},
		{math.MaxInt64, "2562048H"},
	}
	for _, tc := range cases {
		if got := formatGRPCTimeout(tc.in); got != tc.want {
			t.Errorf("formatGRPCTimeout(%v): got %q; want %q", tc.in, got, tc.want)
		}
	}
}

func FuzzGRPCTimeout(f *testing.F) {
	for _, s := range []string{"100m", "5S", "1H", "99999999H", "0n", "1x", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, ok := parseGRPCTimeout(s)
		if !ok || d <= 0 {
			return
		}
		// What the gateway forwards is valid, and never shorter than
		// what it was given.
		enc := formatGRPCTimeout(d)
		back, ok := parseGRPCTimeout(enc)
		if !ok || back < d {
			t.Fatalf("%q → %v → %q → %v, %v: want a valid value >= %v", s, d, enc, back, ok, d)
		}
	})
}
