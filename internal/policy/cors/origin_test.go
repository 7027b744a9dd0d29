package cors

import "testing"

func TestOriginsAllowed(t *testing.T) {
	t.Parallel()
	list := []string{
		"https://app.example.com",
		"http://LOCALHOST:3000",
		"https://api.example.org:443",
		"https://*.example.com",
		"http://*.dev.example.net:8080",
		"https://[::1]:8443",
	}
	os, err := compileOrigins(list)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, origin string
		want         bool
	}{
		{"exact", "https://app.example.com", true},
		{"exact upper-case host", "https://APP.Example.com", true},
		{"exact upper-case scheme", "HTTPS://app.example.com", true},
		{"exact default port written", "https://app.example.com:443", true},
		{"exact other port", "https://app.example.com:8443", false}, // the wildcard keeps its port too
		{"exact scheme mismatch", "http://app.example.com", false},
		{"config host case", "http://localhost:3000", true},
		{"config port missing", "http://localhost", false},
		{"config default port normalized", "https://api.example.org", true},
		{"wildcard one label", "https://a.example.com", true},
		{"wildcard two labels", "https://a.b.example.com", true},
		{"wildcard apex refused", "https://example.com", false},
		{"wildcard empty label", "https://.example.com", false},
		{"wildcard double dot", "https://a..example.com", false},
		{"wildcard suffix trick", "https://evilexample.com", false},
		{"wildcard other domain", "https://example.com.evil.org", false},
		{"wildcard scheme mismatch", "http://a.example.com", false},
		{"wildcard with port", "http://x.dev.example.net:8080", true},
		{"wildcard wrong port", "http://x.dev.example.net", false},
		{"wildcard upper case", "https://A.EXAMPLE.COM", true},
		{"ipv6 literal", "https://[::1]:8443", true},
		{"ipv6 other port", "https://[::1]", false},
		{"null origin", "null", false},
		{"empty", "", false},
		{"path smuggled", "https://app.example.com/x", false},
		{"userinfo smuggled", "https://app.example.com@evil.org", false},
		{"other scheme", "ftp://app.example.com", false},
		{"bad port", "https://app.example.com:abc", false},
		{"trailing colon", "https://app.example.com:", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			if got := os.allowed(c.origin); got != c.want {
				t.Errorf("allowed(%q) = %v; want %v", c.origin, got, c.want)
			}
		})
	}
}

func TestOriginsStar(t *testing.T) {
	t.Parallel()
	os, err := compileOrigins([]string{"*"})
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range []string{"null", "https://anything.example", "http://localhost:1"} {
		if !os.allowed(o) {
			t.Errorf("allowed(%q) with \"*\" = false; want true", o)
		}
	}
}

func TestCompileOriginsInvalid(t *testing.T) {
	t.Parallel()
	for _, o := range []string{
		"app.example.com",
		"https://user@app.example.com",
		"https://app.example.com/path",
		"https://app.example.com?q=1",
		"ftp://app.example.com",
		"https://*.",
		"https://*..com",
	} {
		if _, err := compileOrigins([]string{o}); err == nil {
			t.Errorf("compileOrigins(%q): got no error; want one", o)
		}
	}
}

func FuzzOrigin(f *testing.F) {
	for _, s := range []string{
		"https://app.example.com", "HTTPS://A.Example.COM:443", "http://[::1]:80", "null", "",
		"https://a..example.com", "https://x.example.com:", "https://:443", "http://[::1", "https://a.example.com]",
	} {
		f.Add(s)
	}
	os, err := compileOrigins([]string{"https://app.example.com", "https://*.example.com", "http://[::1]"})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, s string) {
		o, ok := parseOrigin(s)
		allowed := os.allowed(s)
		if !ok {
			if allowed {
				t.Fatalf("allowed(%q) = true for an origin that does not parse", s)
			}
			return
		}
		// A parsed origin's canonical form parses to the same origin and
		// gets the same decision: case and default ports never matter.
		c := o.canonical()
		o2, ok2 := parseOrigin(c)
		if !ok2 || o2.canonical() != c {
			t.Fatalf("canonical(%q) = %q does not round-trip", s, c)
		}
		if got := os.allowed(c); got != allowed {
			t.Fatalf("allowed(%q) = %v but allowed(%q) = %v", s, allowed, c, got)
		}
	})
}
