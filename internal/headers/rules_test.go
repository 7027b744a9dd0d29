package headers

import (
	"net/http"
	"reflect"
	"strings"
	"testing"

	"github.com/portunus-gw/portunus/internal/config"
)

func TestCompileRulesErrors(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		cfg     config.HeaderRules
		wantErr string
	}{
		{"bad remove name", config.HeaderRules{Remove: []string{"a b"}}, `"a b"`},
		{"bad set name", config.HeaderRules{Set: map[string]string{"X:Y": "v"}}, `"X:Y"`},
		{"bad template names header", config.HeaderRules{Set: map[string]string{"X-User": "{who}"}}, "X-User"},
		{"ctl in static", config.HeaderRules{Add: map[string]string{"X-A": "a\nb"}}, "X-A"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			_, err := CompileRules(&c.cfg, nil)
			if err == nil || !strings.Contains(err.Error(), c.wantErr) {
				t.Errorf("CompileRules: got error %v; want one mentioning %s", err, c.wantErr)
			}
		})
	}
	if rs, err := CompileRules(nil, nil); rs != nil || err != nil {
		t.Errorf("CompileRules(nil): got %v, %v; want nil, nil", rs, err)
	}
}

func TestApply(t *testing.T) {
	t.Parallel()
	r, s := testRequest()
	rs, err := CompileRules(&config.HeaderRules{
		Remove: []string{"cookie", "x-set-me"},
		Set:    map[string]string{"x-env": "prod", "x-user": "{consumer}", "x-anon": "{header.X-None}", "x-set-me": "new"},
		Add:    map[string]string{"via": "1.1 portunus", "x-roles": "{roles}"},
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	h := http.Header{
		"Cookie":   {"a=b"},
		"X-Env":    {"dev"},
		"X-Anon":   {"stale"},
		"Via":      {"1.1 edge"},
		"X-Set-Me": {"old"},
		"X-Keep":   {"k"},
	}
	rs.Apply(h, r, s)
	want := http.Header{
		"X-Env":    {"prod"},
		"X-User":   {"alice"},
		"Via":      {"1.1 edge", "1.1 portunus"},
		"X-Roles":  {"admin,reader"},
		"X-Set-Me": {"new"},
		"X-Keep":   {"k"},
	}
	if !reflect.DeepEqual(h, want) {
		t.Errorf("Apply: got %v; want %v", h, want)
	}
	var nilRules *Rules
	nilRules.Apply(h, r, s) // must not panic
	if !nilRules.Empty() {
		t.Errorf("nil Rules Empty: got false; want true")
	}
}

func TestApplyStaticNoAlloc(t *testing.T) {
	r, s := testRequest()
	rs, err := CompileRules(&config.HeaderRules{
		Remove: []string{"Server"},
		Set:    map[string]string{"X-Env": "prod", "X-Route": "{route}"},
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	h := http.Header{"Server": {"x"}, "X-Env": {"dev"}, "X-Route": {"old"}}
	allocs := testing.AllocsPerRun(100, func() { rs.Apply(h, r, s) })
	// The dynamic single-placeholder value needs only its []string.
	if allocs > 1 {
		t.Errorf("Apply allocations: got %v; want at most 1", allocs)
	}
}

func BenchmarkRulesApply(b *testing.B) {
	r, s := testRequest()
	rs, err := CompileRules(&config.HeaderRules{
		Remove: []string{"Cookie"},
		Set:    map[string]string{"X-Env": "prod", "X-User": "{consumer}"},
		Add:    map[string]string{"Via": "1.1 portunus"},
	}, nil)
	if err != nil {
		b.Fatal(err)
	}
	h := make(http.Header, 8)
	b.ReportAllocs()
	for b.Loop() {
		clear(h)
		rs.Apply(h, r, s)
	}
}
