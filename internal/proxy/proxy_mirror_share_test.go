package proxy_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/portunus-gw/portunus/internal/config"
	"github.com/portunus-gw/portunus/internal/pipeline"
	"github.com/portunus-gw/portunus/internal/proxy"
)

// TestMirrorPercentShare: mirror.percent below 100 copies that share of
// the requests, drawn per request. Each request carries a small body, so
// the route's action sees whether its request was picked for copying
// (the mirror reads the body alongside it), and every copy is then
// counted where it lands, at the shadow.
func TestMirrorPercentShare(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		percent  float64
		requests int
		// tolerance in percentage points; 0 = exact.
		tolerance float64
	}{
		// 25% of 2000: standard deviation ~1 point, ±5 is 5 sigma.
		{25, 2000, 5},
		{100, 200, 0},
	} {
		var shadowHits atomic.Int64
		shadow := newUpstreamFunc(t, func(w http.ResponseWriter, r *http.Request) {
			io.Copy(io.Discard, r.Body)
			if r.Header.Get(proxy.MirrorHeader) == "1" {
				shadowHits.Add(1)
			}
			io.WriteString(w, "shadow")
		})
		m := proxy.NewMirror(proxy.MirrorConfig{
			Proxy:   proxy.Config{Pool: newPool(t, config.Upstream{Name: "shadow"}, shadow.URL)},
			Percent: c.percent,
			// No copy may be dropped for lack of a slot: this test
			// counts the draw, not the bound.
			MaxInFlight: 1 << 20,
		})
		var orig io.ReadCloser
		picked := 0
		h := m.Middleware()(func(w http.ResponseWriter, r *http.Request, s *pipeline.State) {
			if r.Body != orig {
				picked++
			}
			io.Copy(io.Discard, r.Body)
			w.WriteHeader(http.StatusNoContent)
		})
		for i := range c.requests {
			r := httptest.NewRequest("POST", "/orders", strings.NewReader("b"))
			orig = r.Body
			s := &pipeline.State{RequestID: "req", Start: time.Now(), Path: "/orders", RouteName: "r", ClientIP: netip.MustParseAddr("192.0.2.1")}
			w := httptest.NewRecorder()
			h(w, r, s)
			if w.Code != http.StatusNoContent {
				t.Fatalf("request %d: %d; the mirror changed the answer", i, w.Code)
			}
		}
		share := 100 * float64(picked) / float64(c.requests)
		if d := share - c.percent; d > c.tolerance || d < -c.tolerance {
			t.Errorf("percent %v: %d of %d requests copied (%.1f%%); want %v%% ± %v", c.percent, picked, c.requests, share, c.percent, c.tolerance)
		}
		// Every copy picked reaches the shadow, and nothing else does.
		deadline := time.Now().Add(waitLimit)
		for shadowHits.Load() < int64(picked) || m.Stats().Sent < int64(picked) {
			if time.Now().After(deadline) {
				t.Fatalf("percent %v: shadow got %d copies, stats %+v; want %d", c.percent, shadowHits.Load(), m.Stats(), picked)
			}
			time.Sleep(10 * time.Millisecond)
		}
		if st := m.Stats(); shadowHits.Load() != int64(picked) || st.Sent != int64(picked) || st.Dropped != 0 || st.Skipped != 0 || st.Failed != 0 {
			t.Errorf("percent %v: shadow got %d copies, stats %+v; want exactly the %d picked, none dropped, skipped or failed", c.percent, shadowHits.Load(), st, picked)
		}
		t.Logf("percent %v: %d of %d requests copied (%.1f%%)", c.percent, picked, c.requests, share)
	}
}
