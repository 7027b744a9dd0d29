package authz

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/portunus-gw/portunus/internal/config"
	"github.com/portunus-gw/portunus/internal/pipeline"
)

func TestAllow(t *testing.T) {
	t.Parallel()
	all := config.Allow{Roles: []string{"admin"}, Consumers: []string{"ci"}, Scopes: []string{"orders:write"}}
	cases := []struct {
		name  string
		allow config.Allow
		state pipeline.State
		want  int
	}{
		{"role", all, pipeline.State{Consumer: "a", AuthMethod: "api_key", Roles: []string{"reader", "admin"}}, 204},
		{"consumer", all, pipeline.State{Consumer: "ci", AuthMethod: "api_key"}, 204},
		{"scope", all, pipeline.State{Consumer: "a", AuthMethod: "jwt:x", Scopes: []string{"orders:write"}}, 204},
		{"none matches", all, pipeline.State{Consumer: "a", AuthMethod: "api_key", Roles: []string{"reader"}, Scopes: []string{"orders:read"}}, 403},
		{"anonymous", all, pipeline.State{}, 403},
		{"role named like a consumer does not count", config.Allow{Consumers: []string{"admin"}}, pipeline.State{Consumer: "x", AuthMethod: "basic", Roles: []string{"admin"}}, 403},
		{"empty allow refuses everyone", config.Allow{}, pipeline.State{Consumer: "a", AuthMethod: "basic", Roles: []string{"admin"}}, 403},
		{"anonymous never matches an empty consumer name", config.Allow{Consumers: []string{""}}, pipeline.State{}, 403},
		{"roles are case-sensitive", all, pipeline.State{Consumer: "a", AuthMethod: "basic", Roles: []string{"Admin"}}, 403},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			called := false
			h := New(tc.allow)(func(w http.ResponseWriter, r *http.Request, s *pipeline.State) {
				called = true
				w.WriteHeader(204)
			})
			w := httptest.NewRecorder()
			s := tc.state
			h(w, httptest.NewRequest("GET", "/", nil), &s)
			if w.Code != tc.want || called != (tc.want == 204) {
				t.Errorf("got %d (next %v); want %d", w.Code, called, tc.want)
			}
			if tc.want == 403 {
				if !strings.Contains(w.Body.String(), "urn:portunus:problem:forbidden") || s.ErrorCode != "forbidden" {
					t.Errorf("403 body %q, ErrorCode %q; want the forbidden problem", w.Body.String(), s.ErrorCode)
				}
			}
		})
	}
}

func BenchmarkAllowRole(b *testing.B) {
	h := New(config.Allow{Roles: []string{"admin", "ops"}})(func(http.ResponseWriter, *http.Request, *pipeline.State) {})
	r := httptest.NewRequest("GET", "/", nil)
	s := pipeline.State{Consumer: "a", AuthMethod: "api_key", Roles: []string{"reader", "ops"}}
	b.ReportAllocs()
	for b.Loop() {
		h(nil, r, &s)
	}
}
