package grpc_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	testpb "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

var upstreams = []struct{ name, host string }{
	{"h2c upstream", "h2c.test"},
	{"TLS upstream", "tls.test"},
}

func TestUnary(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for _, l := range e.listeners() {
		for _, u := range upstreams {
			t.Run(l.name+"/"+u.name, func(t *testing.T) {
				t.Parallel()
				c := testpb.NewTestServiceClient(l.dial(t, u.host))
				var header, trailer metadata.MD
				res, err := c.UnaryCall(callCtx(t), &testpb.SimpleRequest{Payload: &testpb.Payload{Body: []byte("hi")}},
					grpc.Header(&header), grpc.Trailer(&trailer))
				if err != nil {
					t.Fatalf("UnaryCall: %v", err)
				}
				if got := string(res.GetPayload().GetBody()); got != "echo:hi" {
					t.Errorf("payload: got %q; want %q", got, "echo:hi")
				}
				if got := header.Get("x-header"); len(got) != 1 || got[0] != "h1" {
					t.Errorf("header metadata x-header: got %q; want [h1]", got)
				}
				if got := trailer.Get("x-trailer"); len(got) != 1 || got[0] != "t1" {
					t.Errorf("trailer metadata x-trailer: got %q; want [t1]", got)
				}
				if got := trailer.Get("x-trailer-bin"); len(got) != 1 || got[0] != "\x00\x01\xff" {
					t.Errorf("binary trailer metadata: got %q; want [\"\\x00\\x01\\xff\"]", got)
				}
			})
		}
	}
}

func TestUpstreamStatusPassesThrough(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := testpb.NewTestServiceClient(e.dial(t, "h2c.test"))
	_, err := c.UnaryCall(callCtx(t), &testpb.SimpleRequest{Payload: &testpb.Payload{Body: []byte("fail")}})
	st := status.Convert(err)
	if st.Code() != codes.InvalidArgument || st.Message() != "bad payload: ñ 100%" {
		t.Errorf("got %v %q; want InvalidArgument %q", st.Code(), st.Message(), "bad payload: ñ 100%")
	}
}

func TestServerStreaming(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for _, u := range upstreams {
		t.Run(u.name, func(t *testing.T) {
			t.Parallel()
			c := testpb.NewTestServiceClient(e.dial(t, u.host))
			sizes := []int32{1, 100, 70000, 3}
			req := &testpb.StreamingOutputCallRequest{}
			for _, s := range sizes {
				req.ResponseParameters = append(req.ResponseParameters, &testpb.ResponseParameters{Size: s})
			}
			stream, err := c.StreamingOutputCall(callCtx(t), req)
			if err != nil {
				t.Fatal(err)
			}
			var got []int32
			for {
				m, err := stream.Recv()
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatalf("Recv after %d messages: %v", len(got), err)
				}
				got = append(got, int32(len(m.GetPayload().GetBody())))
			}
			if len(got) != len(sizes) {
				t.Fatalf("messages: got sizes %v; want %v", got, sizes)
			}
			for i := range sizes {
				if got[i] != sizes[i] {
					t.Errorf("message %d: got %d bytes; want %d", i, got[i], sizes[i])
				}
			}
			if tr := stream.Trailer().Get("x-stream-trailer"); len(tr) != 1 || tr[0] != "done" {
				t.Errorf("trailer x-stream-trailer: got %q; want [done]", tr)
			}
		})
	}
}

