package aggregate

import (
	"context"
	"encoding/json"
	"net/http"
	"reflect"
	"testing"
)

func TestTransformationsExample(t *testing.T) {
	t.Parallel()
	accounts, saw := recorder(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Server", "internal/1.0")
		w.Header().Set("X-Internal-Host", "db-7")
		switch r.URL.Path {
		case "/internal/accounts/missing":
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(404)
			_, _ = w.Write([]byte(`{"error":"no such account"}`))
		case "/internal/accounts/report.txt":
			w.Header().Set("Content-Type", "text/plain")
			_, _ = w.Write([]byte(`password_hash stays in text answers`))
		case "/internal/search":
			jsonAnswer(`{"results":[{"id":1,"name":"a","score":0.3},{"id":2,"name":"b","score":0.9}],"total":2,"took_ms":4}`)(w, r)
		default:
			jsonAnswer(`{"id":7,"name":"Ann","password_hash":"$2a$...","internal":{"shard":3},"owner":{"login":"ann","email":"ann@example.com"}}`)(w, r)
		}
	})
	base := startExample(t, "transformations.yaml", map[string]string{"http://127.0.0.1:9301": accounts.URL})
	ctx := context.Background()

	r := do(t, ctx, "GET", base+"/api/v1/accounts/7?q=x&debug=1", "X-Trace: t-1", "Cookie: session=abc")
	if r.status != 200 {
		t.Fatalf("status %d body %s", r.status, r.body)
	}
	var got map[string]any
	_ = json.Unmarshal(r.body, &got)
	want := map[string]any{"id": 7.0, "name": "Ann", "owner": map[string]any{"login": "ann"}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("filtered answer %v; want %v", got, want)
	}
	if r.header.Get("Server") != "" || r.header.Get("X-Internal-Host") != "" {
		t.Errorf("internal headers reached the client: %v", r.header)
	}
	s := next(t, saw, "accounts")
	if s.Path != "/internal/accounts/7" || s.Query != "search=x&source=gateway&trace=t-1" || s.Header.Get("Cookie") != "" || s.Header.Get("X-Route") != "accounts" {
		t.Errorf("upstream saw %s?%s headers %v; want /internal/accounts/7?search=x&source=gateway&trace=t-1, X-Route, no Cookie", s.Path, s.Query, s.Header)
	}

	if r := do(t, ctx, "GET", base+"/api/v1/accounts/missing"); r.status != 204 || len(r.body) != 0 {
		t.Errorf("404 mapped: %d %q; want 204 with no body", r.status, r.body)
	}
	next(t, saw, "accounts")
	if r := do(t, ctx, "GET", base+"/api/v1/accounts/report.txt"); r.status != 200 || string(r.body) != "password_hash stays in text answers" {
		t.Errorf("non-JSON: %d %q; want it untouched", r.status, r.body)
	}
	next(t, saw, "accounts")

	r = do(t, ctx, "GET", base+"/search?term=a")
	if s := next(t, saw, "accounts"); s.Method != "POST" || s.Path != "/internal/search" || s.Query != "term=a" {
		t.Errorf("legacy search reached the service as %s %s?%s; want POST /internal/search?term=a", s.Method, s.Path, s.Query)
	}
	got = nil
	_ = json.Unmarshal(r.body, &got)
	want = map[string]any{"results": []any{map[string]any{"id": 1.0, "name": "a"}, map[string]any{"id": 2.0, "name": "b"}}, "total": 2.0}
	if r.status != 200 || !reflect.DeepEqual(got, want) {
		t.Errorf("allow-listed answer %d %v; want %v", r.status, got, want)
	}
}
