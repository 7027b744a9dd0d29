package gateway

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// bigConfig describes a generated config of many routes, like
// config.BenchmarkLoad10kRoutes: 100 upstreams, a policy set, hosts,
// {param} paths, methods and path rewrites on every route.
type bigConfig struct {
	routes int
	// policies puts common policies on a quarter of the routes: those
	// with i%8 == 0 have a memory rate limit, CORS and request and
	// response header rules; those with i%8 == 4 a response cache and
	// response header rules.
	policies bool
	// version appears in every answer as X-Config: v<version> (the policy
	// set's response header, and the policy routes' own rules).
	version int
	// upstream is the one target of every upstream; "" = two made-up
	// addresses per upstream, never dialled by the benchmark.
	upstream string
}

func (c bigConfig) yaml() string {
	var sb strings.Builder
	sb.Grow(c.routes * 220)
	fmt.Fprintf(&sb, "listeners: [{address: \"127.0.0.1:0\"}]\nobservability: {access_log: {path: \"off\"}}\n")
	fmt.Fprintf(&sb, "policy_sets:\n  std: {timeout: 5s, response_headers: {remove: [Server], set: {X-Config: v%d}}}\nupstreams:\n", c.version)
	for i := range 100 {
		if c.upstream != "" {
			fmt.Fprintf(&sb, "  - name: up%d\n    targets: [{url: %q}]\n", i, c.upstream)
			continue
		}
		fmt.Fprintf(&sb, "  - name: up%d\n    targets: [{url: \"http://10.0.%d.1:8080\"}, {url: \"http://10.0.%d.2:8080\", weight: 2}]\n", i, i, i)
	}
	sb.WriteString("routes:\n")
	for i := range c.routes {
		fmt.Fprintf(&sb, "  - name: r%d\n    use: [std]\n    match: {hosts: [h%d.example.com], path: \"/v1/res%d/{id}\", methods: [GET, POST]}\n    upstream: up%d\n    rewrite: {path: \"/res/{id}\"}\n", i, i%50, i, i%100)
		if !c.policies {
			continue
		}
		switch i % 8 {
		case 0:
			fmt.Fprintf(&sb, "    response_headers: {remove: [Server], set: {X-Config: v%d, X-Route: r%d}}\n", c.version, i)
			sb.WriteString("    rate_limits: [{limit: 1000000000, window: 1s, by: ip}]\n")
			fmt.Fprintf(&sb, "    cors: {origins: [\"https://app%d.example.com\", \"https://*.example.org\"], methods: [GET, POST], headers: [Authorization], max_age: 10m}\n", i)
			fmt.Fprintf(&sb, "    request_headers: {set: {X-Route: r%d, X-Id: \"{id}\"}, remove: [Cookie]}\n", i)
		case 4:
			fmt.Fprintf(&sb, "    response_headers: {remove: [Server], set: {X-Config: v%d, X-Route: r%d}}\n", c.version, i)
			sb.WriteString("    cache: {ttl: 30s, vary: [Accept-Language]}\n")
		}
	}
	return sb.String()
}

// cpuTime is the process's user+system CPU time so far. Reloads may start
// goroutines and leave garbage for the collector, so the process's CPU,
// not the wall clock, is the honest cost of a reload.
func cpuTime(tb testing.TB) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		tb.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkReload10kRoutes is the whole reload path of a 10,000-route
// config through Runtime.Reload: read the file, parse, validate, compile
// the snapshot and router, swap. Each iteration rewrites the file with
// the other of two versions (the X-Config header differs, so every route
// changes), as an edit of the file would; the write is inside the
// measured loop (a few milliseconds of wall time, about 1 % of it).
// cpu-ms/op is the process's user+system CPU per reload (getrusage), GC
// included.
func BenchmarkReload10kRoutes(b *testing.B) {
	b.Run("plain", func(b *testing.B) { benchReload(b, bigConfig{routes: 10000}) })
	b.Run("policies", func(b *testing.B) { benchReload(b, bigConfig{routes: 10000, policies: true}) })
}

// BenchmarkReloadScale reloads the policies config at 2,500 to 40,000
// routes: allocations per route should stay flat and CPU per route nearly
// so; anything quadratic in the reload path shows here first.
func BenchmarkReloadScale(b *testing.B) {
	for _, n := range []int{2500, 5000, 10000, 20000, 40000} {
		b.Run(fmt.Sprintf("routes=%d", n), func(b *testing.B) { benchReload(b, bigConfig{routes: n, policies: true}) })
	}
}

func benchReload(b *testing.B, c bigConfig) {
	var versions [2][]byte
	for v := range versions {
		c.version = v + 1
		versions[v] = []byte(c.yaml())
	}
	path := filepath.Join(b.TempDir(), "portunus.yaml")
	if err := os.WriteFile(path, versions[0], 0o600); err != nil {
		b.Fatal(err)
	}
	rt, err := Start(Options{ConfigPath: path, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		rt.Shutdown(ctx)
	})
	if n := len(rt.gw.Snapshot().routes); n != c.routes {
		b.Fatalf("%d routes compiled; want %d", n, c.routes)
	}
	b.SetBytes(int64(len(versions[0])))
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := cpuTime(b)
	i := 0
	for b.Loop() {
		i++
		if err := os.WriteFile(path, versions[i%2], 0o600); err != nil {
			b.Fatal(err)
		}
		if err := rt.Reload("bench"); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(cpuTime(b)-cpu0)/float64(time.Millisecond)/float64(b.N), "cpu-ms/op")
}
