package gateway

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

// BenchmarkGatewayAPIKeyRateLimit is one route answering with `respond`,
// measured plain, with API-key auth, with a never-reached rate limit by
// consumer, and with both (the performance target's route). Metrics are
// on, as in production. The policies' cost per request is the difference
// between a row and "plain"; run with -benchmem (allocations are exact,
// times need several -count runs on a shared machine).
func BenchmarkGatewayAPIKeyRateLimit(b *testing.B) {
	const head = `
listeners: [{ address: "127.0.0.1:0" }]
consumers:
  - { name: alice, roles: [reader], api_keys: ["alice-bench-key-0123456789"] }
routes:
  - name: users
    match: { path: "/users/{id}", methods: [GET] }
    respond: { body: "ok" }
`
	for _, bc := range []struct {
		name, route string
	}{
		{"plain", ``},
		{"apikey", `    auth: [api_key]
`},
		{"ratelimit-ip", `    rate_limits: [{ limit: 1000000000, window: 1s, by: ip }]
`},
		{"apikey+ratelimit-consumer", `    auth: [api_key]
    rate_limits: [{ limit: 1000000000, window: 1s, by: consumer }]
`},
	} {
		b.Run(bc.name, func(b *testing.B) {
			g := benchGateway(b, head+bc.route, true)
			r := httptest.NewRequest("GET", "http://api.example.com/users/42", nil)
			r.RemoteAddr = "127.0.0.1:5555"
			r.Header.Set("User-Agent", "bench")
			w := &nopWriter{h: http.Header{}}
			key := []string{"alice-bench-key-0123456789"}
			// A first request proves the route is set up as meant.
			r.Header["X-Api-Key"] = key
			rec := httptest.NewRecorder()
			g.ServeHTTP(rec, r)
			if rec.Code != http.StatusOK || rec.Body.String() != "ok" {
				b.Fatalf("status %d, body %q", rec.Code, rec.Body)
			}
			if limited := rec.Header().Get("RateLimit") != ""; limited != (bc.name != "plain" && bc.name != "apikey") {
				b.Fatalf("RateLimit header %q on %s", rec.Header().Get("RateLimit"), bc.name)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				clear(w.h)
				// hide_credentials (the default) removes the key: put it back.
				r.Header["X-Api-Key"] = key
				g.ServeHTTP(w, r)
			}
		})
	}
}
