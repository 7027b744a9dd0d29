package compress

import (
	"strings"
	"testing"
)

var allOrder = []algo{zstdAlgo, brAlgo, gzipAlgo}

func TestNegotiate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		values []string
		order  []algo
		want   algo
	}{
		{"no header", nil, allOrder, none},
		{"empty value", []string{""}, allOrder, none},
		{"gzip only", []string{"gzip"}, allOrder, gzipAlgo},
		{"x-gzip alias", []string{"x-gzip"}, allOrder, gzipAlgo},
		{"browser list ties go to server order", []string{"gzip, deflate, br, zstd"}, allOrder, zstdAlgo},
		{"server order br first", []string{"gzip, br, zstd"}, []algo{brAlgo, gzipAlgo, zstdAlgo}, brAlgo},
		{"highest q wins", []string{"zstd;q=0.5, br;q=0.8, gzip;q=0.9"}, allOrder, gzipAlgo},
		{"q=0 excludes", []string{"zstd;q=0, br;q=0, gzip"}, allOrder, gzipAlgo},
		{"all excluded", []string{"zstd;q=0, br;q=0, gzip;q=0"}, allOrder, none},
		{"identity only", []string{"identity"}, allOrder, none},
		{"star", []string{"*"}, allOrder, zstdAlgo},
		{"star with exclusion", []string{"*;q=0.5, zstd;q=0"}, allOrder, brAlgo},
		{"star zero excludes unnamed", []string{"gzip;q=0.2, *;q=0"}, allOrder, gzipAlgo},
		{"named beats star", []string{"*;q=0.1, gzip;q=0.3"}, allOrder, gzipAlgo},
		{"identity preferred", []string{"gzip;q=0.5, identity;q=1"}, allOrder, none},
		{"identity equal keeps coding", []string{"gzip, identity"}, allOrder, gzipAlgo},
		{"unconfigured coding ignored", []string{"br"}, []algo{gzipAlgo}, none},
		{"case and spaces", []string{" GZip ; Q=0.7 ,\tBR ;q=0.6"}, allOrder, gzipAlgo},
		{"several field lines", []string{"br;q=0.4", "gzip;q=0.6"}, allOrder, gzipAlgo},
		{"invalid q ignored", []string{"zstd;q=2, gzip;q=0.3"}, allOrder, gzipAlgo},
		{"invalid q text", []string{"zstd;q=abc, br;q=0.001"}, allOrder, brAlgo},
		{"q with 4 decimals invalid", []string{"zstd;q=0.1234, gzip"}, allOrder, gzipAlgo},
		{"q 1.000", []string{"br;q=1.000"}, allOrder, brAlgo},
		{"q 1.001 invalid", []string{"br;q=1.001"}, allOrder, none},
		{"other params", []string{"gzip;level=9;q=0.5"}, allOrder, gzipAlgo},
		{"duplicate keeps highest", []string{"gzip;q=0, gzip;q=0.5"}, allOrder, gzipAlgo},
		{"deflate only", []string{"deflate"}, allOrder, none},
		{"commas only", []string{",,, ,"}, allOrder, none},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := negotiate(tc.values, tc.order); got != tc.want {
				t.Errorf("negotiate(%q) = %q; want %q", tc.values, tokens[got], tokens[tc.want])
			}
		})
	}
}

func TestNegotiateNoAlloc(t *testing.T) {
	v := []string{"gzip, deflate, br;q=0.9, zstd;q=0.8, *;q=0.1"}
	if n := testing.AllocsPerRun(100, func() { negotiate(v, allOrder) }); n != 0 {
		t.Errorf("negotiate allocates %v times per call; want 0", n)
	}
}

func TestCompressible(t *testing.T) {
	t.Parallel()
	var rules []typeRule
	for _, s := range []string{"text/*", "application/json", "application/*+json", "image/svg+xml"} {
		r, err := parseTypeRule(s)
		if err != nil {
			t.Fatal(err)
		}
		rules = append(rules, r)
	}
	tests := []struct {
		ct   string
		want bool
	}{
		{"text/html", true},
		{"text/html; charset=utf-8", true},
		{"TEXT/Plain;charset=utf-8", true},
		{"application/json", true},
		{"Application/JSON ; charset=utf-8", true},
		{"application/problem+json", true},
		{"application/+json", false},
		{"application/jsonx", false},
		{"image/svg+xml", true},
		{"image/png", false},
		{"application/octet-stream", false},
		{"application/grpc", false},
		{"text", false},
		{"text/", false},
		{"", false},
		{"/json", false},
	}
	for _, tc := range tests {
		if got := compressible(rules, tc.ct); got != tc.want {
			t.Errorf("compressible(%q) = %v; want %v", tc.ct, got, tc.want)
		}
	}
	for _, bad := range []string{"json", "text/", "a/b*", "a/b c"} {
		if _, err := parseTypeRule(bad); err == nil {
			t.Errorf("parseTypeRule(%q): got no error; want one", bad)
		}
	}
}

func FuzzNegotiate(f *testing.F) {
	for _, s := range []string{"gzip", "br;q=0.5, zstd;q=0.6", "*;q=0", "identity;q=1, gzip;q=1", "x-gzip;Q=0.001", ";;,,q=", "gzip;q=1.", "zstd;q=0.9999"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		a := negotiate([]string{v}, allOrder)
		if a == none {
			return
		}
		// Whatever was chosen must be acceptable: named with q > 0, or
		// covered by a positive "*".
		var acc acceptance
		for i := range acc.q {
			acc.q[i] = qNone
		}
		acc.identity, acc.star = qNone, qNone
		parseAcceptEncoding(v, &acc)
		q := acc.q[a]
		if q == qNone {
			q = acc.star
		}
		if q <= 0 {
			t.Fatalf("negotiate(%q) = %s with q %d; want an acceptable coding", v, tokens[a], q)
		}
		if !strings.Contains(strings.ToLower(v), tokens[a]) && !strings.Contains(v, "*") && !(a == gzipAlgo) {
			t.Fatalf("negotiate(%q) = %s; the client never named it", v, tokens[a])
		}
	})
}
