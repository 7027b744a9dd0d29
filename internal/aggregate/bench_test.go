package aggregate

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/portunus-gw/portunus/internal/config"
	"github.com/portunus-gw/portunus/internal/pipeline"
	"github.com/portunus-gw/portunus/internal/upstream"
)

// The comparison the aggregate exists for: one client call to the
// gateway, which fans out to three backends, against the client making the
// three calls itself, one after the other. Backends answer after a fixed
// service time (0 and 2ms), as real services do.
func BenchmarkAggregateThree(b *testing.B) {
	for _, d := range []time.Duration{0, 2 * time.Millisecond} {
		b.Run("latency="+d.String(), func(b *testing.B) {
			_, pools := benchBackends(b, d)
			p, err := Compile(&config.Aggregate{Backends: []config.AggregateBackend{
				{Upstream: "b0", Path: "/x", As: "a"}, {Upstream: "b1", Path: "/x", As: "b"}, {Upstream: "b2", Path: "/x", As: "c"},
			}}, Options{Pools: pools})
			if err != nil {
				b.Fatal(err)
			}
			gw := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				p.Handler()(w, r, &pipeline.State{})
			}))
			defer gw.Close()
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
			defer client.CloseIdleConnections()
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				get(b, client, gw.URL+"/")
			}
		})
		b.Run("sequential-client/latency="+d.String(), func(b *testing.B) {
			urls, _ := benchBackends(b, d)
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
			defer client.CloseIdleConnections()
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				for _, u := range urls {
					get(b, client, u+"/x")
				}
			}
		})
	}
}

func get(b *testing.B, c *http.Client, u string) {
	res, err := c.Get(u)
	if err != nil {
		b.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, res.Body)
	res.Body.Close()
	if res.StatusCode != 200 {
		b.Fatalf("%s: status %d", u, res.StatusCode)
	}
}

func benchBackends(b *testing.B, d time.Duration) ([]string, map[string]*upstream.Pool) {
	var urls []string
	pools := map[string]*upstream.Pool{}
	for i, name := range []string{"b0", "b1", "b2"} {
		body := []byte(`{"id":` + string(rune('0'+i)) + `,"name":"backend","tags":["a","b"]}`)
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if d > 0 {
				time.Sleep(d)
			}
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write(body)
		}))
		b.Cleanup(srv.Close)
		pool, err := upstream.NewPool(config.Upstream{Name: name, Targets: []config.Target{{URL: srv.URL}}})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { pool.Close() })
		urls = append(urls, srv.URL)
		pools[name] = pool
	}
	return urls, pools
}
