package aggregate

import (
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/portunus-gw/portunus/internal/pipeline"
)

// FuzzTemplate: whatever a parameter, query value, consumer or earlier
// answer holds, the rendered call stays on the path the template wrote:
// it parses, its path keeps the template's literal segments, and a value
// never adds a query parameter of its own.
func FuzzTemplate(f *testing.F) {
	for _, s := range []string{"plain", "a/b", "../..", "x?y=1&z", "%2F%00", "#frag", "sp ace", "ü", ""} {
		f.Add(s)
	}
	tmpl, err := compileTemplate("/users/{id}/orgs/{user.org}?q={query.q}&c={consumer}", []string{"id"}, "user")
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, v string) {
		r := httptest.NewRequest("GET", "/?q="+url.QueryEscape(v), nil)
		s := &pipeline.State{Consumer: v}
		s.Params.Add("id", url.PathEscape(v))
		out, err := tmpl.render(r, s, map[string]any{"org": v})
		if err != nil {
			t.Fatalf("render: %v", err)
		}
		u, err := url.Parse(out)
		if err != nil {
			t.Fatalf("rendered %q does not parse: %v", out, err)
		}
		if segs := strings.Split(u.EscapedPath(), "/"); len(segs) != 5 || segs[1] != "users" || segs[3] != "orgs" {
			t.Errorf("rendered path %q left the template's shape", u.EscapedPath())
		}
		q := u.Query()
		if len(q) != 2 || q.Get("q") != v || q.Get("c") != v {
			t.Errorf("rendered query %q: %v; want exactly q and c = %q", u.RawQuery, q, v)
		}
		if u.Fragment != "" {
			t.Errorf("rendered %q has a fragment", out)
		}
	})
}
