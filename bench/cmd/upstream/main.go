// Command upstream is the minimal origin server used by the load harness
// (bench/cmd/loadharness): it answers every request with the same 100-byte
// JSON body, keep-alive on, so that a benchmark through a proxy measures the
// proxy and not the origin.
//
// It listens on a loopback address only and prints one line,
// "upstream: listening on ADDR", to stdout once it accepts connections, so
// the harness can start it on port 0 and learn the port without a race.
//
//	upstream -addr 127.0.0.1:0
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"
)

// body is the fixed response: exactly bodySize bytes of JSON (checked by a test).
var body = []byte(`{"status":"ok","service":"portunus-bench-upstream","payload":"abcdefghijklmnopqrstuvwxyz012345678"}` + "\n")

const bodySize = 100

// maxDrain bounds how much of a request body is read before answering, so a
// misbehaving client cannot make the upstream read forever.
const maxDrain = 1 << 20

func main() {
	addr := flag.String("addr", "127.0.0.1:8081", "loopback address to listen on (port 0 picks a free port)")
	flag.Parse()
	if err := run(*addr); err != nil {
		fmt.Fprintln(os.Stderr, "upstream:", err)
		os.Exit(1)
	}
}

func run(addr string) error {
	if err := requireLoopback(addr); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	srv := newServer()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	fmt.Printf("upstream: listening on %s\n", ln.Addr())
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return nil
}

// requireLoopback refuses anything but a literal loopback IP: this server
// exists to be hammered by a load generator and must never face a network.
func requireLoopback(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("bad -addr %q: %w", addr, err)
	}
	ip := net.ParseIP(host)
	if ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("-addr %q: only a literal loopback IP is allowed", addr)
	}
	return nil
}

func newServer() *http.Server {
	return &http.Server{
		Handler:           http.HandlerFunc(serve),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
	}
}

// contentLength is formatted once; the handler sets header slices directly
// (canonical keys) to keep the per-request cost of the origin minimal.
var contentLength = []string{strconv.Itoa(len(body))}

var contentType = []string{"application/json"}

func serve(w http.ResponseWriter, r *http.Request) {
	if r.Body != nil {
		_, _ = io.Copy(io.Discard, io.LimitReader(r.Body, maxDrain))
	}
	h := w.Header()
	h["Content-Type"] = contentType
	h["Content-Length"] = contentLength
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body)
}
