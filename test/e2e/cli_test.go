package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

func TestCLIExitCodes(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	invalid := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(invalid, []byte("listeners: [{ address: \"127.0.0.1:0\" }]\nroutes:\n  - match: { pth: /x }\n    upstream: nope\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		desc   string
		args   []string
		code   int
		stdout string // regexp
		stderr string // regexp
	}{
		{"no command", nil, 2, "", "Usage:"},
		{"unknown command", []string{"frobnicate"}, 2, "", `unknown command "frobnicate"`},
		{"version", []string{"version"}, 0, `^portunus \S+ \(commit \S+, go1\.\d+`, ""},
		{"hash-key", []string{"hash-key", "alice-dev-key"}, 0, `^sha256:[0-9a-f]{64}\n$`, ""},
		{"hash-key without key", []string{"hash-key"}, 2, "", "usage"},
		{"validate example", []string{"validate", "-c", "examples/quickstart.yaml"}, 0, "valid", ""},
		{"validate missing file", []string{"validate", "-c", filepath.Join(dir, "missing.yaml")}, 2, "", "missing.yaml"},
		{"validate invalid", []string{"validate", "-c", invalid}, 1, "", `(?m)^` + regexp.QuoteMeta(invalid) + `:3:\d+: routes\[0\]\.match(\.pth)?: .*pth`},
		{"validate extra argument", []string{"validate", "-c", invalid, "extra"}, 2, "", "unexpected argument"},
		{"run invalid", []string{"run", "-c", invalid}, 1, "", regexp.QuoteMeta(invalid) + `:\d+:\d+: `},
		{"run missing file", []string{"run", "-c", filepath.Join(dir, "missing.yaml")}, 2, "", "missing.yaml"},
		{"explain matched", []string{"explain", "-c", "examples/quickstart.yaml", "GET", "http://localhost/v1/users/7"}, 0, `route:\s+users`, ""},
		{"explain no route", []string{"explain", "-c", "examples/quickstart.yaml", "GET", "http://localhost/nowhere"}, 1, `no-route`, ""},
		{"explain 405", []string{"explain", "-c", "examples/quickstart.yaml", "DELETE", "http://localhost/v1/users/7"}, 1, `method-not-allowed`, ""},
		{"explain usage", []string{"explain", "-c", "examples/quickstart.yaml", "GET"}, 2, "", "usage"},
	}
	for _, tc := range cases {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			r := portunus(t, tc.args...)
			if r.code != tc.code {
				t.Fatalf("exit code = %d; want %d\nstdout: %s\nstderr: %s", r.code, tc.code, r.stdout, r.stderr)
			}
			if tc.stdout != "" && !regexp.MustCompile(tc.stdout).MatchString(r.stdout) {
				t.Errorf("stdout %q does not match %q", r.stdout, tc.stdout)
			}
			if tc.stderr != "" && !regexp.MustCompile(tc.stderr).MatchString(r.stderr) {
				t.Errorf("stderr %q does not match %q", r.stderr, tc.stderr)
			}
		})
	}
}

// TestExamplesValidate: every shipped example passes `portunus validate`
// (the config package's tests check them against the JSON Schema too).
func TestExamplesValidate(t *testing.T) {
	t.Parallel()
	files, err := filepath.Glob(filepath.Join(repoRoot, "examples", "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no examples found: %v", err)
	}
	for _, f := range files {
		r := portunus(t, "validate", "-c", f)
		if r.code != 0 {
			t.Errorf("portunus validate -c %s: exit %d\n%s", f, r.code, r.stderr)
		}
	}
}

// TestValidateReportsEveryProblem checks the error format end to end: one
// line per problem, FILE:LINE:COL: PATH: message, all at once.
func TestValidateReportsEveryProblem(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "many.yaml")
	cfg := `listeners:
  - address: "nonsense"
upstreams:
  - name: a
    targets: [{ url: "ftp://x" }]
routes:
  - match: { path: no-slash }
    upstream: a
  - match: { path_prefix: /x, methods: [get] }
    upstream: missing
  - match: { path_regex: "(" }
    respond: { status: 99 }
`
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	r := portunus(t, "validate", "-c", path)
	if r.code != 1 {
		t.Fatalf("exit %d; want 1: %s", r.code, r.stderr)
	}
	lines := strings.Split(strings.TrimSpace(r.stderr), "\n")
	re := regexp.MustCompile(`^` + regexp.QuoteMeta(path) + `:(\d+):(\d+): (\S+): .+`)
	wantLines := map[string]bool{"2": false, "5": false, "7": false, "9": false, "10": false, "11": false, "12": false}
	for _, l := range lines {
		m := re.FindStringSubmatch(l)
		if m == nil {
			t.Errorf("line not in FILE:LINE:COL: PATH: message form: %q", l)
			continue
		}
		if _, ok := wantLines[m[1]]; ok {
			wantLines[m[1]] = true
		}
	}
	for line, seen := range wantLines {
		if !seen {
			t.Errorf("no error reported on line %s; got:\n%s", line, r.stderr)
		}
	}
}

func TestExplainJSON(t *testing.T) {
	t.Parallel()
	r := portunus(t, "explain", "-c", "examples/quickstart.yaml", "--json", "GET", "http://localhost/api/hello?x=1", "-H", "X-Request-Id: abc", "-H", "Cookie: secret=1")
	if r.code != 0 {
		t.Fatalf("exit %d: %s %s", r.code, r.stdout, r.stderr)
	}
	var ex struct {
		Outcome string `json:"outcome"`
		Route   string `json:"route"`
		Action  struct {
			Kind            string `json:"kind"`
			Upstream        string `json:"upstream"`
			UpstreamRequest struct {
				URL     string              `json:"url"`
				Headers map[string][]string `json:"headers"`
			} `json:"upstream_request"`
		} `json:"action"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &ex); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, r.stdout)
	}
	if ex.Outcome != "matched" || ex.Route != "api" || ex.Action.Kind != "proxy" || ex.Action.Upstream != "echo" {
		t.Errorf("explain = %+v", ex)
	}
	if u := ex.Action.UpstreamRequest.URL; !strings.HasSuffix(u, "/hello?x=1") {
		t.Errorf("upstream URL = %q; want the /api prefix stripped and the query kept", u)
	}
	if _, ok := ex.Action.UpstreamRequest.Headers["Cookie"]; ok {
		t.Error("Cookie should be removed by the route's request_headers rule")
	}
	if got := ex.Action.UpstreamRequest.Headers["X-Env"]; len(got) != 1 || got[0] != "demo" {
		t.Errorf("X-Env = %v; want [demo]", got)
	}
}
