package grpcweb

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/portunus-gw/portunus/internal/pipeline"
	"github.com/portunus-gw/portunus/internal/problem"
)

// frame returns a gRPC data frame holding msg.
func frame(msg string) []byte {
	b := make([]byte, 5, 5+len(msg))
	binary.BigEndian.PutUint32(b[1:], uint32(len(msg)))
	return append(b, msg...)
}

// fakeGRPC is the upstream side as the chain presents it: it checks the
// translated request and answers like the proxy forwarding a gRPC server.
type seen struct {
	contentType, te, body string
	contentLength         int64
}

func fakeGRPC(got *seen, mode string) pipeline.Handler {
	return func(w http.ResponseWriter, r *http.Request, s *pipeline.State) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			problem.Write(w, r, problem.Problem{Code: problem.BadRequest, Detail: "unreadable"})
			return
		}
		*got = seen{r.Header.Get("Content-Type"), r.Header.Get("Te"), string(body), r.ContentLength}
		switch mode {
		case "error":
			problem.Write(w, r, problem.Problem{Code: problem.Forbidden, Detail: "no"})
			return
		case "plain":
			w.Header().Set("Content-Type", "text/plain")
			_, _ = io.WriteString(w, "plain")
			return
		}
		w.Header().Set("Content-Type", "application/grpc+proto")
		w.Header().Set("Trailer", "Grpc-Status")
		_, _ = w.Write(frame("one"))
		http.NewResponseController(w).Flush()
		_, _ = w.Write(frame("two!"))
		w.Header().Set("Grpc-Status", "0")
		w.Header().Set(http.TrailerPrefix+"Grpc-Message", "fine")
		w.Header().Set(http.TrailerPrefix+"X-Custom-Bin", "YWJj")
	}
}

// parseFrames splits a gRPC-Web body into data messages and the trailer
// frame's text.
func parseFrames(t *testing.T, b []byte) (msgs []string, trailer string) {
	t.Helper()
	for len(b) > 0 {
		if len(b) < 5 {
			t.Fatalf("truncated frame header % x", b)
		}
		n := binary.BigEndian.Uint32(b[1:5])
		if int(n) > len(b)-5 {
			t.Fatalf("frame length %d exceeds the %d bytes left", n, len(b)-5)
		}
		payload := string(b[5 : 5+n])
		if b[0]&trailerBit != 0 {
			trailer = payload
		} else {
			msgs = append(msgs, payload)
		}
		b = b[5+n:]
	}
	return msgs, trailer
}

// decodeGroups decodes base64 made of independently padded 4-char groups.
func decodeGroups(t *testing.T, s string) []byte {
	t.Helper()
	if len(s)%4 != 0 {
		t.Fatalf("base64 body length %d is not a multiple of 4", len(s))
	}
	var out []byte
	for i := 0; i < len(s); i += 4 {
		d, err := base64.StdEncoding.DecodeString(s[i : i+4])
		if err != nil {
			t.Fatalf("base64 group %q: %v", s[i:i+4], err)
		}
		out = append(out, d...)
	}
	return out
}

func TestGRPCWeb(t *testing.T) {
	t.Parallel()
	reqMsg := string(frame("hello"))
	cases := []struct {
		name        string
		contentType string
		body        string
		mode        string
		wantUpCT    string // Content-Type the upstream saw; "" = not called
		wantCT      string
		wantMsgs    []string
		wantTrailer string
		wantStatus  string // grpc-status header (Trailers-Only)
	}{
		{
			name: "binary", contentType: "application/grpc-web+proto", body: reqMsg,
			wantUpCT: "application/grpc+proto", wantCT: "application/grpc-web+proto",
			wantMsgs: []string{"one", "two!"}, wantTrailer: "grpc-status: 0\r\ngrpc-message: fine\r\nx-custom-bin: YWJj\r\n",
		},
		{
			name: "text", contentType: "application/grpc-web-text", body: base64.StdEncoding.EncodeToString([]byte(reqMsg)),
			wantUpCT: "application/grpc", wantCT: "application/grpc-web-text+proto",
			wantMsgs: []string{"one", "two!"}, wantTrailer: "grpc-status: 0\r\ngrpc-message: fine\r\nx-custom-bin: YWJj\r\n",
		},
		{
			name: "text with padded chunks", contentType: "application/grpc-web-text+proto",
			body:     base64.StdEncoding.EncodeToString([]byte(reqMsg[:4])) + "\r\n" + base64.StdEncoding.EncodeToString([]byte(reqMsg[4:])),
			wantUpCT: "application/grpc+proto", wantCT: "application/grpc-web-text+proto",
			wantMsgs: []string{"one", "two!"}, wantTrailer: "grpc-status: 0\r\ngrpc-message: fine\r\nx-custom-bin: YWJj\r\n",
		},
		{
			name: "error is trailers-only", contentType: "application/grpc-web+proto", body: reqMsg, mode: "error",
			wantUpCT: "application/grpc+proto", wantCT: "application/grpc-web", wantStatus: "7",
		},
		{
			name: "bad base64 is refused", contentType: "application/grpc-web-text", body: "!!!!", mode: "error",
			wantCT: "application/grpc-web-text", wantStatus: "13",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var got seen
			h := pipeline.Chain(fakeGRPC(&got, tc.mode), New())
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				h(w, r, &pipeline.State{})
			}))
			defer srv.Close()
			res, err := http.Post(srv.URL+"/pkg.Svc/M", tc.contentType, strings.NewReader(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			body, err := io.ReadAll(res.Body)
			if err != nil {
				t.Fatal(err)
			}
			if res.StatusCode != 200 {
				t.Errorf("status: got %d; want 200", res.StatusCode)
			}
			if ct := res.Header.Get("Content-Type"); ct != tc.wantCT {
				t.Errorf("Content-Type: got %q; want %q", ct, tc.wantCT)
			}
			if got.contentType != tc.wantUpCT {
				t.Errorf("upstream Content-Type: got %q; want %q", got.contentType, tc.wantUpCT)
			}
			if tc.wantUpCT != "" {
				if got.te != "trailers" {
					t.Errorf("upstream TE: got %q; want trailers", got.te)
				}
				if got.body != reqMsg {
					t.Errorf("upstream body: got %q; want %q", got.body, reqMsg)
				}
			}
			if tc.wantStatus != "" {
				if st := res.Header.Get("Grpc-Status"); st != tc.wantStatus {
					t.Errorf("grpc-status header: got %q; want %q", st, tc.wantStatus)
				}
				if len(body) != 0 {
					t.Errorf("Trailers-Only body: got %q; want none", body)
				}
				return
			}
			if strings.Contains(tc.contentType, "-text") {
				body = decodeGroups(t, string(body))
			}
			msgs, trailer := parseFrames(t, body)
			if strings.Join(msgs, "|") != strings.Join(tc.wantMsgs, "|") {
				t.Errorf("messages: got %q; want %q", msgs, tc.wantMsgs)
			}
			if !sameLines(trailer, tc.wantTrailer) {
				t.Errorf("trailer frame: got %q; want %q (any order)", trailer, tc.wantTrailer)
			}
			if len(res.Trailer) != 0 {
				t.Errorf("HTTP trailers: got %v; want none (they are in the body)", res.Trailer)
			}
		})
	}
}

