// Package ui is the dashboard: hand-written HTML, CSS and ES modules
// embedded in the binary and served by the admin listener at /ui/.
//
// The files hold no data. Everything the page shows comes from the admin
// REST API (/api/v1), which it calls with the admin bearer token when one
// is configured; so the files themselves can be served to any client the
// admin listener serves at all (a browser navigation cannot carry a bearer
// header). session.json tells the page up front whether it must ask for the
// token, so it never has to provoke a 401 to find out.
package ui

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"net/http"
	"path"
	"strings"
)

//go:embed static
var files embed.FS

// Prefix is where the dashboard is mounted.
const Prefix = "/ui/"

// contentSecurityPolicy allows only the dashboard's own files and the
// admin API on the same origin: no inline script or style, no frames.
const contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; " +
	"connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// Handler serves the dashboard under Prefix. tokenRequired says whether
// the admin API needs the bearer token.
func Handler(tokenRequired bool) http.Handler {
	sub, err := fs.Sub(files, "static")
	if err != nil {
		panic(err) // the embedded tree is fixed at build time
	}
	etags := map[string]string{}
	_ = fs.WalkDir(sub, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(sub, p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		etags["/"+p] = `"` + hex.EncodeToString(sum[:8]) + `"`
		return nil
	})
	session := []byte(`{"token_required":false}`)
	if tokenRequired {
		session = []byte(`{"token_required":true}`)
	}
	fileServer := http.StripPrefix(strings.TrimSuffix(Prefix, "/"), http.FileServerFS(sub))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", contentSecurityPolicy)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("X-Frame-Options", "DENY")
		name := path.Clean("/" + strings.TrimPrefix(r.URL.Path, Prefix))
		if name == "/session.json" {
			h.Set("Content-Type", "application/json")
			h.Set("Cache-Control", "no-store")
			_, _ = w.Write(session)
			return
		}
		if name == "/" {
			name = "/index.html"
		}
		// Revalidate every time: the files change with the binary, and
		// the ETag makes an unchanged file cost a 304.
		h.Set("Cache-Control", "no-cache")
		if tag, ok := etags[name]; ok {
			h.Set("ETag", tag)
		}
		fileServer.ServeHTTP(w, r)
	})
}
