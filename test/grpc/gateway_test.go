// Package grpc_test runs real gRPC clients and servers
// (google.golang.org/grpc) through the gateway: unary, server-streaming and
// bidi calls over h2c and TLS upstreams, metadata and trailers, deadlines,
// the gateway's own errors as gRPC statuses, and gRPC-Web over HTTP/1.1.
package grpc_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/portunus-gw/portunus/internal/gateway"
)

// env is one gateway in front of an h2c and a TLS gRPC server.
type env struct {
	h2c, tls  *testService
	gwAddr    string // the h2c listener
	gwTLSAddr string // the TLS listener (HTTP/2 by ALPN)
}

// newEnv starts both servers and a gateway whose h2c listener routes
// Host h2c.test to the h2c server, tls.test to the TLS one, down.test to
// a dead port; only the TestService path prefix is routed.
func newEnv(t *testing.T) *env {
	t.Helper()
	e := &env{}
	var h2cAddr, tlsAddr string
	e.h2c, h2cAddr = startService(t, nil)
	e.tls, tlsAddr = startService(t, testCreds)
	dead, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadAddr := dead.Addr().String()
	dead.Close()

	cfg := fmt.Sprintf(`
listeners:
  - { address: "127.0.0.1:0", h2c: true }
  - address: "127.0.0.1:0"
    tls: { certificates: [{ cert_file: %q, key_file: %q }] }
observability: { access_log: { path: "off" } }
upstreams:
  - name: plain
    protocol: h2c
    targets: [{ url: "http://%s" }]
  - name: secure
    targets: [{ url: "https://%s" }]
    tls: { ca_file: %q }
  - name: down
    protocol: h2c
    targets: [{ url: "http://%s" }]
routes:
  - name: h2c
    match: { hosts: [h2c.test], path_prefix: /grpc.testing.TestService }
    upstream: plain
  - name: tls
    match: { hosts: [tls.test], path_prefix: /grpc.testing.TestService }
    upstream: secure
  - name: down
    match: { hosts: [down.test], path_prefix: /grpc.testing.TestService }
    upstream: down
`, leafFile, leafKeyFile, h2cAddr, tlsAddr, caFile, deadAddr)
	path := filepath.Join(t.TempDir(), "portunus.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		log = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	rt, err := gateway.Start(gateway.Options{ConfigPath: path, Log: log})
	if err != nil {
		t.Fatalf("gateway start: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		rt.Shutdown(ctx)
	})
	for cfgAddr, a := range rt.ListenerAddrs() {
		if strings.Contains(cfgAddr, "#") {
			e.gwTLSAddr = a // the second "127.0.0.1:0" listener
		} else {
			e.gwAddr = a
		}
	}
	if e.gwAddr == "" || e.gwTLSAddr == "" {
		t.Fatalf("listener addresses: %v", rt.ListenerAddrs())
	}
	return e
}

// listeners names the gateway's two ways in: h2c and TLS.
func (e *env) listeners() []struct {
	name string
	dial func(*testing.T, string) *grpc.ClientConn
} {
	return []struct {
		name string
		dial func(*testing.T, string) *grpc.ClientConn
	}{{"h2c listener", e.dial}, {"TLS listener", e.dialTLS}}
}

// dialTLS returns a gRPC client talking HTTP/2 over TLS to the gateway's
// TLS listener, verifying its certificate against the test CA.
func (e *env) dialTLS(t *testing.T, host string) *grpc.ClientConn {
	t.Helper()
	pem, err := os.ReadFile(caFile)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(pem)
	// The authority (host) is also the TLS server name the certificate
	// is verified for.
	creds := credentials.NewTLS(&tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12})
	cc, err := grpc.NewClient("passthrough:///"+e.gwTLSAddr, grpc.WithTransportCredentials(creds), grpc.WithAuthority(host))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cc.Close() })
	return cc
}

// dial returns a gRPC client talking h2c to the gateway as host.
func (e *env) dial(t *testing.T, host string) *grpc.ClientConn {
	t.Helper()
	cc, err := grpc.NewClient("passthrough:///"+e.gwAddr,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithAuthority(host))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cc.Close() })
	return cc
}

// callCtx bounds a test call generously, so nothing hangs.
func callCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}
