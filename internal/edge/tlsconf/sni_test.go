package tlsconf

import (
	"crypto/tls"
	"testing"

	"github.com/portunus-gw/portunus/internal/config"
)

// sniFixture is a Manager with an RSA and an ECDSA certificate plus one
// that holds an exact name under the ECDSA certificate's wildcard.
type sniFixture struct {
	m                    *Manager
	rsa, ecdsa, exactSub *issued
}

func newSNIFixture(t testing.TB) *sniFixture {
	t.Helper()
	dir := t.TempDir()
	rsaCA := newCA(t, "rsa root", true)
	ecCA := newCA(t, "ecdsa root", false)
	f := &sniFixture{
		rsa:      rsaCA.issue(t, leafOpts{cn: "rsa", dns: []string{"rsa.example.com", "www.example.com"}, rsaKey: true}),
		ecdsa:    ecCA.issue(t, leafOpts{cn: "ecdsa", dns: []string{"ecdsa.example.com", "*.wild.example.com"}}),
		exactSub: ecCA.issue(t, leafOpts{cn: "exact", dns: []string{"exact.wild.example.com"}}),
	}
	f.m = newManager(t, &config.ListenerTLS{Certificates: []config.Certificate{
		f.rsa.write(t, dir, "rsa"),
		f.ecdsa.write(t, dir, "ecdsa"),
		f.exactSub.write(t, dir, "exact"),
	}}, nil)
	return f
}

func TestSNISelection(t *testing.T) {
	t.Parallel()
	f := newSNIFixture(t)
	addr := handshakeServer(t, f.m.TLSConfig())
	cases := []struct {
		name       string
		serverName string
		want       *issued
	}{
		{"exact rsa name", "rsa.example.com", f.rsa},
		{"second name of rsa", "www.example.com", f.rsa},
		{"exact ecdsa name, mixed case", "ECDSA.Example.COM", f.ecdsa},
		{"wildcard one label", "api.wild.example.com", f.ecdsa},
		{"exact beats wildcard", "exact.wild.example.com", f.exactSub},
		{"wildcard does not span two labels", "a.b.wild.example.com", f.rsa},
		{"wildcard does not match its base", "wild.example.com", f.rsa},
		{"unknown name gets the first", "unknown.test", f.rsa},
		{"no SNI gets the first", "", f.rsa},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cs, err := dial(addr, &tls.Config{ServerName: tc.serverName, InsecureSkipVerify: true})
			if err != nil {
				t.Fatalf("handshake: %v", err)
			}
			if got := cs.PeerCertificates[0]; !got.Equal(tc.want.cert) {
				t.Errorf("got certificate %q; want %q", got.Subject.CommonName, tc.want.cert.Subject.CommonName)
			}
		})
	}
}

func TestALPN(t *testing.T) {
	t.Parallel()
	f := newSNIFixture(t)
	addr := handshakeServer(t, f.m.TLSConfig())
	cases := []struct {
		name  string
		offer []string
		want  string
		max   uint16
	}{
		{name: "h2 preferred", offer: []string{"h2", "http/1.1"}, want: "h2"},
		{name: "http/1.1 only", offer: []string{"http/1.1"}, want: "http/1.1"},
		{name: "h2 over TLS 1.2", offer: []string{"h2"}, want: "h2", max: tls.VersionTLS12},
		{name: "no ALPN", offer: nil, want: ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg := &tls.Config{NextProtos: tc.offer, MaxVersion: tc.max, ServerName: "rsa.example.com", InsecureSkipVerify: true}
			cs, err := dial(addr, cfg)
			if err != nil {
				t.Fatalf("handshake: %v", err)
			}
			if cs.NegotiatedProtocol != tc.want {
				t.Errorf("got protocol %q; want %q", cs.NegotiatedProtocol, tc.want)
			}
		})
	}
}

// TestSNIPicksSupportedKeyType: two certificates for one name, the first
// ECDSA; a client that only accepts RSA signatures gets the RSA one.
func TestSNIPicksSupportedKeyType(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ca := newCA(t, "root", false)
	ec := ca.issue(t, leafOpts{cn: "ec", dns: []string{"both.example.com"}})
	rs := ca.issue(t, leafOpts{cn: "rsa", dns: []string{"both.example.com"}, rsaKey: true})
	m := newManager(t, &config.ListenerTLS{Certificates: []config.Certificate{ec.write(t, dir, "ec"), rs.write(t, dir, "rsa")}}, nil)
	addr := handshakeServer(t, m.TLSConfig())
	cases := []struct {
		name   string
		client *tls.Config
		want   *issued
	}{
		{"any client gets the first", &tls.Config{}, ec},
		{"RSA-only TLS 1.2 client gets RSA", &tls.Config{MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256}}, rs},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.client.ServerName = "both.example.com"
			tc.client.InsecureSkipVerify = true
			cs, err := dial(addr, tc.client)
			if err != nil {
				t.Fatalf("handshake: %v", err)
			}
			if got := cs.PeerCertificates[0]; !got.Equal(tc.want.cert) {
				t.Errorf("got certificate %q; want %q", got.Subject.CommonName, tc.want.cert.Subject.CommonName)
			}
		})
	}
}

func TestNormalizeServerName(t *testing.T) {
	t.Parallel()
	cases := []struct{ in, want string }{
		{"example.com", "example.com"},
		{"Example.COM", "example.com"},
		{"example.com.", "example.com"},
		{"", ""},
	}
	for _, tc := range cases {
		if got := normalizeServerName(tc.in); got != tc.want {
			t.Errorf("normalizeServerName(%q): got %q; want %q", tc.in, got, tc.want)
		}
	}
}

// FuzzPick: any server name yields a certificate, and a name that only
// differs in case or a trailing dot yields the same one.
func FuzzPick(f *testing.F) {
	fx := newSNIFixture(f)
	ix := fx.m.cur.Load().ix
	for _, s := range []string{"", ".", "..", "*.wild.example.com", "a.wild.example.com", "RSA.example.com.", "wild.example.com", "\x00", "a..b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		got := ix.pick(&tls.ClientHelloInfo{ServerName: name})
		if got == nil {
			t.Fatalf("pick(%q) returned nil", name)
		}
		if alt := ix.pick(&tls.ClientHelloInfo{ServerName: normalizeServerName(name) + "."}); alt != got {
			t.Errorf("pick(%q) and pick of its normalized form differ", name)
		}
	})
}

func BenchmarkGetCertificate(b *testing.B) {
	fx := newSNIFixture(b)
	cfg := fx.m.TLSConfig()
	hellos := []*tls.ClientHelloInfo{
		{ServerName: "rsa.example.com"},
		{ServerName: "api.wild.example.com"},
		{ServerName: "unknown.test"},
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		if c, _ := cfg.GetCertificate(hellos[i%len(hellos)]); c == nil {
			b.Fatal("no certificate")
		}
	}
}
