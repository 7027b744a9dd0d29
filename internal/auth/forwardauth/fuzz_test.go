package forwardauth

import (
	"net/http"
	"net/textproto"
	"strings"
	"testing"
)

// FuzzHeaders: whatever Connection says, no hop-by-hop header and none it
// names survives the copy to the service or the relay to the client.
func FuzzHeaders(f *testing.F) {
	for _, s := range []string{"close", "X-A, x-b", ",,", "Keep-Alive, Upgrade", "x-a\t,  X-C ", ""} {
		f.Add(s, "X-A")
	}
	f.Fuzz(func(t *testing.T, conn, name string) {
		in := http.Header{"Connection": {conn}, "Transfer-Encoding": {"chunked"}, "X-Keep": {"1"}}
		if name != "" {
			in[textproto.CanonicalMIMEHeaderKey(name)] = []string{"v"}
		}
		named := connectionNamed(in)
		for _, out := range []http.Header{forwardHeaders(in), relayHeaders(in)} {
			for k := range out {
				if hopByHop[k] || named[k] {
					t.Errorf("header %q kept (Connection %q)", k, conn)
				}
			}
			if !named["X-Keep"] && out.Get("X-Keep") != "1" {
				t.Errorf("X-Keep dropped (Connection %q)", conn)
			}
		}
		for _, f := range strings.Split(conn, ",") {
			if f = strings.TrimSpace(f); f != "" && !named[textproto.CanonicalMIMEHeaderKey(f)] {
				t.Errorf("token %q of Connection not recognised", f)
			}
		}
	})
}