func TestBidi(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for _, l := range e.listeners() {
		for _, u := range upstreams {
			t.Run(l.name+"/"+u.name, func(t *testing.T) {
				t.Parallel()
				c := testpb.NewTestServiceClient(l.dial(t, u.host))
				stream, err := c.FullDuplexCall(callCtx(t))
				if err != nil {
					t.Fatal(err)
				}
				// The server's headers arrive before any message is sent:
				// nothing on the way holds them back.
				h, err := stream.Header()
				if err != nil || len(h.Get("x-bidi-header")) != 1 {
					t.Fatalf("Header: got %v, %v; want x-bidi-header before any message", h, err)
				}
				// Strict ping-pong: each answer must arrive before the next
				// message is sent, which only works if both directions
				// stream through the gateway.
				for i, msg := range []string{"a", "bb", "ccc"} {
					if err := stream.Send(&testpb.StreamingOutputCallRequest{Payload: &testpb.Payload{Body: []byte(msg)}}); err != nil {
						t.Fatalf("Send %d: %v", i, err)
					}
					res, err := stream.Recv()
					if err != nil {
						t.Fatalf("Recv %d: %v", i, err)
					}
					if got := string(res.GetPayload().GetBody()); got != "re:"+msg {
						t.Errorf("answer %d: got %q; want %q", i, got, "re:"+msg)
					}
				}
				if err := stream.CloseSend(); err != nil {
					t.Fatal(err)
				}
				if _, err := stream.Recv(); err != io.EOF {
					t.Fatalf("Recv after CloseSend: got %v; want EOF", err)
				}
				if got := stream.Trailer().Get("x-count"); len(got) != 1 || got[0] != "xxx" {
					t.Errorf("trailer x-count: got %q; want [xxx]", got)
				}
			})
		}
	}
}

func TestDeadlineAtUpstream(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := testpb.NewTestServiceClient(e.dial(t, "h2c.test"))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_, err := c.UnaryCall(ctx, &testpb.SimpleRequest{Payload: &testpb.Payload{Body: []byte("block")}})
	if got := status.Code(err); got != codes.DeadlineExceeded {
		t.Errorf("got %v (%v); want DeadlineExceeded", got, err)
	}
	// The upstream got the deadline, shortened by the time already spent.
	if left := e.h2c.lastDeadline(); left <= 0 || left > 2*time.Second {
		t.Errorf("deadline left at the upstream: got %v; want within (0, 2s]", left)
	}
}

func TestGatewayErrorsAsStatus(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	cases := []struct {
		name string
		host string
		call func(ctx context.Context, cc *grpc.ClientConn) error
		want codes.Code
	}{
		{"no route", "h2c.test", func(ctx context.Context, cc *grpc.ClientConn) error {
			_, err := healthpb.NewHealthClient(cc).Check(ctx, &healthpb.HealthCheckRequest{})
			return err
		}, codes.Unimplemented},
		{"upstream down", "down.test", func(ctx context.Context, cc *grpc.ClientConn) error {
			_, err := testpb.NewTestServiceClient(cc).UnaryCall(ctx, &testpb.SimpleRequest{})
			return err
		}, codes.Unavailable},
		{"upstream down, streaming", "down.test", func(ctx context.Context, cc *grpc.ClientConn) error {
			s, err := testpb.NewTestServiceClient(cc).StreamingOutputCall(ctx, &testpb.StreamingOutputCallRequest{})
			if err != nil {
				return err
			}
			_, err = s.Recv()
			return err
		}, codes.Unavailable},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := tc.call(callCtx(t), e.dial(t, tc.host))
			st := status.Convert(err)
			if st.Code() != tc.want {
				t.Errorf("got %v %q; want %v", st.Code(), st.Message(), tc.want)
			}
			if st.Message() == "" {
				t.Errorf("grpc-message: got none; want the gateway's explanation")
			}
		})
	}
}

// h2cClient speaks HTTP/2 with prior knowledge, for raw gRPC requests
// that a gRPC client would not send (no client-side deadline).
func h2cClient() *http.Client {
	var p http.Protocols
	p.SetUnencryptedHTTP2(true)
	return &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{Protocols: &p}}
}

// grpcFrame frames one protobuf message.
func grpcFrame(t *testing.T, m proto.Message) []byte {
	t.Helper()
	b, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]byte, 5, 5+len(b))
	binary.BigEndian.PutUint32(out[1:], uint32(len(b)))
	return append(out, b...)
}

func rawCall(t *testing.T, e *env, method, timeout string, m proto.Message) (*http.Response, []byte) {
	t.Helper()
	req, _ := http.NewRequest("POST", "http://"+e.gwAddr+"/grpc.testing.TestService/"+method, bytes.NewReader(grpcFrame(t, m)))
	req.Host = "h2c.test"
	req.Header.Set("Content-Type", "application/grpc")
	req.Header.Set("Te", "trailers")
	if timeout != "" {
		req.Header.Set("Grpc-Timeout", timeout)
	}
	res, err := h2cClient().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("reading body: %v", err)
	}
	return res, body
}

