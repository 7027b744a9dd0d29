package auth

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/portunus-gw/portunus/internal/config"
	"github.com/portunus-gw/portunus/internal/consumers"
)

func TestMiddlewareOrderAndOutcome(t *testing.T) {
	t.Parallel()
	ok := func(name string) *fake {
		return &fake{name: name, challenge: "C " + name, id: &Identity{Consumer: name + "-user"}}
	}
	none := func(name, ch string) *fake { return &fake{name: name, challenge: ch, err: ErrNoCredentials} }
	bad := func(name string) *fake {
		return &fake{name: name, challenge: "C " + name, err: errors.New("bad signature")}
	}
	cases := []struct {
		name       string
		methods    []*fake
		status     int
		consumer   string
		method     string
		authError  string
		challenges []string
		calls      []int
	}{
		{"first method with credentials wins", []*fake{none("a", "C a"), ok("b"), ok("c")}, 204, "b-user", "b", "", nil, []int{1, 1, 0}},
		{"invalid credential is 401 even if a later method succeeds", []*fake{bad("a"), ok("b")}, 401, "", "", "a: bad signature", []string{"C a", "C b"}, []int{1, 0}},
		{"no credentials anywhere", []*fake{none("a", "C a"), none("m", ""), none("c", "C c")}, 401, "", "", "no credentials", []string{"C a", "C c"}, []int{1, 1, 1}},
		{"no challenge at all", []*fake{none("m", "")}, 401, "", "", "no credentials", nil, []int{1}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ms := make([]Method, len(tc.methods))
			for i, m := range tc.methods {
				ms[i] = m
			}
			w, sn, s := run(New(Options{Methods: ms}), httptest.NewRequest("GET", "/", nil))
			if w.Code != tc.status {
				t.Errorf("status = %d; want %d", w.Code, tc.status)
			}
			if sn.called != (tc.status == 204) {
				t.Errorf("next called = %v; want %v", sn.called, tc.status == 204)
			}
			if s.Consumer != tc.consumer || s.AuthMethod != tc.method || s.AuthError != tc.authError {
				t.Errorf("state = (%q, %q, %q); want (%q, %q, %q)", s.Consumer, s.AuthMethod, s.AuthError, tc.consumer, tc.method, tc.authError)
			}
			if got := w.Header().Values("WWW-Authenticate"); !slices.Equal(got, tc.challenges) {
				t.Errorf("WWW-Authenticate = %q; want %q", got, tc.challenges)
			}
			if tc.status == 401 {
				if ct := w.Header().Get("Content-Type"); ct != "application/problem+json" || !strings.Contains(w.Body.String(), "unauthorized") {
					t.Errorf("401 body = %s %q; want problem+json unauthorized", ct, w.Body.String())
				}
				if s.ErrorCode != "unauthorized" {
					t.Errorf("ErrorCode = %q; want unauthorized", s.ErrorCode)
				}
			}
			for i, m := range tc.methods {
				if m.calls != tc.calls[i] {
					t.Errorf("method %s called %d times; want %d", m.name, m.calls, tc.calls[i])
				}
			}
		})
	}
}

func TestMiddlewareHide(t *testing.T) {
	t.Parallel()
	for _, hide := range []bool{true, false} {
		f := &fake{name: "a", id: &Identity{Consumer: "x"}}
		run(New(Options{Methods: []Method{f}, HideCredentials: hide}), httptest.NewRequest("GET", "/", nil))
		if f.hidden != hide {
			t.Errorf("HideCredentials %v: Hide called = %v; want %v", hide, f.hidden, hide)
		}
	}
}

func TestMiddlewareDeniedIsRelayed(t *testing.T) {
	t.Parallel()
	d := &Denied{Status: 402, Header: http.Header{"X-Why": {"pay"}}, Body: []byte("no")}
	f := &fake{name: "forward:x", err: d}
	w, sn, s := run(New(Options{Methods: []Method{f, &fake{name: "b", id: &Identity{Consumer: "b"}}}}), httptest.NewRequest("GET", "/", nil))
	if w.Code != 402 || w.Header().Get("X-Why") != "pay" || w.Body.String() != "no" || sn.called {
		t.Errorf("got %d %q %q next=%v; want 402 pay no false", w.Code, w.Header().Get("X-Why"), w.Body.String(), sn.called)
	}
	if s.AuthError != "forward:x: denied" {
		t.Errorf("AuthError = %q; want %q", s.AuthError, "forward:x: denied")
	}
}

