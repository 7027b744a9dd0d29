package upstream

import (
	"context"
	"errors"
	"net"
	"net/url"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/portunus-gw/portunus/internal/config"
)

func TestCheckGRPCHealth(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	hs := health.NewServer()
	hs.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	hs.SetServingStatus("up", healthpb.HealthCheckResponse_SERVING)
	hs.SetServingStatus("down", healthpb.HealthCheckResponse_NOT_SERVING)
	healthpb.RegisterHealthServer(srv, hs)
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(srv.Stop)

	// A port with nothing listening: bind, note it, close.
	dead, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadAddr := dead.Addr().String()
	dead.Close()

	pool, err := NewPool(config.Upstream{Name: "g", Protocol: "h2c", Targets: []config.Target{{URL: "http://" + ln.Addr().String()}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pool.Close() })

	cases := []struct {
		name        string
		addr        string
		service     string
		wantServing int // ServingStatus in the GRPCHealthError
		wantGRPC    int // GRPCStatus in the GRPCHealthError
		wantOK      bool
		wantOther   bool // a non-GRPCHealthError error (transport)
	}{
		{name: "server serving", addr: ln.Addr().String(), service: "", wantOK: true},
		{name: "service serving", addr: ln.Addr().String(), service: "up", wantOK: true},
		{name: "service not serving", addr: ln.Addr().String(), service: "down", wantServing: 2},
		{name: "unknown service", addr: ln.Addr().String(), service: "nope", wantGRPC: 5},
		{name: "server down", addr: deadAddr, service: "", wantOther: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			err := CheckGRPCHealth(ctx, pool.RoundTripper(), &url.URL{Scheme: "http", Host: tc.addr}, tc.service)
			var he *GRPCHealthError
			switch {
			case tc.wantOK:
				if err != nil {
					t.Errorf("got %v; want nil (SERVING)", err)
				}
			case tc.wantOther:
				if err == nil || errors.As(err, &he) {
					t.Errorf("got %v; want a transport error", err)
				}
			default:
				if !errors.As(err, &he) {
					t.Fatalf("got %v; want a *GRPCHealthError", err)
				}
				if he.GRPCStatus != tc.wantGRPC || he.ServingStatus != tc.wantServing {
					t.Errorf("got grpc status %d serving %d; want %d, %d", he.GRPCStatus, he.ServingStatus, tc.wantGRPC, tc.wantServing)
				}
			}
		})
	}
}

func TestDecodeHealthResponse(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		body    []byte
		want    int
		wantErr bool
	}{
		{"serving", []byte{0, 0, 0, 0, 2, 0x08, 0x01}, 1, false},
		{"empty message is UNKNOWN", []byte{0, 0, 0, 0, 0}, 0, false},
		{"unknown field skipped", []byte{0, 0, 0, 0, 5, 0x12, 0x01, 'x', 0x08, 0x02}, 2, false},
		{"short frame", []byte{0, 0, 0}, 0, true},
		{"length mismatch", []byte{0, 0, 0, 0, 9, 0x08, 0x01}, 0, true},
		{"compressed", []byte{1, 0, 0, 0, 2, 0x08, 0x01}, 0, true},
		{"truncated varint", []byte{0, 0, 0, 0, 2, 0x08, 0x80}, 0, true},
		{"bad length", []byte{0, 0, 0, 0, 2, 0x12, 0x7f}, 0, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := decodeHealthResponse(tc.body)
			if (err != nil) != tc.wantErr || got != tc.want {
				t.Errorf("got %d, %v; want %d, error %v", got, err, tc.want, tc.wantErr)
			}
		})
	}
}

func FuzzDecodeHealthResponse(f *testing.F) {
	f.Add([]byte{0, 0, 0, 0, 2, 0x08, 0x01})
	f.Add([]byte{0, 0, 0, 0, 5, 0x12, 0x01, 'x', 0x08, 0x02})
	f.Add([]byte{0, 0, 0, 0, 1, 0x0d})
	f.Fuzz(func(t *testing.T, b []byte) {
		_, err := decodeHealthResponse(b)
		// Whatever it accepts is one uncompressed frame spanning the body.
		if err == nil && (len(b) < 5 || b[0] != 0 || int(b[1])<<24|int(b[2])<<16|int(b[3])<<8|int(b[4]) != len(b)-5) {
			t.Fatalf("accepted % x, which is not one whole uncompressed frame", b)
		}
	})
}

func TestEncodeHealthRequest(t *testing.T) {
	t.Parallel()
	got := encodeHealthRequest("svc")
	want := []byte{0, 0, 0, 0, 5, 0x0a, 3, 's', 'v', 'c'}
	if string(got) != string(want) {
		t.Errorf("got % x; want % x", got, want)
	}
	if got := encodeHealthRequest(""); string(got) != "\x00\x00\x00\x00\x00" {
		t.Errorf("empty service: got % x; want an empty message", got)
	}
}
