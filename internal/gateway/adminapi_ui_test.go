package gateway

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/portunus-gw/portunus/internal/config"
)

// The admin handler serves the dashboard: with a token its files load
// without it (the data does not), and session.json says a token is
// needed; without a token, loopback only and no token asked for.
func TestDashboardMounted(t *testing.T) {
	t.Parallel()
	up := newUpstream(t, "up")
	g := startGateway(t, versionConfig(1, up.URL))
	withToken := g.rt.adminHandler(&config.Admin{Address: "127.0.0.1:0", Token: apiToken}, false)
	noToken := g.rt.adminHandler(&config.Admin{Address: "127.0.0.1:0"}, false)
	for _, tc := range []struct {
		name   string
		h      http.Handler
		path   string
		remote string
		want   int
		body   string
	}{
		{"token: page without the token", withToken, "/ui/", "203.0.113.9:4000", 200, "<title>Portunus dashboard</title>"},
		{"token: session", withToken, "/ui/session.json", "203.0.113.9:4000", 200, `{"token_required":true}`},
		{"token: data still needs the token", withToken, "/api/v1/stats", "203.0.113.9:4000", 401, ""},
		{"token: bare /ui redirects", withToken, "/ui", "203.0.113.9:4000", 301, ""},
		{"no token: loopback page", noToken, "/ui/app.js", "127.0.0.1:4000", 200, "import"},
		{"no token: session", noToken, "/ui/session.json", "127.0.0.1:4000", 200, `{"token_required":false}`},
		{"no token: remote refused", noToken, "/ui/", "203.0.113.9:4000", 403, ""},
	} {
		r := httptest.NewRequest("GET", tc.path, nil)
		r.RemoteAddr = tc.remote
		w := httptest.NewRecorder()
		tc.h.ServeHTTP(w, r)
		body, _ := io.ReadAll(w.Result().Body)
		if w.Code != tc.want || !strings.Contains(string(body), tc.body) {
			t.Errorf("%s: GET %s = %d %.80q; want %d containing %q", tc.name, tc.path, w.Code, body, tc.want, tc.body)
		}
	}
}
