package gateway

import (
	"net/http"
	"testing"

	"github.com/portunus-gw/portunus/internal/config"
)

// TestExplainSplit: explain names the split and the side a request goes
// to, and the side follows sticky_by.
func TestExplainSplit(t *testing.T) {
	t.Parallel()
	cfg, err := config.Load("testdata/compile/resilience.yaml")
	if err != nil {
		t.Fatal(err)
	}
	snap, err := CompileForExplain(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if len(snap.discoverers) != 1 {
		t.Fatalf("%d discoverers, want 1 (for the named target)", len(snap.discoverers))
	}
	sides := map[string]int{}
	for i := range 200 {
		h := http.Header{}
		h.Set("X-User", string(rune('a'+i%26))+string(rune('a'+i/26)))
		ex := snap.Explain(ExplainRequest{Method: "GET", URL: "http://api/users/1", Header: h})
		a := ex.Action
		if a == nil || a.Kind != "proxy" || len(a.Split) != 2 || a.StickyBy != "header:X-User" || a.Mirror == nil || a.Hedge == nil {
			t.Fatalf("action %+v", a)
		}
		sides[a.Upstream]++
		if again := snap.Explain(ExplainRequest{Method: "GET", URL: "http://api/users/1", Header: h}); again.Action.Upstream != a.Upstream {
			t.Fatalf("the same X-User went to %s then %s", a.Upstream, again.Action.Upstream)
		}
		if a.UpstreamRequest == nil {
			t.Fatal("no upstream request described")
		}
		want := map[string]string{"users": "127.0.0.1:9001", "users-v2": "127.0.0.1:9011"}[a.Upstream]
		if a.UpstreamRequest.Host != want {
			t.Fatalf("side %s described with host %s", a.Upstream, a.UpstreamRequest.Host)
		}
	}
	if sides["users"] == 0 || sides["users-v2"] == 0 || sides["users"] < sides["users-v2"] {
		t.Fatalf("sides %v", sides)
	}
}
