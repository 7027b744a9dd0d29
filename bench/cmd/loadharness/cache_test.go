package main

import (
	"strings"
	"testing"
)

// The cache scenario must really configure nginx's cache: both anchors of
// withProxyCache have to exist in nginxConfig's output.
func TestWithProxyCacheAddsZoneAndLocation(t *testing.T) {
	t.Parallel()
	conf := withProxyCache(nginxConfig("/tmp/x", 8080, "127.0.0.1:9000", false), "/tmp/x")
	for _, want := range []string{"proxy_cache_path /tmp/x/cache ", "proxy_cache bench;", "proxy_cache_valid 200 60s;", "proxy_cache_lock on;"} {
		if !strings.Contains(conf, want) {
			t.Fatalf("nginx config lacks %q:\n%s", want, conf)
		}
	}
	if strings.Index(conf, "proxy_cache_path") > strings.Index(conf, "server {") {
		t.Fatal("proxy_cache_path must be in the http block, before the server")
	}
}

func TestWithCacheRoute(t *testing.T) {
	t.Parallel()
	if got := withCacheRoute(""); got != portunusCacheRoute {
		t.Fatalf("withCacheRoute(\"\") = %q", got)
	}
	if got := withCacheRoute("timeout: 5s"); got != "timeout: 5s, "+portunusCacheRoute {
		t.Fatalf("withCacheRoute = %q", got)
	}
}
