package router

import (
	"errors"
	"strings"
	"testing"
	"unsafe"
)

func TestNormalize(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, in, want string
		sep            bool
		err            error
	}{
		{name: "root", in: "/", want: "/"},
		{name: "plain", in: "/v1/users/7", want: "/v1/users/7"},
		{name: "dot segments", in: "/a/./b/../c", want: "/a/c"},
		{name: "dotdot above root", in: "/..", want: "/"},
		{name: "many dotdots above root", in: "/../../a/../../b", want: "/b"},
		{name: "encoded dotdot lower", in: "/a/%2e%2e/b", want: "/b"},
		{name: "encoded dotdot mixed", in: "/a/%2E./b", want: "/b"},
		{name: "encoded single dot", in: "/a/%2e/b", want: "/a/b"},
		{name: "trailing dot", in: "/a/b/.", want: "/a/b/"},
		{name: "trailing dotdot", in: "/a/b/..", want: "/a/"},
		{name: "dotdot to root", in: "/a/..", want: "/"},
		{name: "dots inside a segment stay", in: "/a/..b/c.", want: "/a/..b/c."},
		{name: "three dots stay", in: "/a/.../b", want: "/a/.../b"},
		{name: "duplicate slashes", in: "/a//b///c", want: "/a/b/c"},
		{name: "leading double slash", in: "//admin", want: "/admin"},
		{name: "slashes merged before dots", in: "/a//../b", want: "/b"},
		{name: "only slashes", in: "///", want: "/"},
		{name: "trailing slash kept", in: "/a/", want: "/a/"},
		{name: "trailing slashes merged", in: "/a//", want: "/a/"},
		{name: "traversal", in: "/public/../admin", want: "/admin"},
		{name: "unreserved decoded", in: "/%41", want: "/A"},
		{name: "tilde decoded", in: "/%7e", want: "/~"},
		{name: "all unreserved kinds", in: "/%61%5A%30%2D%5F", want: "/aZ0-_"},
		{name: "reserved kept upper-cased", in: "/a%3fb%3A", want: "/a%3Fb%3A"},
		{name: "percent kept", in: "/100%25", want: "/100%25"},
		{name: "no double decoding", in: "/%252F", want: "/%252F"},
		{name: "encoded slash lower", in: "/a%2fb", want: "/a%2Fb", sep: true},
		{name: "encoded slash upper", in: "/a%2Fb", want: "/a%2Fb", sep: true},
		{name: "encoded backslash", in: "/a%5cb", want: "/a%5Cb", sep: true},
		{name: "encoded NUL", in: "/a%00", want: "/a%00", sep: true},
		{name: "raw backslash", in: `/a\b`, want: "/a%5Cb", sep: true},
		{name: "encoded slash removed by dotdot", in: "/a%2Fb/../c", want: "/c"},
		{name: "encoded slash is not a separator", in: "/a/..%2F..", want: "/a/..%2F..", sep: true},
		{name: "sub-delims raw", in: "/a!$&'()*+,;=:@b", want: "/a!$&'()*+,;=:@b"},
		{name: "quote encoded", in: `/a"b`, want: "/a%22b"},
		{name: "space encoded", in: "/a b", want: "/a%20b"},
		{name: "angle and braces encoded", in: "/<{|}>^`", want: "/%3C%7B%7C%7D%3E%5E%60"},
		{name: "brackets and hash encoded", in: "/[a]#", want: "/%5Ba%5D%23"},
		{name: "non-ASCII encoded", in: "/café", want: "/caf%C3%A9"},
		{name: "non-ASCII already encoded", in: "/caf%c3%a9", want: "/caf%C3%A9"},
		{name: "invalid escape letters", in: "/%zz", err: ErrPathEscape},
		{name: "truncated escape", in: "/%4", err: ErrPathEscape},
		{name: "bare percent", in: "/a%", err: ErrPathEscape},
		{name: "half-hex escape", in: "/%4g", err: ErrPathEscape},
		{name: "control byte", in: "/a\x01b", err: ErrPathControl},
		{name: "newline", in: "/a\nb", err: ErrPathControl},
		{name: "DEL", in: "/a\x7f", err: ErrPathControl},
		{name: "empty", in: "", err: ErrPathNotAbsolute},
		{name: "relative", in: "a/b", err: ErrPathNotAbsolute},
		{name: "asterisk", in: "*", err: ErrPathNotAbsolute},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, sep, err := Normalize(tt.in)
			if !errors.Is(err, tt.err) {
				t.Fatalf("Normalize(%q) error = %v; want %v", tt.in, err, tt.err)
			}
			if got != tt.want || sep != tt.sep {
				t.Errorf("Normalize(%q) = %q, %v; want %q, %v", tt.in, got, sep, tt.want, tt.sep)
			}
		})
	}
}

