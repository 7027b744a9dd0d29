package upstream

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/portunus-gw/portunus/internal/problem"
)

// grpcHealthPath is the gRPC health checking protocol's method.
const grpcHealthPath = "/grpc.health.v1.Health/Check"

// maxHealthResponse bounds what a health check reads: the answer is a few
// bytes; anything longer is not a health response.
const maxHealthResponse = 4 << 10

// Health statuses of grpc.health.v1.HealthCheckResponse.ServingStatus.
const (
	grpcHealthUnknown        = 0
	grpcHealthServing        = 1
	grpcHealthNotServing     = 2
	grpcHealthServiceUnknown = 3
)

var grpcHealthNames = [...]string{"UNKNOWN", "SERVING", "NOT_SERVING", "SERVICE_UNKNOWN"}

// GRPCHealthError is a health check answered with something other than
// SERVING: either a gRPC error status (e.g. 5 NOT_FOUND for a service the
// server does not know, 12 UNIMPLEMENTED when it has no health service) or
// a serving status other than SERVING.
type GRPCHealthError struct {
	// GRPCStatus is the call's grpc-status (0 when the call succeeded).
	GRPCStatus int
	// Message is the call's grpc-message, decoded.
	Message string
	// ServingStatus is the HealthCheckResponse status when the call
	// succeeded (2 NOT_SERVING, ...).
	ServingStatus int
}

func (e *GRPCHealthError) Error() string {
	if e.GRPCStatus != 0 {
		return fmt.Sprintf("grpc health: call failed with status %d: %s", e.GRPCStatus, e.Message)
	}
	name := "status " + strconv.Itoa(e.ServingStatus)
	if e.ServingStatus >= 0 && e.ServingStatus < len(grpcHealthNames) {
		name = grpcHealthNames[e.ServingStatus]
	}
	return "grpc health: " + name
}

// CheckGRPCHealth calls grpc.health.v1.Health/Check for service ("" =
// the server as a whole) on target over rt, which must speak HTTP/2 to it
// (a pool with protocol h2c, or auto/h2c to an https target). It returns
// nil when the answer is SERVING; a *GRPCHealthError when the server
// answered otherwise; another error when the call failed. ctx bounds the
// call.
//
// The two messages are tiny, so they are encoded by hand rather than
// pulling protobuf into the gateway: the request is field 1 (service,
// string), the response field 1 (status, enum).
func CheckGRPCHealth(ctx context.Context, rt http.RoundTripper, target *url.URL, service string) error {
	if target == nil {
		return errors.New("grpc health: no target")
	}
	u := &url.URL{Scheme: target.Scheme, Host: target.Host, Path: strings.TrimRight(target.Path, "/") + grpcHealthPath}
	msg := encodeHealthRequest(service)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), bytes.NewReader(msg))
	if err != nil {
		return fmt.Errorf("grpc health: %w", err)
	}
	req.ContentLength = int64(len(msg))
	req.Header = http.Header{
		"Content-Type": {"application/grpc"},
		"Te":           {"trailers"},
		"User-Agent":   {"portunus-health"},
	}
	res, err := rt.RoundTrip(req)
	if err != nil {
		return fmt.Errorf("grpc health: %w", err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("grpc health: HTTP status %d", res.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(res.Body, maxHealthResponse+1))
	if err != nil {
		return fmt.Errorf("grpc health: reading response: %w", err)
	}
	if len(body) > maxHealthResponse {
		return errors.New("grpc health: response too large")
	}
	// Trailers-Only responses carry the status in the headers.
	st := res.Trailer.Get("Grpc-Status")
	gm := res.Trailer.Get("Grpc-Message")
	if st == "" {
		st = res.Header.Get("Grpc-Status")
		gm = res.Header.Get("Grpc-Message")
	}
	if st == "" {
		return errors.New("grpc health: response has no grpc-status")
	}
	code, err := strconv.Atoi(st)
	if err != nil {
		return fmt.Errorf("grpc health: invalid grpc-status %q", st)
	}
	if code != 0 {
		return &GRPCHealthError{GRPCStatus: code, Message: problem.DecodeGRPCMessage(gm)}
	}
	status, err := decodeHealthResponse(body)
	if err != nil {
		return err
	}
	if status != grpcHealthServing {
		return &GRPCHealthError{ServingStatus: status}
	}
	return nil
}

// encodeHealthRequest frames a HealthCheckRequest{service}.
func encodeHealthRequest(service string) []byte {
	var pb []byte
	if service != "" {
		pb = append(pb, 0x0a) // field 1, wire type 2 (length-delimited)
		pb = binary.AppendUvarint(pb, uint64(len(service)))
		pb = append(pb, service...)
	}
	out := make([]byte, 5, 5+len(pb))
	binary.BigEndian.PutUint32(out[1:], uint32(len(pb))) // out[0] = 0: not compressed
	return append(out, pb...)
}

// decodeHealthResponse reads the one framed HealthCheckResponse in body
// and returns its status field (0 when absent, as protobuf defaults).
func decodeHealthResponse(body []byte) (int, error) {
	if len(body) < 5 {
		return 0, errors.New("grpc health: response has no message")
	}
	if body[0] != 0 {
		return 0, errors.New("grpc health: compressed response not supported")
	}
	n := binary.BigEndian.Uint32(body[1:5])
	if uint64(n) != uint64(len(body)-5) {
		return 0, errors.New("grpc health: malformed response frame")
	}
	pb := body[5:]
	status := grpcHealthUnknown
	for len(pb) > 0 {
		key, k := binary.Uvarint(pb)
		if k <= 0 {
			return 0, errors.New("grpc health: malformed response message")
		}
		pb = pb[k:]
		field, wire := key>>3, key&7
		switch wire {
		case 0: // varint
			v, k := binary.Uvarint(pb)
			if k <= 0 {
				return 0, errors.New("grpc health: malformed response message")
			}
			pb = pb[k:]
			if field == 1 {
				status = int(int32(v))
			}
		case 2: // length-delimited: skip unknown fields
			l, k := binary.Uvarint(pb)
			if k <= 0 || l > uint64(len(pb)-k) {
				return 0, errors.New("grpc health: malformed response message")
			}
			pb = pb[k+int(l):]
		case 1:
			if len(pb) < 8 {
				return 0, errors.New("grpc health: malformed response message")
			}
			pb = pb[8:]
		case 5:
			if len(pb) < 4 {
				return 0, errors.New("grpc health: malformed response message")
			}
			pb = pb[4:]
		default:
			return 0, errors.New("grpc health: malformed response message")
		}
	}
	return status, nil
}