func sameLines(a, b string) bool {
	la, lb := strings.Split(a, "\r\n"), strings.Split(b, "\r\n")
	if len(la) != len(lb) {
		return false
	}
	seen := map[string]int{}
	for _, l := range la {
		seen[l]++
	}
	for _, l := range lb {
		if seen[l] == 0 {
			return false
		}
		seen[l]--
	}
	return true
}

func TestPassThrough(t *testing.T) {
	t.Parallel()
	for _, ct := range []string{"", "application/grpc", "application/json", "application/grpc-webby"} {
		called := false
		var gotCT string
		h := New()(func(w http.ResponseWriter, r *http.Request, s *pipeline.State) {
			called = true
			gotCT = r.Header.Get("Content-Type")
			_, isWrapped := w.(*responseWriter)
			if isWrapped {
				t.Errorf("Content-Type %q: writer wrapped; want the original", ct)
			}
		})
		r := httptest.NewRequest("POST", "/", nil)
		if ct != "" {
			r.Header.Set("Content-Type", ct)
		}
		h(httptest.NewRecorder(), r, &pipeline.State{})
		if !called || gotCT != ct {
			t.Errorf("Content-Type %q: called %v, saw %q; want called with it unchanged", ct, called, gotCT)
		}
	}
}

func TestTextReader(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, in, want string
		wantErr        bool
	}{
		{"plain", base64.StdEncoding.EncodeToString([]byte("hello world")), "hello world", false},
		{"padded chunks", "aGk=" + "aGk=", "hihi", false},
		{"line breaks", "aGVs\r\nbG8=\n", "hello", false},
		{"truncated", "aGVsb", "hel", true},
		{"invalid", "a*==", "", true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := io.ReadAll(newTextReader(io.NopCloser(strings.NewReader(tc.in))))
			if (err != nil) != tc.wantErr || string(got) != tc.want {
				t.Errorf("got %q, %v; want %q, error %v", got, err, tc.want, tc.wantErr)
			}
		})
	}
}

func FuzzTextReader(f *testing.F) {
	for _, s := range []string{"", "aGk=", "aGk=aGk=", "aGVs\nbG8=", "====", "a"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		// Whatever the input, decoding never panics; and standard
		// base64 of any bytes decodes back to them.
		_, _ = io.ReadAll(newTextReader(io.NopCloser(bytes.NewReader(raw))))
		enc := base64.StdEncoding.EncodeToString(raw)
		got, err := io.ReadAll(newTextReader(io.NopCloser(strings.NewReader(enc))))
		if err != nil || !bytes.Equal(got, raw) {
			t.Fatalf("round trip of % x: got % x, %v", raw, got, err)
		}
	})
}

func TestResponseTextEncoding(t *testing.T) {
	t.Parallel()
	// Writes of every split, with a flush between: the output is always
	// whole padded groups that decode to the input.
	data := []byte("abcdefghij")
	for split := 0; split <= len(data); split++ {
		rec := httptest.NewRecorder()
		rw := &responseWriter{w: rec, webType: ctWebText, text: true}
		_, _ = rw.Write(data[:split])
		rw.Flush()
		_, _ = rw.Write(data[split:])
		_ = rw.flushText()
		if got := decodeGroups(t, rec.Body.String()); !bytes.Equal(got, data) {
			t.Errorf("split %d: decoded %q; want %q", split, got, data)
		}
	}
}

func BenchmarkPassThrough(b *testing.B) {
	h := New()(func(w http.ResponseWriter, r *http.Request, s *pipeline.State) {})
	r := httptest.NewRequest("POST", "/", nil)
	r.Header.Set("Content-Type", "application/json")
	w := httptest.NewRecorder()
	s := &pipeline.State{}
	b.ReportAllocs()
	for b.Loop() {
		h(w, r, s)
	}
}
