package main

import "strings"

// cacheScenario (-cache) measures cache hits: nginx gets proxy_cache and
// Portunus's route gets a response cache, both keeping the upstream's
// 200 for 60 s, so after the first request every answer comes from the
// proxy's cache and the upstream is idle.
var cacheScenario bool

// portunusCacheRoute is the cache policy added to Portunus's route.
const portunusCacheRoute = "cache: { ttl: 60s }"

// withProxyCache adds an equivalent proxy_cache to an nginx config from
// nginxConfig: a keys zone (on disk under dir, served from the page
// cache), 200s valid for 60 s as the upstream sends no Cache-Control,
// one fill per key (proxy_cache_lock, like Portunus's coalescing).
func withProxyCache(conf, dir string) string {
	zone := "    proxy_cache_path " + dir + "/cache levels=1:2 keys_zone=bench:10m max_size=256m inactive=10m use_temp_path=off;\n"
	conf = strings.Replace(conf, "    upstream bench {", zone+"    upstream bench {", 1)
	loc := `            proxy_cache bench;
            proxy_cache_valid 200 60s;
            proxy_cache_lock on;
            add_header X-Cache-Status $upstream_cache_status;
`
	return strings.Replace(conf, "            proxy_pass http://bench;\n", "            proxy_pass http://bench;\n"+loc, 1)
}

// withCacheRoute appends the cache policy to the measured route's extras.
func withCacheRoute(route string) string {
	if route == "" {
		return portunusCacheRoute
	}
	return route + ", " + portunusCacheRoute
}
