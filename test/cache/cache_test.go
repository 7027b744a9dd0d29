package cache

import (
	"compress/gzip"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// Unkeyed headers must not shape the answer stored for others: the
// gateway drops X-Forwarded-* from untrusted peers and the cache drops
// URL-override headers, so the stored answer is the clean one.
func TestPoisoningWithUnkeyedHeaders(t *testing.T) {
	t.Parallel()
	up := newUpstream(t)
	gw := startInstance(t, gatewayConfig(up.srv.URL, ""))
	attack := gw.get("/home", "X-Forwarded-Host", "evil.example", "X-Original-URL", "/admin", "X-Rewrite-URL", "/admin")
	if strings.Contains(attack.body, "evil") || strings.Contains(attack.body, "/admin") {
		t.Fatalf("upstream saw the attacker's headers: %q", attack.body)
	}
	victim := gw.get("/home")
	if !isHit(victim) {
		t.Fatalf("victim's request: Cache-Status %q; want a hit (the test needs the stored answer)", victim.header.Get("Cache-Status"))
	}
	if strings.Contains(victim.body, "evil") || strings.Contains(victim.body, "/admin") {
		t.Fatalf("victim got %q; want no trace of the attacker's headers", victim.body)
	}
	if got := up.header("/home").Get("X-Forwarded-Host"); got == "evil.example" {
		t.Fatalf("upstream X-Forwarded-Host = %q; want the gateway's own value", got)
	}
}

// Web cache deception: an answer marked private is never stored, even
// for a path that looks static.
func TestDeceptionPrivateAccountCSSNotStored(t *testing.T) {
	t.Parallel()
	up := newUpstream(t)
	gw := startInstance(t, gatewayConfig(up.srv.URL, ""))
	victim := gw.get("/account.css", "Cookie", "session=victim")
	if victim.status != 200 || !strings.Contains(victim.body, "victim") {
		t.Fatalf("victim: %d %q", victim.status, victim.body)
	}
	attacker := gw.get("/account.css")
	if strings.Contains(attacker.body, "victim") || isHit(attacker) {
		t.Fatalf("attacker got %q (Cache-Status %q); want a fresh answer without the victim's data", attacker.body, attacker.header.Get("Cache-Status"))
	}
	if n := up.count("/account.css"); n != 2 {
		t.Fatalf("upstream calls = %d; want 2", n)
	}
}

func TestAuthenticatedAnswersNeverServedToAnotherConsumer(t *testing.T) {
	t.Parallel()
	up := newUpstream(t)
	gw := startInstance(t, gatewayConfig(up.srv.URL, ""))
	if a := gw.get("/me", "X-API-Key", "alice-key-0123456789"); a.body != "user=alice" {
		t.Fatalf("alice got %q", a.body)
	}
	if a := gw.get("/me", "X-API-Key", "bob-key-0123456789"); a.body != "user=bob" || isHit(a) {
		t.Fatalf("bob got %q (%s); want his own answer from the upstream", a.body, a.header.Get("Cache-Status"))
	}
	if a := gw.get("/me", "X-API-Key", "alice-key-0123456789"); a.body != "user=alice" || !isHit(a) {
		t.Fatalf("alice again got %q (%s); want her cached answer", a.body, a.header.Get("Cache-Status"))
	}
	if a := gw.get("/me"); a.status != 401 {
		t.Fatalf("anonymous: status %d; want 401 (auth runs before the cache)", a.status)
	}
	// A public answer is shared: one upstream call for both consumers.
	gw.get("/me/public", "X-API-Key", "alice-key-0123456789")
	if a := gw.get("/me/public", "X-API-Key", "bob-key-0123456789"); !isHit(a) {
		t.Fatalf("bob on a public answer: Cache-Status %q; want a hit", a.header.Get("Cache-Status"))
	}
}

func TestAuthorizationRequestOnRouteWithoutAuthNotStored(t *testing.T) {
	t.Parallel()
	up := newUpstream(t)
	gw := startInstance(t, gatewayConfig(up.srv.URL, ""))
	a := gw.get("/report", "Authorization", "Bearer someone")
	if !strings.Contains(a.body, "authz=true") || a.header.Get("Cache-Status") != "portunus; fwd=bypass; detail=authorization" {
		t.Fatalf("with Authorization: %q (%s)", a.body, a.header.Get("Cache-Status"))
	}
	b := gw.get("/report")
	if isHit(b) || !strings.Contains(b.body, "authz=false") {
		t.Fatalf("without Authorization: %q (%s); want the upstream's own anonymous answer", b.body, b.header.Get("Cache-Status"))
	}
}

// Compression wraps the cache: one stored identity answer, compressed
// for the client that asks.
func TestCompressionWrapsTheCache(t *testing.T) {
	t.Parallel()
	up := newUpstream(t)
	gw := startInstance(t, gatewayConfig(up.srv.URL, ""))
	plain := gw.get("/big")
	zipped := gw.get("/big", "Accept-Encoding", "gzip")
	if zipped.header.Get("Content-Encoding") != "gzip" || !isHit(zipped) {
		t.Fatalf("gzip client: Content-Encoding %q Cache-Status %q; want gzip and a hit", zipped.header.Get("Content-Encoding"), zipped.header.Get("Cache-Status"))
	}
	zr, err := gzip.NewReader(strings.NewReader(zipped.body))
	if err != nil {
		t.Fatal(err)
	}
	unzipped, _ := io.ReadAll(zr)
	if string(unzipped) != plain.body || plain.header.Get("Content-Encoding") != "" {
		t.Fatalf("decompressed answer differs from the identity one")
	}
	if n := up.count("/big"); n != 1 {
		t.Fatalf("upstream calls = %d; want 1", n)
	}
}

// An answer within max_object_bytes is streamed to the client while the
// cache copies it: the client has the first part before the upstream
// sends the rest. Once complete it is stored and served as a hit.
func TestBodyStreamedWhileStored(t *testing.T) {
	t.Parallel()
	up := newUpstream(t)
	gw := startInstance(t, gatewayConfig(up.srv.URL, ""))
	type part struct {
		resp *http.Response
		got  string
		err  error
	}
	parts := make(chan part, 1)
	go func() {
		resp, err := client.Get(gw.url + "/stream")
		if err != nil {
			parts <- part{err: err}
			return
		}
		buf := make([]byte, len(streamFirst))
		_, err = io.ReadFull(resp.Body, buf)
		parts <- part{resp: resp, got: string(buf), err: err}
	}()
	var p part
	select {
	case p = <-parts:
	case <-time.After(waitLimit):
		t.Fatal("the first part did not reach the client while the upstream held the rest back")
	}
	if p.err != nil {
		t.Fatal(p.err)
	}
	defer p.resp.Body.Close()
	if p.got != streamFirst || p.resp.Header.Get("Cache-Status") != "portunus; fwd=uri-miss; stored" {
		t.Fatalf("first part %q, Cache-Status %q; want %q from a stored miss", p.got, p.resp.Header.Get("Cache-Status"), streamFirst)
	}
	up.releaseStream()
	rest, err := io.ReadAll(p.resp.Body)
	if err != nil || string(rest) != streamSecond {
		t.Fatalf("rest = %q, %v; want %q", rest, err, streamSecond)
	}
	// The chunked answer ends once the gateway's handler, which stores
	// the entry, has returned.
	a := gw.get("/stream")
	if !isHit(a) || a.body != streamFirst+streamSecond {
		t.Fatalf("second request: %q (%s); want the whole body as a hit", a.body, a.header.Get("Cache-Status"))
	}
	if n := up.count("/stream"); n != 1 {
		t.Fatalf("upstream calls = %d; want 1", n)
	}
}

func TestStaleIfErrorDuringUpstreamOutage(t *testing.T) {
	t.Parallel()
	up := newUpstream(t)
	gw := startInstance(t, gatewayConfig(up.srv.URL, ""))
	first := gw.get("/flaky")
	if first.body != "generation 1" {
		t.Fatalf("first = %q", first.body)
	}
	up.srv.Close() // the outage: connections are refused from now on
	deadline := time.Now().Add(waitLimit)
	for {
		a := gw.get("/flaky")
		if a.status != 200 || a.body != "generation 1" {
			t.Fatalf("during the outage: %d %q; want the stale answer", a.status, a.body)
		}
		if strings.Contains(a.header.Get("Cache-Status"), "detail=stale-if-error") {
			break // max-age=1 has passed and the stale answer covers the error
		}
		if time.Now().After(deadline) {
			t.Fatalf("no stale-if-error answer within %v; last Cache-Status %q", waitLimit, a.header.Get("Cache-Status"))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestPurgeEachKind(t *testing.T) {
	t.Parallel()
	up := newUpstream(t)
	gw := startInstance(t, gatewayConfig(up.srv.URL, ""))
	warm := func(paths ...string) {
		for _, p := range paths {
			gw.get(p)
			if a := gw.get(p); !isHit(a) {
				t.Fatalf("%s not cached: %s", p, a.header.Get("Cache-Status"))
			}
		}
	}
	cached := func(p string) bool { return isHit(gw.get(p)) }
	for _, tc := range []struct {
		desc, body string
		gone, kept []string
	}{
		{"one key", `{"key":"GET http://127.0.0.1/docs/a?v=1"}`, []string{"/docs/a?v=1"}, []string{"/docs/a?v=2", "/docs/b"}},
		{"path prefix", `{"path_prefix":"/docs/"}`, []string{"/docs/a?v=1", "/docs/b"}, []string{"/other"}},
		{"route", `{"route":"big"}`, []string{"/big"}, []string{"/docs/b"}},
		{"all", `{"all":true}`, []string{"/docs/b", "/other", "/big"}, nil},
	} {
		warm("/docs/a?v=1", "/docs/a?v=2", "/docs/b", "/other", "/big")
		code, body := gw.admin("POST", "/api/v1/cache/purge", tc.body)
		if code != 200 || !strings.Contains(body, `"purged":`) {
			t.Fatalf("%s: purge answered %d %s", tc.desc, code, body)
		}
		for _, p := range tc.gone {
			if cached(p) {
				t.Fatalf("%s: %s still cached", tc.desc, p)
			}
		}
		for _, p := range tc.kept {
			if !cached(p) {
				t.Fatalf("%s: %s was purged too", tc.desc, p)
			}
		}
	}
	for _, tc := range []struct {
		body string
		want int
	}{
		{`{"route":"nope"}`, 404},
		{`{"key":"POST http://h/x"}`, 400},
		{`{"key":"/relative"}`, 400},
		{`{"all":true,"route":"big"}`, 400},
	} {
		if code, body := gw.admin("POST", "/api/v1/cache/purge", tc.body); code != tc.want || !strings.Contains(body, `"status"`) {
			t.Fatalf("purge %s: %d %s; want %d problem+json", tc.body, code, body, tc.want)
		}
	}
}

func TestCacheMetrics(t *testing.T) {
	t.Parallel()
	up := newUpstream(t)
	gw := startInstance(t, gatewayConfig(up.srv.URL, ""))
	gw.get("/m")
	gw.get("/m")
	_, body := gw.admin("GET", "/metrics", "")
	for _, want := range []string{
		`portunus_cache_requests_total{result="hit",route="site"} 1`,
		`portunus_cache_requests_total{result="miss",route="site"} 1`,
		`portunus_cache_entries`,
		`portunus_cache_bytes`,
	} {
		if !strings.Contains(body, want) {
			t.Fatalf("/metrics lacks %q", want)
		}
	}
}
