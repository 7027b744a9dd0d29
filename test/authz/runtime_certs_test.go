package authz

import (
	"crypto/tls"
	"crypto/x509/pkix"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const runtimeAdminToken = "authz-runtime-admin-token-0123"

// TestRuntimeCertificateIdentities: certificate identities added to
// runtime consumers through the admin API authenticate real client
// certificates on an mtls route (by subject and by SAN, with the
// consumer's roles), and stop doing so once removed, also on a TLS
// connection that was already open. The config file's identities win.
func TestRuntimeCertificateIdentities(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ca := newCA(t, "portunus runtime test CA")
	server := ca.issue(t, ecKey, pkix.Name{CommonName: "localhost"}, []string{"localhost"}, []net.IP{net.IPv4(127, 0, 0, 1)}, true)
	certFile, keyFile := writePair(t, dir, "server", server)
	caFile := filepath.Join(dir, "clients-ca.pem")
	if err := os.WriteFile(caFile, ca.pem, 0o600); err != nil {
		t.Fatal(err)
	}
	up := newEchoUpstream(t)
	rt := startGateway(t, fmt.Sprintf(`
listeners:
  - address: "127.0.0.1:0"
    tls: { certificates: [{ cert_file: %[1]q, key_file: %[2]q }], client_ca_file: %[3]q, client_auth: request }
admin: { address: "127.0.0.1:0", token: %[4]q }
observability: { access_log: { path: "off" } }
store: { consumers_file: %[5]q }
upstreams: [{ name: up, targets: [{ url: %[6]q }] }]
consumers:
  - name: cfg-service
    roles: [service]
    certificates: [{ subject: "CN=cfg-service" }]
routes:
  - name: devices
    match: { path_prefix: /dev }
    upstream: up
    auth: [mtls]
  - name: admin
    match: { path_prefix: /admin }
    upstream: up
    auth: [mtls]
    allow: { roles: [admin] }
`, certFile, keyFile, caFile, runtimeAdminToken, filepath.Join(dir, "consumers.db"), up.URL))
	base := "https://" + onlyAddr(t, rt)
	adm := "http://" + rt.AdminAddr()

	admin := func(method, path, body string, want int) []byte {
		t.Helper()
		var rd io.Reader
		if body != "" {
			rd = strings.NewReader(body)
		}
		req, _ := http.NewRequest(method, adm+path, rd)
		req.Header.Set("Authorization", "Bearer "+runtimeAdminToken)
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != want {
			t.Fatalf("%s %s %s: %d %s; want %d", method, path, body, resp.StatusCode, b, want)
		}
		return b
	}
	// get sends GET path with cert on a fresh connection.
	get := func(cert *tls.Certificate, path string) answer {
		t.Helper()
		resp, err := httpsClient(ca.pool, cert).Get(base + path)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		return readAnswer(t, resp)
	}
	expect := func(what string, cert *tls.Certificate, path string, status int, consumer string) {
		t.Helper()
		a := get(cert, path)
		if a.status != status {
			t.Errorf("%s: GET %s = %d (%q); want %d", what, path, a.status, a.body, status)
			return
		}
		if status == 200 {
			if got := a.upstream.Header.Get("X-Consumer-Name"); got != consumer {
				t.Errorf("%s: upstream X-Consumer-Name = %q; want %q", what, got, consumer)
			}
		}
	}

	laptop := ca.issue(t, rsaKey, pkix.Name{CommonName: "runtime-laptop", Organization: []string{"Acme"}}, nil, nil, false)
	device := ca.issue(t, edKey, pkix.Name{CommonName: "fleet-device"}, []string{"device-9.fleet.example.com"}, nil, false)
	service := ca.issue(t, ecKey, pkix.Name{CommonName: "cfg-service"}, nil, nil, false)

	// Before: verified certificates that name no one.
	expect("laptop, no identity yet", &laptop, "/dev", 401, "")
	expect("device, no identity yet", &device, "/dev", 401, "")
	expect("config identity", &service, "/dev", 200, "cfg-service")

	// Add: by subject (written by hand: case and blanks differ from the
	// certificate's) and by DNS SAN (case differs).
	admin("POST", "/api/v1/consumers", `{"name":"acme-ops","roles":["admin"]}`, 201)
	admin("POST", "/api/v1/consumers", `{"name":"fleet","roles":["device"]}`, 201)
	var laptopID struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(admin("POST", "/api/v1/consumers/acme-ops/certificates", `{"subject":"cn=runtime-laptop, o=Acme"}`, 201), &laptopID); err != nil || laptopID.ID == "" {
		t.Fatalf("certificate id: %v %+v", err, laptopID)
	}
	admin("POST", "/api/v1/consumers/fleet/certificates", `{"san":"Device-9.Fleet.example.com"}`, 201)
	// The config file's identity cannot be taken by a runtime consumer.
	admin("POST", "/api/v1/consumers/fleet/certificates", `{"subject":"CN=cfg-service"}`, 409)

	expect("laptop by subject", &laptop, "/dev", 200, "acme-ops")
	expect("laptop's role admin", &laptop, "/admin", 200, "acme-ops")
	expect("device by SAN", &device, "/dev", 200, "fleet")
	expect("device's role is not admin", &device, "/admin", 403, "")
	expect("config identity still", &service, "/dev", 200, "cfg-service")

	// A role change applies to the next request.
	admin("PUT", "/api/v1/consumers/fleet", `{"roles":["device","admin"]}`, 200)
	expect("device after the role change", &device, "/admin", 200, "fleet")

	// An open TLS connection authenticated as acme-ops: removing the
	// identity refuses its next request too (identities are looked up
	// per request, not per connection).
	kept := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{
		RootCAs: ca.pool, ServerName: "localhost",
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &laptop, nil },
	}}, Timeout: waitLimit}
	defer kept.CloseIdleConnections()
	onKept := func() (answer, bool) {
		t.Helper()
		reused := false
		req, _ := http.NewRequest("GET", base+"/dev", nil)
		req = req.WithContext(httptrace.WithClientTrace(req.Context(), &httptrace.ClientTrace{
			GotConn: func(i httptrace.GotConnInfo) { reused = i.Reused },
		}))
		resp, err := kept.Do(req)
		if err != nil {
			t.Fatalf("GET /dev on the kept connection: %v", err)
		}
		return readAnswer(t, resp), reused
	}
	if a, _ := onKept(); a.status != 200 {
		t.Fatalf("kept connection before the removal: %d", a.status)
	}

	admin("DELETE", "/api/v1/consumers/acme-ops/certificates/"+laptopID.ID, "", 204)
	admin("DELETE", "/api/v1/consumers/acme-ops/certificates/"+laptopID.ID, "", 404)
	if a, reused := onKept(); a.status != 401 || !reused {
		t.Errorf("kept connection after the removal: %d (reused %v); want 401 on the same connection", a.status, reused)
	}
	expect("laptop after its identity is removed", &laptop, "/dev", 401, "")
	expect("laptop after its identity is removed", &laptop, "/admin", 401, "")
	expect("device unaffected", &device, "/dev", 200, "fleet")

	// Deleting the consumer removes its identities with it.
	admin("DELETE", "/api/v1/consumers/fleet", "", 204)
	expect("device after its consumer is deleted", &device, "/dev", 401, "")
	expect("config identity throughout", &service, "/dev", 200, "cfg-service")
}
