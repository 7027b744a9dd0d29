package config

import (
	"errors"
	"flag"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/invalid/*.golden")

// noEnv is an environment where no variable is set.
func noEnv(string) (string, bool) { return "", false }

func mapEnv(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

// mustParse parses doc and fails the test on any error.
func mustParse(t *testing.T, doc string, env func(string) (string, bool)) *Config {
	t.Helper()
	c, err := Parse("test.yaml", []byte(doc), env)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return c
}

// parseErrors parses doc and returns its error lines; it fails the test
// when the document is valid.
func parseErrors(t *testing.T, doc string, env func(string) (string, bool)) []string {
	t.Helper()
	_, err := Parse("test.yaml", []byte(doc), env)
	var list ErrorList
	if !errors.As(err, &list) {
		t.Fatalf("Parse = %v; want an ErrorList", err)
	}
	return strings.Split(list.Error(), "\n")
}

const base = `
listeners: [{address: "127.0.0.1:8080"}]
upstreams: [{name: app, targets: [{url: "http://127.0.0.1:9001"}]}]
`

// TestInvalidGolden checks the exact error lines for each invalid config.
// Regenerate with: go test ./internal/config -run TestInvalidGolden -update
func TestInvalidGolden(t *testing.T) {
	t.Parallel()
	files, _ := filepath.Glob("testdata/invalid/*.yaml")
	if len(files) == 0 {
		t.Fatal("no testdata/invalid/*.yaml")
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			t.Parallel()
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			_, err = Parse(f, data, noEnv)
			var list ErrorList
			if !errors.As(err, &list) {
				t.Fatalf("Parse = %v; want an ErrorList", err)
			}
			got := list.Error() + "\n"
			golden := strings.TrimSuffix(f, ".yaml") + ".golden"
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if got != string(want) {
				t.Errorf("errors differ from %s\ngot:\n%s\nwant:\n%s", golden, got, want)
			}
		})
	}
}

// TestManyErrorsAtOnce pins that one file reports at least ten distinct
// problems, each with its line.
func TestManyErrorsAtOnce(t *testing.T) {
	t.Parallel()
	_, err := Load("testdata/invalid/many.yaml")
	var list ErrorList
	if !errors.As(err, &list) {
		t.Fatalf("Load = %v; want an ErrorList", err)
	}
	if len(list) < 10 {
		t.Fatalf("got %d errors; want at least 10:\n%v", len(list), list)
	}
	for i, e := range list {
		if e.Line < 1 || e.Col < 1 || e.Path == "" || e.File != "testdata/invalid/many.yaml" {
			t.Errorf("error %d = %+v; want a file, a position and a path", i, e)
		}
		if i > 0 && (e.Line < list[i-1].Line || e.Line == list[i-1].Line && e.Col < list[i-1].Col) {
			t.Errorf("error %d (%d:%d) comes after %d:%d; want sorted by position", i, e.Line, e.Col, list[i-1].Line, list[i-1].Col)
		}
	}
}

func TestLoadFileErrors(t *testing.T) {
	t.Parallel()
	_, err := Load(filepath.Join(t.TempDir(), "missing.yaml"))
	var fe *FileError
	if !errors.As(err, &fe) {
		t.Fatalf("Load(missing) = %T %v; want *FileError", err, err)
	}
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("got %v; want it to wrap fs.ErrNotExist", err)
	}
	_, err = Load(t.TempDir()) // a directory cannot be read as a file
	if !errors.As(err, &fe) {
		t.Errorf("Load(dir) = %T %v; want *FileError", err, err)
	}
}

func TestEnvExpansion(t *testing.T) {
	t.Parallel()
	env := mapEnv(map[string]string{
		"DB": "3", "NAME": "users", "EMPTY": "", "NESTED": "${DB}", "TOKEN": "0123456789abcdef0123",
	})
	for _, tc := range []struct {
		name, in, want, err string
	}{
		{"plain", "abc", "abc", ""},
		{"variable", "${NAME}", "users", ""},
		{"inside text", "pre-${NAME}-post", "pre-users-post", ""},
		{"missing", "${NOPE}", "", "environment variable NOPE is not set"},
		{"default when unset", "${NOPE:-fallback}", "fallback", ""},
		{"default when empty", "${EMPTY:-fallback}", "fallback", ""},
		{"empty default", "${NOPE:-}", "", ""},
		{"set but empty", "${EMPTY}", "", ""},
		{"dollar dollar", "cost: $$5", "cost: $5", ""},
		{"escaped reference", "$${NAME}", "${NAME}", ""},
		{"bcrypt untouched", "$2a$10$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy", "$2a$10$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy", ""},
		{"lone dollar", "$", "$", ""},
		{"no double expansion", "${NESTED}", "${DB}", ""},
		{"default not expanded", "${NOPE:-${NAME}", "${NAME", ""},
		{"unterminated", "${NAME", "", "unterminated"},
		{"invalid name", "${1X}", "", "invalid variable name"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := expandEnv(tc.in, env)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("expandEnv(%q) error = %v; want one containing %q", tc.in, err, tc.err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("expandEnv(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
			}
		})
	}
}

func TestEnvInDocument(t *testing.T) {
	t.Parallel()
	env := mapEnv(map[string]string{"REDIS_DB": "7", "PPROF": "true", "T": "15s", "KEY": "header_name", "SZ": "2MiB"})
	c := mustParse(t, base+`
store: {redis: {db: "${REDIS_DB}"}}
observability: {pprof: "${PPROF}"}
defaults: {timeout: "${T}", max_body_bytes: "${SZ}"}
policy_sets: {"${KEY}": {request_headers: {set: {X-Key: "${KEY}"}}}}
routes:
  - match: {path: /a}
    upstream: app
`, env)
	if got := c.Store.Redis.DB; got != 7 {
		t.Errorf("db = %d; want 7 (a quoted ${} decodes by the field's type)", got)
	}
	if !c.Observability.Pprof {
		t.Errorf("pprof = false; want true")
	}
	r := c.Routes[0]
	if got := *r.Timeout; got.D().String() != "15s" {
		t.Errorf("timeout = %v; want 15s", got)
	}
	if got := *r.MaxBodyBytes; got != 2<<20 {
		t.Errorf("max_body_bytes = %d; want %d", got, 2<<20)
	}
	if got, ok := c.PolicySets["${KEY}"]; !ok || got.RequestHeaders.Set["X-Key"] != "header_name" {
		t.Errorf("policy_sets = %+v; want the key kept literally and the value expanded", c.PolicySets)
	}
	lines := parseErrors(t, base+`store: {redis: {db: "${MISSING_DB}"}}
routes: [{match: {path: /}, upstream: app}]`, noEnv)
	want := `test.yaml:4:21: store.redis.db: environment variable MISSING_DB is not set (write ${MISSING_DB:-default} to allow that)`
	if len(lines) != 1 || lines[0] != want {
		t.Errorf("got %q; want [%q]", lines, want)
	}
}
