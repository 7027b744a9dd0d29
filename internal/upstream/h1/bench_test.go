package h1

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"syscall"
	"testing"
	"time"
)

// cpuNanos is the process's user+system CPU time so far: on a shared
// machine, CPU per request is steadier than wall time per request.
func cpuNanos() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}

// BenchmarkRoundTrip compares the h1 client with the stdlib transport
// (tuned as the upstream pools tune it) over loopback, against the same
// in-process upstream answering 100 bytes of JSON. Both sides' CPU is in
// the process; the difference between the two rows is the client's.
// cpu-ns/op is CPU time per request, allocs/op the client's and the
// upstream server's together.
func BenchmarkRoundTrip(b *testing.B) {
	body := []byte(`{"id":1,"name":"bench","items":[1,2,3,4,5,6,7,8,9,10],"ok":true,"pad":"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"}`)[:100]
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h["Content-Type"] = []string{"application/json"}
		w.Write(body)
	}))
	defer up.Close()
	stdlib := func() http.RoundTripper {
		return &http.Transport{
			DialContext:         (&net.Dialer{Timeout: 2 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			MaxIdleConnsPerHost: 1024, IdleConnTimeout: 90 * time.Second,
			ResponseHeaderTimeout: 30 * time.Second, DisableCompression: true,
		}
	}
	for _, bc := range []struct {
		name string
		rt   func() http.RoundTripper
	}{
		{"stdlib", stdlib},
		{"h1", func() http.RoundTripper {
			return New(Options{Fallback: stdlib(), ResponseHeaderTimeout: 30 * time.Second})
		}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			rt := bc.rt()
			defer rt.(interface{ CloseIdleConnections() }).CloseIdleConnections()
			b.ReportAllocs()
			b.SetParallelism(4)
			start := cpuNanos()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				buf := make([]byte, 512)
				for pb.Next() {
					req, _ := http.NewRequest(http.MethodGet, up.URL+"/x", nil)
					req.Header["User-Agent"] = []string{"bench"}
					res, err := rt.RoundTrip(req)
					if err != nil {
						b.Error(err)
						return
					}
					for {
						if _, err := res.Body.Read(buf); err != nil {
							if err != io.EOF {
								b.Error(err)
							}
							break
						}
					}
					res.Body.Close()
				}
			})
			b.StopTimer()
			b.ReportMetric(float64(cpuNanos()-start)/float64(b.N), "cpu-ns/op")
		})
	}
}
