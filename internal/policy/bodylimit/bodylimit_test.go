package bodylimit

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/portunus-gw/portunus/internal/pipeline"
)

func TestBodyLimit(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name        string
		max         int64
		body        string
		length      int64 // -1: unknown (chunked)
		wantStatus  int
		wantNext    bool
		wantReadErr bool // next sees *http.MaxBytesError
		wantRead    int
	}{
		{name: "length over", max: 10, body: strings.Repeat("x", 11), length: 11, wantStatus: 413},
		{name: "length at limit", max: 10, body: strings.Repeat("x", 10), length: 10, wantStatus: 200, wantNext: true, wantRead: 10},
		{name: "chunked over", max: 10, body: strings.Repeat("x", 50), length: -1, wantStatus: 200, wantNext: true, wantReadErr: true, wantRead: 10},
		{name: "chunked within", max: 10, body: "abc", length: -1, wantStatus: 200, wantNext: true, wantRead: 3},
		{name: "no limit", max: 0, body: strings.Repeat("x", 50), length: 50, wantStatus: 200, wantNext: true, wantRead: 50},
		{name: "empty body", max: 10, body: "", length: 0, wantStatus: 200, wantNext: true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			called := false
			var readErr error
			read := 0
			next := func(w http.ResponseWriter, r *http.Request, s *pipeline.State) {
				called = true
				b, err := io.ReadAll(r.Body)
				read, readErr = len(b), err
				w.WriteHeader(200)
			}
			h := New(c.max)(next)
			r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(c.body))
			r.ContentLength = c.length
			if c.length == 0 {
				r.Body = http.NoBody
			}
			w := httptest.NewRecorder()
			s := &pipeline.State{RequestID: "rid"}
			h(w, r, s)
			if w.Code != c.wantStatus {
				t.Errorf("status: got %d; want %d", w.Code, c.wantStatus)
			}
			if called != c.wantNext {
				t.Errorf("next called: got %v; want %v", called, c.wantNext)
			}
			var mbe *http.MaxBytesError
			if got := errors.As(readErr, &mbe); got != c.wantReadErr {
				t.Errorf("MaxBytesError while reading: got %v (%v); want %v", got, readErr, c.wantReadErr)
			}
			if read != c.wantRead {
				t.Errorf("bytes read: got %d; want %d", read, c.wantRead)
			}
			if c.wantStatus == 413 {
				if got := w.Header().Get("Connection"); got != "close" {
					t.Errorf("Connection: got %q; want close", got)
				}
				if got := w.Header().Get("Content-Type"); got != "application/problem+json" {
					t.Errorf("Content-Type: got %q; want application/problem+json", got)
				}
				if !strings.Contains(w.Body.String(), "body-too-large") || !strings.Contains(w.Body.String(), `"request_id":"rid"`) {
					t.Errorf("body: got %s; want a body-too-large problem with request_id", w.Body.String())
				}
				if s.ErrorCode != "body-too-large" {
					t.Errorf("ErrorCode: got %q; want body-too-large", s.ErrorCode)
				}
			}
		})
	}
}

func BenchmarkBodyLimit(b *testing.B) {
	h := New(1 << 20)(func(w http.ResponseWriter, r *http.Request, s *pipeline.State) {})
	r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader("x"))
	s := &pipeline.State{}
	b.ReportAllocs()
	for b.Loop() {
		h(nil, r, s)
	}
}
