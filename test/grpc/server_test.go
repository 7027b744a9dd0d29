package grpc_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	testpb "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// testService is the upstream gRPC server. Its behaviour is steered by
// the request payload's body:
//
//	"fail"   → INVALID_ARGUMENT with a non-ASCII message
//	"block"  → waits for the call's context (the deadline) to end
//	"stuck"  → waits, ignoring the deadline, until the test ends
//	anything else → echoed, with header and trailer metadata set
//
// Every call records the deadline it saw.
type testService struct {
	testpb.UnimplementedTestServiceServer
	release chan struct{} // closed when the test ends

	mu        sync.Mutex
	deadlines []time.Duration          // time left at arrival; -1 = none
	byBody    map[string]time.Duration // the same, by unary payload body
	forwarded []string                 // x-forwarded-for seen
}

func (s *testService) deadlineFor(body string) (time.Duration, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	d, ok := s.byBody[body]
	return d, ok
}

func (s *testService) record(ctx context.Context) {
	left := time.Duration(-1)
	if d, ok := ctx.Deadline(); ok {
		left = time.Until(d)
	}
	md, _ := metadata.FromIncomingContext(ctx)
	s.mu.Lock()
	s.deadlines = append(s.deadlines, left)
	s.forwarded = append(s.forwarded, strings.Join(md.Get("x-forwarded-for"), ","))
	s.mu.Unlock()
}

func (s *testService) lastDeadline() time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.deadlines) == 0 {
		return 0
	}
	return s.deadlines[len(s.deadlines)-1]
}

func (s *testService) UnaryCall(ctx context.Context, req *testpb.SimpleRequest) (*testpb.SimpleResponse, error) {
	s.record(ctx)
	body := string(req.GetPayload().GetBody())
	s.mu.Lock()
	if s.byBody == nil {
		s.byBody = map[string]time.Duration{}
	}
	s.byBody[body] = s.deadlines[len(s.deadlines)-1]
	s.mu.Unlock()
	switch body {
	case "fail":
		return nil, status.Error(codes.InvalidArgument, "bad payload: ñ 100%")
	case "block":
		<-ctx.Done()
		return nil, status.FromContextError(ctx.Err()).Err()
	case "stuck":
		<-s.release
		return nil, status.Error(codes.Aborted, "released")
	}
	_ = grpc.SetHeader(ctx, metadata.Pairs("x-header", "h1"))
	_ = grpc.SetTrailer(ctx, metadata.Pairs("x-trailer", "t1", "x-trailer-bin", string([]byte{0, 1, 0xff})))
	return &testpb.SimpleResponse{Payload: &testpb.Payload{Body: []byte("echo:" + body)}}, nil
}

func (s *testService) StreamingOutputCall(req *testpb.StreamingOutputCallRequest, stream grpc.ServerStreamingServer[testpb.StreamingOutputCallResponse]) error {
	s.record(stream.Context())
	for i, p := range req.GetResponseParameters() {
		if err := stream.Send(&testpb.StreamingOutputCallResponse{Payload: &testpb.Payload{Body: make([]byte, p.GetSize())}}); err != nil {
			return err
		}
		if string(req.GetPayload().GetBody()) == "stuck-after-first" && i == 0 {
			select {
			case <-s.release:
			case <-time.After(time.Minute):
			}
			return status.Error(codes.Aborted, "released")
		}
	}
	stream.SetTrailer(metadata.Pairs("x-stream-trailer", "done"))
	return nil
}

func (s *testService) FullDuplexCall(stream grpc.BidiStreamingServer[testpb.StreamingOutputCallRequest, testpb.StreamingOutputCallResponse]) error {
	s.record(stream.Context())
	_ = stream.SendHeader(metadata.Pairs("x-bidi-header", "open"))
	n := 0
	for {
		req, err := stream.Recv()
		if err == io.EOF {
			stream.SetTrailer(metadata.Pairs("x-count", strings.Repeat("x", n)))
			return nil
		}
		if err != nil {
			return err
		}
		n++
		if err := stream.Send(&testpb.StreamingOutputCallResponse{Payload: &testpb.Payload{Body: append([]byte("re:"), req.GetPayload().GetBody()...)}}); err != nil {
			return err
		}
	}
}

// startService serves a testService over h2c (creds nil) or TLS, and
// returns its address.
func startService(t *testing.T, creds credentials.TransportCredentials) (*testService, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var opts []grpc.ServerOption
	if creds != nil {
		opts = append(opts, grpc.Creds(creds))
	}
	srv := grpc.NewServer(opts...)
	svc := &testService{release: make(chan struct{})}
	testpb.RegisterTestServiceServer(srv, svc)
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() {
		close(svc.release)
		srv.Stop()
	})
	return svc, ln.Addr().String()
}

// testCreds are the TLS upstream's credentials, made by TestMain; the
// gateway's TLS listener serves the same certificate (for 127.0.0.1), and
// both are verified against caFile.
var (
	testCreds             credentials.TransportCredentials
	caFile                string
	leafFile, leafKeyFile string
)

// TestMain generates a CA and a server certificate for 127.0.0.1.
func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "portunus-grpc-test")
	if err != nil {
		panic(err)
	}
	testCreds, err = makeCerts(dir)
	if err != nil {
		panic(err)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func makeCerts(dir string) (credentials.TransportCredentials, error) {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "portunus test ca"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, err
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		return nil, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	leafTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		DNSNames:    []string{"h2c.test", "tls.test", "down.test"}, // the gateway's TLS listener is reached by these names
		KeyUsage:    x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, leafTmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return nil, err
	}
	caFile = filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), 0o600); err != nil {
		return nil, err
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, err
	}
	leafFile, leafKeyFile = filepath.Join(dir, "leaf.pem"), filepath.Join(dir, "leaf-key.pem")
	if err := os.WriteFile(leafFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: leafDER}), 0o600); err != nil {
		return nil, err
	}
	if err := os.WriteFile(leafKeyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		return nil, err
	}
	cert := tls.Certificate{Certificate: [][]byte{leafDER}, PrivateKey: key}
	return credentials.NewTLS(&tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}), nil
}
