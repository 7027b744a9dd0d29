// Command gen-schema writes the JSON Schema of the Portunus config format
// (see config.Schema). Run through `go generate ./internal/config`.
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/portunus-gw/portunus/internal/config"
)

func main() {
	out := flag.String("o", "portunus.schema.json", "file to write")
	flag.Parse()
	b, err := config.Schema()
	if err != nil {
		fmt.Fprintln(os.Stderr, "gen-schema:", err)
		os.Exit(1)
	}
	if err := os.WriteFile(*out, append(b, '\n'), 0o644); err != nil {
		fmt.Fprintln(os.Stderr, "gen-schema:", err)
		os.Exit(1)
	}
}
