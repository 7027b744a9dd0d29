package problem

import (
	"encoding/json"
	"net/http/httptest"
	"testing"
)

func TestWrite(t *testing.T) {
	t.Parallel()
	cases := []struct {
		desc   string
		method string
		p      Problem
		status int
	}{
		{"code status", "GET", Problem{Code: NoRoute, Detail: `no route for "/x" <script>`, RequestID: "r1"}, 404},
		{"status override", "GET", Problem{Code: UpstreamUnavailable, Status: 503, Detail: "all targets down"}, 503},
		{"HEAD has no body", "HEAD", Problem{Code: MethodNotAllowed}, 405},
		{"control characters escaped", "GET", Problem{Code: BadRequest, Detail: "a\nb\x00c\u2028"}, 400},
	}
	for _, tc := range cases {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			w := httptest.NewRecorder()
			Write(w, httptest.NewRequest(tc.method, "/", nil), tc.p)
			if w.Code != tc.status {
				t.Fatalf("status = %d; want %d", w.Code, tc.status)
			}
			if ct := w.Header().Get("Content-Type"); ct != "application/problem+json" {
				t.Errorf("Content-Type = %q", ct)
			}
			if tc.method == "HEAD" {
				if w.Body.Len() != 0 {
					t.Errorf("HEAD body = %q; want none", w.Body)
				}
				return
			}
			var got map[string]any
			if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil {
				t.Fatalf("body is not JSON: %v: %s", err, w.Body)
			}
			if got["type"] != "urn:portunus:problem:"+string(tc.p.Code) || got["title"] != tc.p.Code.Title() || int(got["status"].(float64)) != tc.status {
				t.Errorf("body = %v", got)
			}
			if tc.p.Detail != "" && got["detail"] != tc.p.Detail {
				t.Errorf("detail = %q; want %q", got["detail"], tc.p.Detail)
			}
			if tc.p.RequestID != "" && got["request_id"] != tc.p.RequestID {
				t.Errorf("request_id = %v", got["request_id"])
			}
		})
	}
}