// grpcStatusOf returns grpc-status from the trailers, or from the headers
// of a Trailers-Only answer.
func grpcStatusOf(res *http.Response) string {
	if v := res.Trailer.Get("Grpc-Status"); v != "" {
		return v
	}
	return res.Header.Get("Grpc-Status")
}

// The gateway enforces grpc-timeout itself, even when the upstream ignores
// it: before the response headers (Trailers-Only) and mid-stream
// (trailers after the messages already sent).
func TestGatewayEnforcesGRPCTimeout(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	t.Run("before headers", func(t *testing.T) {
		t.Parallel()
		res, _ := rawCall(t, e, "UnaryCall", "300m", &testpb.SimpleRequest{Payload: &testpb.Payload{Body: []byte("stuck")}})
		if got := grpcStatusOf(res); got != "4" {
			t.Errorf("grpc-status: got %q (%q); want 4", got, res.Header.Get("Grpc-Message"))
		}
	})
	t.Run("mid stream", func(t *testing.T) {
		t.Parallel()
		res, body := rawCall(t, e, "StreamingOutputCall", "500m", &testpb.StreamingOutputCallRequest{
			Payload:            &testpb.Payload{Body: []byte("stuck-after-first")},
			ResponseParameters: []*testpb.ResponseParameters{{Size: 10}, {Size: 10}},
		})
		want := grpcFrame(t, &testpb.StreamingOutputCallResponse{Payload: &testpb.Payload{Body: make([]byte, 10)}})
		if !bytes.Equal(body, want) {
			t.Errorf("body: got % x; want the one message sent before the deadline, % x", body, want)
		}
		if got := res.Trailer.Get("Grpc-Status"); got != "4" {
			t.Errorf("trailer grpc-status: got %q; want 4", got)
		}
	})
	t.Run("malformed", func(t *testing.T) {
		t.Parallel()
		res, _ := rawCall(t, e, "UnaryCall", "1x", &testpb.SimpleRequest{})
		if got := grpcStatusOf(res); got != "13" {
			t.Errorf("grpc-status: got %q; want 13 (INTERNAL)", got)
		}
	})
	t.Run("forwarded shortened", func(t *testing.T) {
		t.Parallel()
		res, _ := rawCall(t, e, "UnaryCall", "9S", &testpb.SimpleRequest{Payload: &testpb.Payload{Body: []byte("forwarded")}})
		if got := grpcStatusOf(res); got != "0" {
			t.Fatalf("grpc-status: got %q; want 0", got)
		}
		left, ok := e.h2c.deadlineFor("forwarded")
		if !ok || left <= 0 || left > 9*time.Second {
			t.Errorf("deadline left at the upstream: got %v (seen %v); want within (0, 9s]", left, ok)
		}
	})
}

// gRPC-Web over plain HTTP/1.1: a hand-framed unary call, the answer's
// message and trailer frame parsed by hand.
func TestGRPCWebUnary(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	body := grpcFrame(t, &testpb.SimpleRequest{Payload: &testpb.Payload{Body: []byte("web")}})
	req, _ := http.NewRequest("POST", "http://"+e.gwAddr+"/grpc.testing.TestService/UnaryCall", bytes.NewReader(body))
	req.Host = "h2c.test"
	req.Header.Set("Content-Type", "application/grpc-web+proto")
	req.Header.Set("X-Grpc-Web", "1")
	c := &http.Client{Timeout: 20 * time.Second}
	res, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.ProtoMajor != 1 {
		t.Fatalf("protocol: got %s; want HTTP/1.x", res.Proto)
	}
	if ct := res.Header.Get("Content-Type"); ct != "application/grpc-web+proto" {
		t.Errorf("Content-Type: got %q; want application/grpc-web+proto", ct)
	}
	if got := res.Header.Get("X-Header"); got != "h1" {
		t.Errorf("header metadata: got %q; want h1", got)
	}
	raw, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	var msgs [][]byte
	var trailer string
	for len(raw) > 0 {
		if len(raw) < 5 {
			t.Fatalf("truncated frame % x", raw)
		}
		n := int(binary.BigEndian.Uint32(raw[1:5]))
		if n > len(raw)-5 {
			t.Fatalf("frame length %d beyond body", n)
		}
		if raw[0]&0x80 != 0 {
			trailer = string(raw[5 : 5+n])
		} else {
			msgs = append(msgs, raw[5:5+n])
		}
		raw = raw[5+n:]
	}
	if len(msgs) != 1 {
		t.Fatalf("messages: got %d; want 1", len(msgs))
	}
	var out testpb.SimpleResponse
	if err := proto.Unmarshal(msgs[0], &out); err != nil {
		t.Fatal(err)
	}
	if got := string(out.GetPayload().GetBody()); got != "echo:web" {
		t.Errorf("payload: got %q; want echo:web", got)
	}
	for _, want := range []string{"grpc-status: 0\r\n", "x-trailer: t1\r\n"} {
		if !strings.Contains(trailer, want) {
			t.Errorf("trailer frame %q: missing %q", trailer, want)
		}
	}
}

