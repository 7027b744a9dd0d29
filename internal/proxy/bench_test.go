package proxy_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"
	"time"

	"github.com/portunus-gw/portunus/internal/config"
	"github.com/portunus-gw/portunus/internal/headers"
	"github.com/portunus-gw/portunus/internal/pipeline"
	"github.com/portunus-gw/portunus/internal/proxy"
)

// discardWriter is a ResponseWriter that keeps nothing but its header map.
type discardWriter struct {
	h      http.Header
	status int
}

func (d *discardWriter) Header() http.Header         { return d.h }
func (d *discardWriter) WriteHeader(code int)        { d.status = code }
func (d *discardWriter) Write(p []byte) (int, error) { return len(p), nil }

// BenchmarkProxyRoundTrip measures the proxy action over a loopback
// upstream: everything from picking a target to the copied body,
// including net/http's transport (which dominates).
func BenchmarkProxyRoundTrip(b *testing.B) {
	for _, bc := range []struct {
		name    string
		timeout time.Duration
		rules   bool
	}{{"plain", 0, false}, {"timeout+rules", 10 * time.Second, true}} {
		b.Run(bc.name, func(b *testing.B) {
			up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				io.WriteString(w, `{"ok":true}`)
			}))
			defer up.Close()
			cfg := proxy.Config{Pool: newPool(b, config.Upstream{}, up.URL), Timeout: bc.timeout}
			if bc.rules {
				rs, err := headers.CompileRules(&config.HeaderRules{
					Set: map[string]string{"X-Env": "prod", "X-User": "{consumer}"}, Remove: []string{"Cookie"},
				}, nil)
				if err != nil {
					b.Fatal(err)
				}
				cfg.RequestHeaders, cfg.ResponseHeaders = rs, rs
			}
			h := proxy.New(cfg)
			r := httptest.NewRequest(http.MethodGet, "http://api.example.com/v1/users/7?x=1", nil)
			r.RemoteAddr = "192.0.2.1:5555"
			r.Header.Set("User-Agent", "bench")
			r.Header.Set("Accept", "*/*")
			w := &discardWriter{h: make(http.Header, 8)}
			s := &pipeline.State{}
			b.ReportAllocs()
			for b.Loop() {
				clear(w.h)
				s.Reset()
				s.RequestID, s.Path, s.RouteName, s.Consumer = "req-1", "/v1/users/7", "users", "alice"
				s.ClientIP = netip.MustParseAddr("192.0.2.1")
				h(w, r, s)
				if w.status != 200 {
					b.Fatalf("status %d", w.status)
				}
			}
		})
	}
}
