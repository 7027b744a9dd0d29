package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/portunus-gw/portunus/internal/gateway"
)

// printAggregate shows an aggregate plan: one line per backend, indented
// by stage, with the call this request would make when it is known.
func printAggregate(w io.Writer, a *gateway.ExplainAggregate) {
	if a == nil {
		return
	}
	fmt.Fprintf(w, "action:    aggregate (timeout %s, at most %d bytes per backend)\n", a.Timeout, a.MaxBackendBytes)
	for _, st := range a.Steps {
		var b strings.Builder
		fmt.Fprintf(&b, "           stage %d: %s GET upstream %s %s", st.Stage, st.Name, st.Upstream, st.Path)
		if st.After != "" {
			fmt.Fprintf(&b, " after %s", st.After)
		}
		if st.Optional {
			b.WriteString(" (optional)")
		}
		if len(st.Fields) > 0 {
			fs := make([]string, len(st.Fields))
			for i, f := range st.Fields {
				fs[i] = f.From
				if f.To != f.From {
					fs[i] += " as " + f.To
				}
			}
			fmt.Fprintf(&b, " fields [%s]", strings.Join(fs, ", "))
		}
		if st.URL != "" {
			fmt.Fprintf(&b, " -> %s", st.URL)
		}
		fmt.Fprintln(w, b.String())
	}
	if len(a.Steps) > 0 {
		fmt.Fprintln(w, "           merged: one JSON object (`as` keys; top level without `as`, later backends win)")
	}
}
