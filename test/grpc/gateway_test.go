// Package grpc_test runs real gRPC clients and servers
// (google.golang.org/grpc) through the gateway: unary, server-streaming and
// bidi calls over h2c and TLS upstreams, metadata and trailers, deadlines,
// the gateway's own errors as gRPC statuses, and gRPC-Web over HTTP/1.1.
package grpc_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/portunus-gw/portunus/internal/gateway"
)

// env is one gateway in front of an h2c and a TLS gRPC server.
type env struct {
	h2c, tls *testService
	gwAddr   string
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
listeners: [{ address: "127.0.0.1:0", h2c: true }]
observability: { access_log: { path: "off" } }
upstreams:
  - name: plain
    protocol: h2c
    targets: [{ url: "http://%s" }]
  - name: secure
    targets: [{ url: "https://%s" }]
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
`, h2cAddr, tlsAddr, deadAddr)
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
	for _, a := range rt.ListenerAddrs() {
		e.gwAddr = a
	}
	return e
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