// Alloc tests are not parallel: testing.AllocsPerRun refuses to run in a
// parallel test.
func TestNormalizeReturnsInputWhenNormal(t *testing.T) {
	for _, in := range []string{"/", "/v1/users/7", "/a/", "/a%2Fb", "/caf%C3%A9", "/a..b/..."} {
		got, _, err := Normalize(in)
		if err != nil {
			t.Fatalf("Normalize(%q) error = %v", in, err)
		}
		if unsafe.StringData(got) != unsafe.StringData(in) {
			t.Errorf("Normalize(%q) returned a copy; want the input itself", in)
		}
		if n := testing.AllocsPerRun(100, func() { _, _, _ = Normalize(in) }); n != 0 {
			t.Errorf("Normalize(%q) allocs = %v; want 0", in, n)
		}
	}
}

func TestNormalizeHost(t *testing.T) {
	t.Parallel()
	tests := []struct{ name, in, want string }{
		{"plain", "api.example.com", "api.example.com"},
		{"upper case", "API.Example.COM", "api.example.com"},
		{"port", "api.example.com:8080", "api.example.com"},
		{"trailing dot", "api.example.com.", "api.example.com"},
		{"trailing dot and port", "API.example.com.:443", "api.example.com"},
		{"only one trailing dot", "a.com..", "a.com."},
		{"ipv4 with port", "127.0.0.1:80", "127.0.0.1"},
		{"ipv6 with port", "[::1]:80", "::1"},
		{"ipv6 no port", "[FE80::1]", "fe80::1"},
		{"bare ipv6 kept", "fe80::1", "fe80::1"},
		{"empty", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := NormalizeHost(tt.in); got != tt.want {
				t.Errorf("NormalizeHost(%q) = %q; want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestNormalizeHostAllocs(t *testing.T) {
	if n := testing.AllocsPerRun(100, func() { _ = NormalizeHost("api.example.com:8080") }); n != 0 {
		t.Errorf("NormalizeHost of a lower-case host allocs = %v; want 0", n)
	}
}

func FuzzNormalize(f *testing.F) {
	for _, s := range []string{
		"/", "/a/./b/../c", "/..", "/a/%2e%2e/b", "/a/%2E./b", "//admin", "/a%2fb", `/a\b`,
		"/%00", "/café", "/%zz", "/a/b/.", "/a//../b", "/%2e%2E/%2e", "/a%2F..%2F", "/.%2e/",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		out, sep, err := Normalize(in)
		if err != nil {
			return
		}
		if out == "" || out[0] != '/' {
			t.Fatalf("Normalize(%q) = %q; want a leading '/'", in, out)
		}
		if strings.Contains(out, "//") {
			t.Fatalf("Normalize(%q) = %q; contains //", in, out)
		}
		for _, seg := range strings.Split(out[1:], "/") {
			if seg == "." || seg == ".." {
				t.Fatalf("Normalize(%q) = %q; contains a dot segment", in, out)
			}
		}
		for i := 0; i < len(out); i++ {
			if c := out[i]; c != '%' && !isPathByte[c] {
				t.Fatalf("Normalize(%q) = %q; raw byte %q", in, out, c)
			}
		}
		again, sep2, err := Normalize(out)
		if err != nil || again != out || sep2 != sep {
			t.Fatalf("Normalize(%q) = %q, %v; again: %q, %v, %v; want a fixed point", in, out, sep, again, sep2, err)
		}
		if sep != hasEncodedSep(out) {
			t.Fatalf("Normalize(%q) flag = %v for %q", in, sep, out)
		}
	})
}

func TestNormalizeRefusesDotSegmentsWithParams(t *testing.T) {
	t.Parallel()
	for _, raw := range []string{"/public/..;/admin", "/a/.;x/b", "/..;", "/a/%2e%2e;jsessionid=1/b"} {
		if _, _, err := Normalize(raw); err != ErrPathDotParams {
			t.Errorf("Normalize(%q) err = %v; want ErrPathDotParams", raw, err)
		}
	}
	for _, raw := range []string{"/a;b/c", "/..a;/x", "/a/b..;c"} {
		if _, _, err := Normalize(raw); err != nil {
			t.Errorf("Normalize(%q) err = %v; want nil", raw, err)
		}
	}
}
