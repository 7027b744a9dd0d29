// Command portunus is the Portunus API gateway.
//
//	portunus run -c portunus.yaml
//	portunus validate -c portunus.yaml
//	portunus explain -c portunus.yaml [--json] [--client-ip IP] METHOD URL [-H 'Name: value' ...]
//	portunus hash-key KEY
//	portunus consumers [--admin URL] [--token T] list|get|create|update|delete|keys|basic|certs|audit ...
//	portunus version
//
// Exit codes: 0 success; 1 invalid config (or, for explain, no matching
// route); 2 usage error or unreadable file.
package main

import (
	"fmt"
	"io"
	"os"
)

// Set by the build (-ldflags "-X main.version=... -X main.commit=...").
var (
	version = "dev"
	commit  = ""
)

const usage = `Portunus — an API gateway in one binary.

Usage:
  portunus run -c FILE          serve; SIGHUP or a changed file reloads; SIGTERM drains and exits
  portunus validate -c FILE     check a config; errors as FILE:LINE:COL: PATH: message
  portunus explain -c FILE [--json] [--client-ip IP] METHOD URL [-H 'Name: value' ...]
                                show which route a request matches and what would happen
  portunus hash-key KEY         print the sha256: form of an API key for the config
  portunus consumers ...        manage runtime consumers and keys through a running instance's admin API
  portunus version              print version, commit and Go version

Exit codes: 0 success; 1 invalid config (explain: no route matches); 2 usage error or unreadable file.
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch args[0] {
	case "run":
		return cmdRun(args[1:], stdout, stderr)
	case "validate":
		return cmdValidate(args[1:], stdout, stderr)
	case "explain":
		return cmdExplain(args[1:], stdout, stderr)
	case "hash-key":
		return cmdHashKey(args[1:], stdout, stderr)
	case "consumers":
		return cmdConsumers(args[1:], stdout, stderr)
	case "version", "--version", "-v":
		return cmdVersion(stdout)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "portunus: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
}
