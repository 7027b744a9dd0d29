package aggregate

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/portunus-gw/portunus/internal/config"
)

// loadVariant loads examples/aggregation.yaml with one string replaced.
func loadVariant(t *testing.T, from, to string) (string, error) {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("..", "..", "examples", "aggregation.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(raw), from) {
		t.Fatalf("aggregation.yaml does not hold %q", from)
	}
	path := filepath.Join(t.TempDir(), "portunus.yaml")
	if err := os.WriteFile(path, []byte(strings.Replace(string(raw), from, to, 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = config.Load(path)
	return path, err
}

// A {AS.FIELD} naming a field the earlier backend's `fields` drop or rename
// away is a config error at its file:line:col and path, not a 502 at run
// time.
func TestAfterFieldDroppedIsConfigError(t *testing.T) {
	t.Parallel()
	if _, err := loadVariant(t, `"/orgs/{user.org}"`, `"/orgs/{user.org}"`); err != nil {
		t.Fatalf("the example as it is: %v", err)
	}
	cases := []struct {
		desc, from, to, want string
	}{
		{"renamed away", `"/orgs/{user.org}"`, `"/orgs/{user.org_id}"`,
			"routes[0].aggregate.backends[2].path: {user.org_id} names a field that user's fields rename to org: use {user.org} (backends[0].fields)"},
		{"dropped", `"/orgs/{user.org}"`, `"/orgs/{user.email}"`,
			"routes[0].aggregate.backends[2].path: {user.email} names a field that user's fields drop (kept: id, name, org) (backends[0].fields)"},
	}
	for _, tc := range cases {
		path, err := loadVariant(t, tc.from, tc.to)
		if err == nil {
			t.Errorf("%s: loaded; want a config error", tc.desc)
			continue
		}
		// The error points at the path's line in the file.
		raw, _ := os.ReadFile(path)
		line := strings.Count(string(raw[:strings.Index(string(raw), tc.to)]), "\n") + 1
		if want := fmt.Sprintf("%s:%d:", path, line); !strings.HasPrefix(err.Error(), want) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %q; want it at %s… saying %q", tc.desc, err, want, tc.want)
		}
	}
}
