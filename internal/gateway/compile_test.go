package gateway

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/portunus-gw/portunus/internal/config"
)

var update = flag.Bool("update", false, "rewrite golden files")

// TestCompileGolden pins config → compiled snapshot: each
// testdata/compile/NAME.yaml compiles to the view in NAME.golden.
// Regenerate with: go test ./internal/gateway -run TestCompileGolden -update
func TestCompileGolden(t *testing.T) {
	t.Parallel()
	files, err := filepath.Glob("testdata/compile/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no golden inputs: %v", err)
	}
	for _, in := range files {
		name := strings.TrimSuffix(filepath.Base(in), ".yaml")
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			cfg, err := config.Load(in)
			if err != nil {
				t.Fatalf("load: %v", err)
			}
			snap, err := CompileForExplain(cfg)
			if err != nil {
				t.Fatalf("compile: %v", err)
			}
			got, err := json.MarshalIndent(snap.View(), "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, '\n')
			golden := strings.TrimSuffix(in, ".yaml") + ".golden"
			if *update {
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("compiled view differs from %s (run with -update if intended):\n%s", golden, got)
			}
		})
	}
}
