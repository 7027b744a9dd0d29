package cache

import (
	"fmt"
	"strings"
	"testing"

	"github.com/portunus-gw/portunus/internal/store/redistest"
)

func storeRedis(addr, prefix string) string {
	return fmt.Sprintf("store:\n  backend: redis\n  redis: { addresses: [%q], key_prefix: %q }\n", addr, prefix)
}

// Two gateways on one redis-server share entries: what one stored, the
// other serves; a purge through either drops it for both.
func TestRedisStoreSharedByTwoGateways(t *testing.T) {
	t.Parallel()
	addr := redistest.Start(t)
	prefix := redistest.KeyPrefix(t)
	up := newUpstream(t)
	cfg := gatewayConfig(up.srv.URL, storeRedis(addr, prefix))
	gw1 := startInstance(t, cfg)
	gw2 := startInstance(t, cfg)

	a := gw1.get("/shared?x=1")
	if a.header.Get("Cache-Status") != "portunus; fwd=uri-miss; stored" {
		t.Fatalf("gw1: Cache-Status %q; want a stored miss", a.header.Get("Cache-Status"))
	}
	b := gw2.get("/shared?x=1")
	if !isHit(b) || b.body != a.body {
		t.Fatalf("gw2: %q (%s); want gw1's stored answer as a hit", b.body, b.header.Get("Cache-Status"))
	}
	if n := up.count("/shared"); n != 1 {
		t.Fatalf("upstream calls = %d; want 1", n)
	}
	// Consumers stay apart across instances too.
	gw1.get("/me", "X-API-Key", "alice-key-0123456789")
	if c := gw2.get("/me", "X-API-Key", "bob-key-0123456789"); c.body != "user=bob" {
		t.Fatalf("bob on gw2 got %q", c.body)
	}
	if c := gw2.get("/me", "X-API-Key", "alice-key-0123456789"); c.body != "user=alice" || !isHit(c) {
		t.Fatalf("alice on gw2 got %q (%s); want her answer stored by gw1", c.body, c.header.Get("Cache-Status"))
	}

	if code, body := gw2.admin("POST", "/api/v1/cache/purge", `{"route":"site"}`); code != 200 || !strings.Contains(body, `"purged":`) {
		t.Fatalf("purge: %d %s", code, body)
	}
	if c := gw1.get("/shared?x=1"); isHit(c) {
		t.Fatalf("gw1 after purge on gw2: %s; want a miss", c.header.Get("Cache-Status"))
	}
	// An unsafe request through gw2 invalidates what gw1 stored.
	gw1.get("/items/1")
	req := gw2.url + "/items/1"
	resp, err := client.Post(req, "text/plain", strings.NewReader("x"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if c := gw1.get("/items/1"); isHit(c) {
		t.Fatalf("gw1 after POST on gw2: %s; want a miss", c.header.Get("Cache-Status"))
	}
}
