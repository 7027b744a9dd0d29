package gateway

import (
	"strings"
	"testing"
)

func TestRequestIDs(t *testing.T) {
	g := newRequestIDs()
	// A valid single client id is kept, and its header value is clipped so
	// an append never writes into the client's slice.
	in := []string{"abc-123.x_y:z"}
	id, val := g.fromRequest(in)
	if id != in[0] || len(val) != 1 || cap(val) != 1 || val[0] != id {
		t.Errorf("client id: got %q %q (cap %d)", id, val, cap(val))
	}
	// Invalid, repeated or missing ids are replaced by generated ones,
	// unique, with the process prefix, each with its own header value.
	seen := map[string]bool{}
	for _, vals := range [][]string{nil, {"bad id"}, {"a", "b"}, {strings.Repeat("x", maxRequestIDLen+1)}, nil} {
		id, val := g.fromRequest(vals)
		if !strings.HasPrefix(id, g.prefix) || !validRequestID(id) {
			t.Errorf("generated id %q for %q: want prefix %q and a valid id", id, vals, g.prefix)
		}
		if len(val) != 1 || cap(val) != 1 || val[0] != id {
			t.Errorf("generated id %q: header value %q (cap %d)", id, val, cap(val))
		}
		if seen[id] {
			t.Errorf("id %q generated twice", id)
		}
		seen[id] = true
	}
}

func BenchmarkRequestIDGenerated(b *testing.B) {
	g := newRequestIDs()
	b.ReportAllocs()
	for b.Loop() {
		g.fromRequest(nil)
	}
}
