package problem

import (
	"net/http/httptest"
	"testing"
)

func TestWriteGRPC(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name        string
		contentType string
		p           Problem
		wantStatus  string
		wantMessage string
	}{
		{"no route", "application/grpc", Problem{Code: NoRoute, RequestID: "r1"}, "12", "No route matches the request"},
		{"proto codec", "application/grpc+proto", Problem{Code: Unauthorized}, "16", "Authentication required"},
		{"params", "application/grpc;charset=x", Problem{Code: Forbidden}, "7", "Forbidden"},
		{"rate limited", "application/grpc", Problem{Code: RateLimited}, "8", "Too many requests"},
		{"body too large", "application/grpc", Problem{Code: BodyTooLarge}, "8", "Request body too large"},
		{"timeout", "application/grpc", Problem{Code: UpstreamTimeout}, "4", "Upstream timed out"},
		{"unavailable 503", "application/grpc", Problem{Code: UpstreamUnavailable, Status: 503, Detail: "down"}, "14", "Upstream unavailable: down"},
		{"bad gateway", "application/grpc", Problem{Code: BadGateway}, "14", "Bad gateway"},
		{"bad request", "application/grpc", Problem{Code: BadRequest, Detail: "100% wrong\n"}, "13", "Bad request: 100%25 wrong%0A"},
		{"unknown code", "application/grpc", Problem{Code: "whatever"}, "2", "Error"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			w := httptest.NewRecorder()
			r := httptest.NewRequest("POST", "/pkg.Svc/Method", nil)
			r.Header.Set("Content-Type", tc.contentType)
			w.Header().Set("Retry-After", "1")
			Write(w, r, tc.p)
			if w.Code != 200 {
				t.Errorf("status: got %d; want 200", w.Code)
			}
			h := w.Header()
			if got := h.Get("Content-Type"); got != "application/grpc" {
				t.Errorf("Content-Type: got %q; want application/grpc", got)
			}
			if got := h.Get("Grpc-Status"); got != tc.wantStatus {
				t.Errorf("grpc-status: got %q; want %q", got, tc.wantStatus)
			}
			if got := h.Get("Grpc-Message"); got != tc.wantMessage {
				t.Errorf("grpc-message: got %q; want %q", got, tc.wantMessage)
			}
			if got := h.Get("Portunus-Request-Id"); got != tc.p.RequestID {
				t.Errorf("portunus-request-id: got %q; want %q", got, tc.p.RequestID)
			}
			if got := h.Get("Retry-After"); got != "1" {
				t.Errorf("Retry-After: got %q; want it kept", got)
			}
			if w.Body.Len() != 0 {
				t.Errorf("body: got %q; want none (Trailers-Only)", w.Body.String())
			}
		})
	}
}

func TestWriteGRPCWeb(t *testing.T) {
	t.Parallel()
	for _, ct := range []string{"application/grpc-web", "application/grpc-web+proto", "application/grpc-web-text"} {
		w := httptest.NewRecorder()
		r := httptest.NewRequest("POST", "/", nil)
		r.Header.Set("Content-Type", ct)
		Write(w, r, Problem{Code: NoRoute})
		if got := w.Header().Get("Content-Type"); got != ct {
			t.Errorf("Content-Type %q: got answer %q; want %q", ct, got, ct)
		}
		if got := w.Header().Get("Grpc-Status"); got != "12" {
			t.Errorf("Content-Type %q: got grpc-status %q; want 12", ct, got)
		}
	}
}

func TestNotGRPC(t *testing.T) {
	t.Parallel()
	for _, ct := range []string{"application/grpcx", "application/grpc-webx", "text/plain", "application/json", ""} {
		w := httptest.NewRecorder()
		r := httptest.NewRequest("POST", "/", nil)
		r.Header.Set("Content-Type", ct)
		Write(w, r, Problem{Code: NoRoute})
		if got := w.Header().Get("Content-Type"); got != "application/problem+json" {
			t.Errorf("Content-Type %q: got answer %q; want application/problem+json", ct, got)
		}
	}
}

func TestGRPCMessageRoundTrip(t *testing.T) {
	t.Parallel()
	cases := []struct{ in, enc string }{
		{"plain text", "plain text"},
		{"50%", "50%25"},
		{"héllo", "h%C3%A9llo"},
		{"tab\tnl\n", "tab%09nl%0A"},
		{"", ""},
	}
	for _, c := range cases {
		if got := EncodeGRPCMessage(c.in); got != c.enc {
			t.Errorf("EncodeGRPCMessage(%q): got %q; want %q", c.in, got, c.enc)
		}
		if got := DecodeGRPCMessage(c.enc); got != c.in {
			t.Errorf("DecodeGRPCMessage(%q): got %q; want %q", c.enc, got, c.in)
		}
	}
	// Invalid escapes are kept verbatim.
	if got := DecodeGRPCMessage("a%zzb%4"); got != "a%zzb%4" {
		t.Errorf("DecodeGRPCMessage(invalid): got %q; want it unchanged", got)
	}
}

func FuzzGRPCMessage(f *testing.F) {
	for _, s := range []string{"", "ok", "100%", "\x00\xff", "é%41", "%%%"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		enc := EncodeGRPCMessage(s)
		for i := 0; i < len(enc); i++ {
			if c := enc[i]; c < 0x20 || c > 0x7e {
				t.Fatalf("EncodeGRPCMessage(%q) = %q: byte %#x is not printable ASCII", s, enc, c)
			}
		}
		if dec := DecodeGRPCMessage(enc); dec != s {
			t.Fatalf("round trip of %q: got %q", s, dec)
		}
	})
}
