package ui

import (
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
)

func get(t *testing.T, h http.Handler, path string, hdr map[string]string) *http.Response {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, path, nil)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Result()
}

func TestServesEmbeddedFilesWithSecurityHeaders(t *testing.T) {
	t.Parallel()
	h := Handler(false)
	for path, ctype := range map[string]string{
		"/ui/":         "text/html",
		"/ui/app.js":   "text/javascript",
		"/ui/api.js":   "text/javascript",
		"/ui/chart.js": "text/javascript",
		"/ui/app.css":  "text/css",
		"/ui/icon.svg": "image/svg+xml",
	} {
		resp := get(t, h, path, nil)
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK || len(body) == 0 {
			t.Errorf("GET %s = %d with %d bytes; want 200 with content", path, resp.StatusCode, len(body))
			continue
		}
		if got := resp.Header.Get("Content-Type"); !strings.HasPrefix(got, ctype) {
			t.Errorf("GET %s: Content-Type %q; want %s", path, got, ctype)
		}
		csp := resp.Header.Get("Content-Security-Policy")
		for _, want := range []string{"default-src 'none'", "script-src 'self'", "frame-ancestors 'none'"} {
			if !strings.Contains(csp, want) {
				t.Errorf("GET %s: CSP %q lacks %q", path, csp, want)
			}
		}
		if resp.Header.Get("X-Content-Type-Options") != "nosniff" || resp.Header.Get("ETag") == "" {
			t.Errorf("GET %s: headers %v; want nosniff and an ETag", path, resp.Header)
		}
	}
}

func TestETagRevalidates(t *testing.T) {
	t.Parallel()
	h := Handler(false)
	first := get(t, h, "/ui/app.js", nil)
	tag := first.Header.Get("ETag")
	again := get(t, h, "/ui/app.js", map[string]string{"If-None-Match": tag})
	if again.StatusCode != http.StatusNotModified {
		t.Errorf("revalidation with %s = %d; want 304", tag, again.StatusCode)
	}
}

func TestSessionSaysWhetherTheTokenIsNeeded(t *testing.T) {
	t.Parallel()
	for _, need := range []bool{false, true} {
		resp := get(t, Handler(need), "/ui/session.json", nil)
		body, _ := io.ReadAll(resp.Body)
		want := `{"token_required":false}`
		if need {
			want = `{"token_required":true}`
		}
		if string(body) != want || resp.Header.Get("Cache-Control") != "no-store" {
			t.Errorf("session.json (token %v) = %s, Cache-Control %q; want %s, no-store", need, body, resp.Header.Get("Cache-Control"), want)
		}
	}
}

func TestUnknownFileIs404(t *testing.T) {
	t.Parallel()
	if resp := get(t, Handler(false), "/ui/nope.js", nil); resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET /ui/nope.js = %d; want 404", resp.StatusCode)
	}
}

// The page must work offline and under the CSP: nothing may load from
// another origin, and no inline script or style may be needed.
func TestAssetsAreSelfContained(t *testing.T) {
	t.Parallel()
	remote := regexp.MustCompile(`(?i)(src|href)\s*=\s*["']?(https?:)?//|@import|url\(\s*["']?(https?:)?//|import\s[^;]*from\s*["']https?:`)
	inline := regexp.MustCompile(`(?i)<script(?:\s+type="module")?\s*>|\sstyle\s*=|\son[a-z]+\s*=`)
	entries, err := files.ReadDir("static")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		b, err := files.ReadFile("static/" + e.Name())
		if err != nil {
			t.Fatal(err)
		}
		if m := remote.Find(b); m != nil {
			t.Errorf("%s loads from another origin: %q", e.Name(), m)
		}
		if strings.HasSuffix(e.Name(), ".html") {
			if m := inline.Find(b); m != nil {
				t.Errorf("%s has inline script, style or handler the CSP refuses: %q", e.Name(), m)
			}
		}
	}
}