func TestGRPCWebErrorOverHTTP1(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for _, tc := range []struct {
		name, host, path, want string
	}{
		{"no route", "h2c.test", "/other.Service/M", "12"},
		{"upstream down", "down.test", "/grpc.testing.TestService/UnaryCall", "14"},
	} {
		req, _ := http.NewRequest("POST", "http://"+e.gwAddr+tc.path, bytes.NewReader(grpcFrame(t, &testpb.SimpleRequest{})))
		req.Host = tc.host
		req.Header.Set("Content-Type", "application/grpc-web-text")
		res, err := (&http.Client{Timeout: 20 * time.Second}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if got := res.Header.Get("Grpc-Status"); got != tc.want {
			t.Errorf("%s: grpc-status got %q; want %q", tc.name, got, tc.want)
		}
		if got := res.Header.Get("Content-Type"); !strings.HasPrefix(got, "application/grpc-web-text") {
			t.Errorf("%s: Content-Type got %q; want application/grpc-web-text", tc.name, got)
		}
	}
}

// gRPC-Web text (base64) server streaming over HTTP/1.1: every message and
// the trailer frame arrive, each flushed chunk decodable on its own.
func TestGRPCWebTextStreaming(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	req := &testpb.StreamingOutputCallRequest{ResponseParameters: []*testpb.ResponseParameters{{Size: 1}, {Size: 2000}, {Size: 5}}}
	enc := base64.StdEncoding.EncodeToString(grpcFrame(t, req))
	hr, _ := http.NewRequest("POST", "http://"+e.gwAddr+"/grpc.testing.TestService/StreamingOutputCall", strings.NewReader(enc))
	hr.Host = "tls.test"
	hr.Header.Set("Content-Type", "application/grpc-web-text")
	hr.Header.Set("Accept", "application/grpc-web-text")
	res, err := (&http.Client{Timeout: 20 * time.Second}).Do(hr)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if ct := res.Header.Get("Content-Type"); ct != "application/grpc-web-text" {
		t.Errorf("Content-Type: got %q; want application/grpc-web-text", ct)
	}
	text, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	if len(text)%4 != 0 {
		t.Fatalf("base64 body of %d characters: want whole 4-character groups", len(text))
	}
	var raw []byte
	for i := 0; i < len(text); i += 4 {
		d, err := base64.StdEncoding.DecodeString(string(text[i : i+4]))
		if err != nil {
			t.Fatalf("group %q: %v", text[i:i+4], err)
		}
		raw = append(raw, d...)
	}
	var sizes []int
	var trailer string
	for len(raw) > 0 {
		if len(raw) < 5 {
			t.Fatalf("truncated frame % x", raw)
		}
		n := int(binary.BigEndian.Uint32(raw[1:5]))
		if n > len(raw)-5 {
			t.Fatalf("frame length %d beyond body", n)
		}
		if raw[0]&0x80 != 0 {
			trailer = string(raw[5 : 5+n])
		} else {
			var m testpb.StreamingOutputCallResponse
			if err := proto.Unmarshal(raw[5:5+n], &m); err != nil {
				t.Fatal(err)
			}
			sizes = append(sizes, len(m.GetPayload().GetBody()))
		}
		raw = raw[5+n:]
	}
	if fmt.Sprint(sizes) != "[1 2000 5]" {
		t.Errorf("message sizes: got %v; want [1 2000 5]", sizes)
	}
	for _, want := range []string{"grpc-status: 0\r\n", "x-stream-trailer: done\r\n"} {
		if !strings.Contains(trailer, want) {
			t.Errorf("trailer frame %q: missing %q", trailer, want)
		}
	}
}
