package consumers

import (
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"net"
	"net/url"
	"strings"
	"testing"

	"github.com/portunus-gw/portunus/internal/config"
	"golang.org/x/crypto/bcrypt"
)

func hashOf(key string) string {
	s := sha256.Sum256([]byte(key))
	return "sha256:" + hex.EncodeToString(s[:])
}

func bcryptOf(t testing.TB, pw string) string {
	t.Helper()
	h, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	return string(h)
}

func testDirectory(t *testing.T) *Directory {
	t.Helper()
	d, err := New([]config.Consumer{
		{Name: "alice", Roles: []string{"admin"}, APIKeys: []string{hashOf("alice-key"), "alice-literal"},
			BasicAuth:    &config.BasicAuth{Username: "alice", PasswordHash: bcryptOf(t, "s3cret")},
			Certificates: []config.CertificateMatch{{Subject: "CN=alice-laptop"}, {SAN: "Device-17.IoT.example.com"}}},
		{Name: "bob", Roles: []string{"reader"}, APIKeys: []string{"sha256:" + strings.ToUpper(hashOf("bob-key")[7:])},
			Certificates: []config.CertificateMatch{{Subject: "cn=dev, o=Acme"}, {SAN: "spiffe://acme/bob"}, {SAN: "bob@example.com"}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func name(c *Consumer) string {
	if c == nil {
		return ""
	}
	return c.Name
}

func TestByAPIKey(t *testing.T) {
	t.Parallel()
	d := testDirectory(t)
	cases := []struct{ name, key, want string }{
		{"hashed in config", "alice-key", "alice"},
		{"literal in config", "alice-literal", "alice"},
		{"upper-case hex in config", "bob-key", "bob"},
		{"unknown", "mallory", ""},
		{"empty", "", ""},
		{"the hash itself is not a key", hashOf("alice-key"), ""},
		{"prefix of a key", "alice-", ""},
		{"longer than the stack buffer", strings.Repeat("k", 1000), ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := name(d.ByAPIKey(tc.key)); got != tc.want {
				t.Errorf("ByAPIKey(%q) = %q; want %q", tc.key, got, tc.want)
			}
		})
	}
}

func TestByBasic(t *testing.T) {
	t.Parallel()
	d := testDirectory(t)
	cases := []struct{ name, user, pass, want string }{
		{"right password", "alice", "s3cret", "alice"},
		{"wrong password", "alice", "guess", ""},
		{"unknown user", "mallory", "s3cret", ""},
		{"empty password", "alice", "", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := name(d.ByBasic(tc.user, tc.pass)); got != tc.want {
				t.Errorf("ByBasic(%q, %q) = %q; want %q", tc.user, tc.pass, got, tc.want)
			}
		})
	}
}

func TestDummyHashMatchesCost(t *testing.T) {
	t.Parallel()
	d := testDirectory(t)
	cost, err := bcrypt.Cost(d.dummyHash)
	if err != nil || cost != bcrypt.MinCost {
		t.Errorf("dummy hash cost = %d, %v; want %d (the configured cost)", cost, err, bcrypt.MinCost)
	}
}

func TestByCertificate(t *testing.T) {
	t.Parallel()
	d := testDirectory(t)
	u, _ := url.Parse("spiffe://acme/bob")
	cases := []struct {
		name string
		cert *x509.Certificate
		want string
	}{
		{"subject CN", &x509.Certificate{Subject: pkix.Name{CommonName: "alice-laptop"}}, "alice"},
		{"subject with O, written with blanks and lower-case types", &x509.Certificate{Subject: pkix.Name{CommonName: "dev", Organization: []string{"Acme"}}}, "bob"},
		{"subject value is case-sensitive", &x509.Certificate{Subject: pkix.Name{CommonName: "ALICE-LAPTOP"}}, ""},
		{"DNS SAN, any case", &x509.Certificate{Subject: pkix.Name{CommonName: "x"}, DNSNames: []string{"device-17.iot.EXAMPLE.com"}}, "alice"},
		{"URI SAN", &x509.Certificate{URIs: []*url.URL{u}}, "bob"},
		{"email SAN", &x509.Certificate{EmailAddresses: []string{"bob@example.com"}}, "bob"},
		{"unknown", &x509.Certificate{Subject: pkix.Name{CommonName: "eve"}, IPAddresses: []net.IP{net.IPv4(10, 0, 0, 1)}}, ""},
		{"subject CN is not a SAN", &x509.Certificate{Subject: pkix.Name{CommonName: "device-17.iot.example.com"}}, ""},
		{"nil", nil, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := name(d.ByCertificate(tc.cert)); got != tc.want {
				t.Errorf("ByCertificate = %q; want %q", got, tc.want)
			}
		})
	}
}

func TestNewRefuses(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		cfg  []config.Consumer
		want string
	}{
		{"literal and hashed copies of one key", []config.Consumer{
			{Name: "a", APIKeys: []string{"k1"}}, {Name: "b", APIKeys: []string{hashOf("k1")}}}, "share an API key"},
		{"bad hash", []config.Consumer{{Name: "a", APIKeys: []string{"sha256:zz"}}}, "64 hex digits"},
		{"one subject, two consumers", []config.Consumer{
			{Name: "a", Certificates: []config.CertificateMatch{{Subject: "CN=x"}}},
			{Name: "b", Certificates: []config.CertificateMatch{{Subject: "cn=x"}}}}, "names both"},
		{"not bcrypt", []config.Consumer{{Name: "a", BasicAuth: &config.BasicAuth{Username: "a", PasswordHash: "plain"}}}, "bcrypt"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := New(tc.cfg)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("New: got %v; want an error containing %q", err, tc.want)
			}
		})
	}
}

func TestRolesAreCapped(t *testing.T) {
	t.Parallel()
	cfg := []config.Consumer{{Name: "a", Roles: make([]string, 1, 8)}}
	d, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	r := d.ByName("a").Roles
	_ = append(r, "intruder")
	if got := d.ByName("a").Roles; len(got) != 1 || cap(got) != 1 {
		t.Errorf("roles len %d cap %d; want 1 1", len(got), cap(got))
	}
	if cfg[0].Roles[:2][1] == "intruder" {
		t.Errorf("append through the directory wrote into the config's array")
	}
}

func TestNormalizeDN(t *testing.T) {
	t.Parallel()
	cases := []struct{ in, want string }{
		{"CN=dev,O=Acme", "CN=dev,O=Acme"},
		{" cn = dev , o = Acme ", "CN=dev,O=Acme"},
		{`CN=a\,b,O=x`, `CN=a\,b,O=x`},
		{"", ""},
	}
	for _, tc := range cases {
		if got := normalizeDN(tc.in); got != tc.want {
			t.Errorf("normalizeDN(%q) = %q; want %q", tc.in, got, tc.want)
		}
	}
}

func BenchmarkByAPIKey(b *testing.B) {
	d, err := New([]config.Consumer{{Name: "a", APIKeys: []string{"0123456789abcdef0123456789abcdef"}}})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if d.ByAPIKey("0123456789abcdef0123456789abcdef") == nil {
			b.Fatal("miss")
		}
	}
}