func TestMiddlewareRolesMerge(t *testing.T) {
	t.Parallel()
	dir := testDir(t)
	external := []string{"reader", "ext"}
	cases := []struct {
		name  string
		id    Identity
		roles []string
	}{
		{"external identity named like a consumer gains its roles", Identity{Consumer: "carol", Roles: external}, []string{"reader", "ext", "auditor"}},
		{"no duplicates", Identity{Consumer: "bob", Roles: []string{"reader"}}, []string{"reader"}},
		{"unknown name keeps its own roles", Identity{Consumer: "zed", Roles: []string{"x"}}, []string{"x"}},
		{"no roles of its own", Identity{Consumer: "alice"}, []string{"admin"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			id := tc.id
			f := &fake{name: "jwt:x", id: &id}
			_, sn, _ := run(New(Options{Methods: []Method{f}, Consumers: dir}), httptest.NewRequest("GET", "/", nil))
			if !slices.Equal(sn.state.Roles, tc.roles) {
				t.Errorf("roles = %q; want %q", sn.state.Roles, tc.roles)
			}
			if len(sn.state.Roles) != cap(sn.state.Roles) {
				t.Errorf("roles cap %d > len %d: an append could write into shared storage", cap(sn.state.Roles), len(sn.state.Roles))
			}
		})
	}
	if !slices.Equal(external, []string{"reader", "ext"}) {
		t.Errorf("identity roles modified: %q", external)
	}
	if got := dir.ByName("carol").Roles; !slices.Equal(got, []string{"reader", "auditor"}) {
		t.Errorf("consumer roles modified: %q", got)
	}
}

// A config consumer's prebuilt identity skips the merge only against its
// own directory; another directory's consumer of the same name still adds
// its roles.
func TestMiddlewareAPIKeyRolesByDirectory(t *testing.T) {
	t.Parallel()
	dir := testDir(t)
	other, err := consumers.New([]config.Consumer{{Name: "bob", Roles: []string{"reader", "writer"}}})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		dir   *consumers.Directory
		roles []string
	}{
		{"own directory", dir, []string{"reader"}},
		{"other directory", other, []string{"reader", "writer"}},
		{"no directory", nil, []string{"reader"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := httptest.NewRequest("GET", "/", nil)
			r.Header.Set("X-API-Key", "bob-key")
			_, sn, _ := run(New(Options{Methods: []Method{NewAPIKey(config.APIKeySource{}, dir)}, Consumers: tc.dir}), r)
			if !sn.called || sn.state.Consumer != "bob" {
				t.Fatalf("called %v, consumer %q; want bob", sn.called, sn.state.Consumer)
			}
			if !slices.Equal(sn.state.Roles, tc.roles) {
				t.Errorf("roles = %q; want %q", sn.state.Roles, tc.roles)
			}
			if len(sn.state.Roles) != cap(sn.state.Roles) {
				t.Errorf("roles cap %d > len %d: an append could write into shared storage", cap(sn.state.Roles), len(sn.state.Roles))
			}
		})
	}
}

func TestMiddlewareIdentityHeaderReplacesClientCopy(t *testing.T) {
	t.Parallel()
	f := &fake{name: "jwt:x", id: &Identity{Consumer: "x", Scopes: []string{"read"}, Header: http.Header{"X-User-Email": {"x@example.com"}}}}
	r := httptest.NewRequest("GET", "/", nil)
	r.Header.Add("X-User-Email", "spoofed@example.com")
	_, sn, _ := run(New(Options{Methods: []Method{f}}), r)
	if got := sn.header.Values("X-User-Email"); !slices.Equal(got, []string{"x@example.com"}) {
		t.Errorf("X-User-Email = %q; want only the identity's", got)
	}
	if !slices.Equal(sn.state.Scopes, []string{"read"}) {
		t.Errorf("scopes = %q; want [read]", sn.state.Scopes)
	}
}

func TestMiddlewareUnavailableIsNeverAllowed(t *testing.T) {
	t.Parallel()
	for _, grpc := range []bool{false, true} {
		f := &fake{name: "oauth2:idp", err: &Unavailable{Reason: "the token introspection endpoint is unavailable"}}
		next := &fake{name: "b", id: &Identity{Consumer: "b"}}
		r := httptest.NewRequest("POST", "/", nil)
		if grpc {
			r.Header.Set("Content-Type", "application/grpc")
		}
		w, sn, s := run(New(Options{Methods: []Method{f, next}}), r)
		if sn.called || next.calls != 0 {
			t.Fatalf("grpc=%v: the request went on after an unavailable auth service", grpc)
		}
		if w.Header().Get("Retry-After") == "" || s.ErrorCode != "upstream-unavailable" || s.AuthError != "oauth2:idp: service unavailable" {
			t.Errorf("grpc=%v: Retry-After %q ErrorCode %q AuthError %q", grpc, w.Header().Get("Retry-After"), s.ErrorCode, s.AuthError)
		}
		if grpc {
			// gRPC clients get a status they understand: UNAVAILABLE (14).
			if got := w.Header().Get("Grpc-Status"); got != "14" {
				t.Errorf("grpc-status = %q; want 14", got)
			}
		} else if w.Code != 503 || w.Header().Get("Content-Type") != "application/problem+json" {
			t.Errorf("got %d %q; want 503 problem+json", w.Code, w.Header().Get("Content-Type"))
		}
	}
}
