package headers

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"

	"github.com/portunus-gw/portunus/internal/pipeline"
)

func testRequest() (*http.Request, *pipeline.State) {
	r := httptest.NewRequest(http.MethodPost, "http://api.example.com/v1/users/7?id=a%2Fb&q=x+y&bad=%0d%0aX:1&e=", nil)
	r.Header.Set("X-Tenant", "acme")
	r.Header.Set("X-Evil", "a\x01b")
	s := &pipeline.State{
		RequestID: "req-1",
		ClientIP:  netip.MustParseAddr("203.0.113.9"),
		Path:      "/v1/users/7",
		RouteName: "users",
		Consumer:  "alice",
		Roles:     []string{"admin", "reader"},
	}
	s.Params.Add("id", "7")
	s.Params.Add("name", "a%2Fb")
	return r, s
}

func TestCompileErrors(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, src string
	}{
		{"unknown", "{nope}"},
		{"unclosed", "x{consumer"},
		{"empty param", "{param.}"},
		{"bad header name", "{header.a b}"},
		{"unknown dotted", "{cookie.x}"},
		{"empty", "{}"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			if _, err := Compile(c.src, []string{"id"}); err == nil {
				t.Errorf("Compile(%q): got nil error; want an error", c.src)
			}
		})
	}
}

func TestRender(t *testing.T) {
	t.Parallel()
	r, s := testRequest()
	cases := []struct {
		name, src, want string
		static          bool
	}{
		{"literal", "prod", "prod", true},
		{"escaped brace", "{{consumer}", "{consumer}", true},
		{"empty", "", "", true},
		{"consumer", "{consumer}", "alice", false},
		{"roles", "{roles}", "admin,reader", false},
		{"route", "r={route}", "r=users", false},
		{"request id", "{request_id}", "req-1", false},
		{"client ip", "{client_ip}", "203.0.113.9", false},
		{"host", "{host}", "api.example.com", false},
		{"method", "{method}", "POST", false},
		{"path", "{path}", "/v1/users/7", false},
		{"param dotted", "{param.id}", "7", false},
		{"param bare", "u-{id}", "u-7", false},
		{"param escaped kept", "{param.name}", "a%2Fb", false},
		{"missing param", "{param.zzz}", "", false},
		{"header", "{header.x-tenant}", "acme", false},
		{"header ctl dropped", "{header.X-Evil}", "ab", false},
		{"missing header", "[{header.X-None}]", "[]", false},
		{"query decoded", "{query.id}", "a/b", false},
		{"query plus", "{query.q}", "x y", false},
		{"query ctl dropped", "{query.bad}", "X:1", false},
		{"query empty", "<{query.e}>", "<>", false},
		{"query missing", "<{query.none}>", "<>", false},
		{"mixed", "{consumer}@{route}/{id}", "alice@users/7", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			tm, err := Compile(c.src, []string{"id", "name"})
			if err != nil {
				t.Fatalf("Compile(%q): %v", c.src, err)
			}
			if got := string(tm.Render(nil, r, s)); got != c.want {
				t.Errorf("Render(%q): got %q; want %q", c.src, got, c.want)
			}
			if got := tm.renderString(r, s); got != c.want {
				t.Errorf("renderString(%q): got %q; want %q", c.src, got, c.want)
			}
			if got := tm.IsStatic(); got != c.static {
				t.Errorf("IsStatic(%q): got %v; want %v", c.src, got, c.static)
			}
		})
	}
}

func TestRenderPath(t *testing.T) {
	t.Parallel()
	r, s := testRequest()
	s.Consumer = "a b/c?"
	cases := []struct {
		name, src, want string
	}{
		{"param", "/users/{id}", "/users/7"},
		{"escaped param kept", "/files/{name}", "/files/a%2Fb"},
		{"path", "/x{path}", "/x/v1/users/7"},
		{"consumer escaped as segment", "/c/{consumer}", "/c/a%20b%2Fc%3F"},
		{"query escaped as segment", "/q/{query.id}", "/q/a%2Fb"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			tm, err := CompilePath(c.src, []string{"id", "name"})
			if err != nil {
				t.Fatalf("CompilePath(%q): %v", c.src, err)
			}
			if got := string(tm.Render(nil, r, s)); got != c.want {
				t.Errorf("Render(%q): got %q; want %q", c.src, got, c.want)
			}
			if got := tm.renderString(r, s); got != c.want {
				t.Errorf("renderString(%q): got %q; want %q", c.src, got, c.want)
			}
		})
	}
	for _, bad := range []string{"users", "/a?b", "/a#b", "/{nope}"} {
		if _, err := CompilePath(bad, nil); err == nil {
			t.Errorf("CompilePath(%q): got nil error; want an error", bad)
		}
	}
}

func TestRenderNoAlloc(t *testing.T) {
	r, s := testRequest()
	tm, err := Compile("{consumer}:{roles}:{client_ip}:{query.q}:{header.X-Tenant}:{id}", []string{"id"})
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 0, 256)
	allocs := testing.AllocsPerRun(100, func() { buf = tm.Render(buf[:0], r, s) })
	if allocs != 0 {
		t.Errorf("Render allocations: got %v; want 0", allocs)
	}
}

func FuzzCompileRender(f *testing.F) {
	for _, seed := range []string{"", "x", "{consumer}", "{{", "{", "}", "{query.a}", "{header.X-A}{id}", "a{{b}}c", "{param.}"} {
		f.Add(seed, "a=%41&b=+%zz")
	}
	f.Fuzz(func(t *testing.T, src, query string) {
		tm, err := Compile(src, []string{"id"})
		if err != nil {
			return
		}
		r, s := testRequest()
		r.URL.RawQuery = query
		out := tm.Render(nil, r, s)
		for _, c := range out {
			if isCtl(c) {
				t.Fatalf("Render(%q) with query %q: control byte %#x in %q", src, query, c, out)
			}
		}
		if tm.IsStatic() && strings.Contains(src, "{{") == false && string(out) != src {
			t.Fatalf("static Render(%q): got %q; want the source", src, out)
		}
	})
}

func BenchmarkTemplateRender(b *testing.B) {
	r, s := testRequest()
	tm, err := Compile("{consumer}; route={route}; ip={client_ip}; t={header.X-Tenant}", nil)
	if err != nil {
		b.Fatal(err)
	}
	buf := make([]byte, 0, 256)
	b.ReportAllocs()
	for b.Loop() {
		buf = tm.Render(buf[:0], r, s)
	}
}
