package transform

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"

	"github.com/portunus-gw/portunus/internal/config"
	"github.com/portunus-gw/portunus/internal/pipeline"
)

func TestRequestTransform(t *testing.T) {
	t.Parallel()
	p, err := CompileRequest(
		&config.Rewrite{Regex: "^/api/v1/(.*)$", Replace: "/internal/$1"},
		&config.RequestTransform{Method: "POST", Query: &config.QueryRules{
			Rename: map[string]string{"q": "search"},
			Remove: []string{"debug"},
			Set:    map[string]string{"tenant": "{consumer}", "id": "{param.id}"},
			Add:    map[string]string{"tag": "{header.X-Tag}"},
		}}, []string{"id"})
	if err != nil {
		t.Fatal(err)
	}
	var gotMethod, gotPath, gotQuery string
	h := p.Middleware()(func(w http.ResponseWriter, r *http.Request, s *pipeline.State) {
		gotMethod, gotPath, gotQuery = r.Method, s.Path, r.URL.RawQuery
	})
	r := httptest.NewRequest("GET", "/api/v1/users/7?q=a+b&debug=1&tag=x&tenant=evil", nil)
	r.Header.Set("X-Tag", "y&z")
	s := &pipeline.State{Path: "/api/v1/users/7", Consumer: "alice"}
	s.Params.Add("id", "7")
	h(httptest.NewRecorder(), r, s)
	if gotMethod != "POST" || gotPath != "/internal/users/7" {
		t.Errorf("method %s path %s; want POST /internal/users/7", gotMethod, gotPath)
	}
	if want := "id=7&search=a+b&tag=x&tag=y%26z&tenant=alice"; gotQuery != want {
		t.Errorf("query %q; want %q", gotQuery, want)
	}
	if r.Method != "GET" || r.URL.RawQuery != "q=a+b&debug=1&tag=x&tenant=evil" {
		t.Errorf("the client's request was modified: %s ?%s", r.Method, r.URL.RawQuery)
	}
}

func TestNothingToDoIsNil(t *testing.T) {
	t.Parallel()
	if p, err := CompileRequest(&config.Rewrite{StripPrefix: "/x"}, nil, nil); p != nil || err != nil {
		t.Errorf("got %v, %v; want nil plan for a rewrite without regex", p, err)
	}
}

func respond(p *ResponsePlan, method string, action pipeline.Handler) *httptest.ResponseRecorder {
	w := httptest.NewRecorder()
	p.Middleware()(action)(w, httptest.NewRequest(method, "/", nil), &pipeline.State{RequestID: "r1"})
	return w
}

func jsonAction(status int, ct, body string) pipeline.Handler {
	return func(w http.ResponseWriter, r *http.Request, s *pipeline.State) {
		if ct != "" {
			w.Header().Set("Content-Type", ct)
		}
		w.Header().Set("Etag", `"v1"`)
		w.WriteHeader(status)
		// Written in two pieces, as a streamed upstream body arrives.
		_, _ = w.Write([]byte(body[:len(body)/2]))
		_, _ = w.Write([]byte(body[len(body)/2:]))
	}
}

const doc = `{"id":1,"name":"n","password_hash":"h","owner":{"login":"o","email":"e"},"items":[{"a":1,"b":2},{"a":3,"b":4}]}`

func TestFieldFilters(t *testing.T) {
	t.Parallel()
	cases := []struct {
		desc string
		c    config.ResponseTransform
		want string
	}{
		{"allow", config.ResponseTransform{Allow: []string{"id", "owner.login", "items.a", "missing.x"}},
			`{"id":1,"items":[{"a":1},{"a":3}],"owner":{"login":"o"}}`},
		{"deny", config.ResponseTransform{Deny: []string{"password_hash", "owner.email", "items.b"}},
			`{"id":1,"items":[{"a":1},{"a":3}],"name":"n","owner":{"login":"o"}}`},
	}
	for _, tc := range cases {
		p, err := CompileResponse(&tc.c)
		if err != nil {
			t.Fatal(err)
		}
		w := respond(p, "GET", jsonAction(200, "application/json; charset=utf-8", doc))
		if w.Code != 200 || w.Body.String() != tc.want {
			t.Errorf("%s: %d %s; want 200 %s", tc.desc, w.Code, w.Body, tc.want)
		}
		if cl := w.Header().Get("Content-Length"); cl != itoa(len(tc.want)) {
			t.Errorf("%s: Content-Length %q; want %d", tc.desc, cl, len(tc.want))
		}
		if w.Header().Get("Etag") != "" {
			t.Errorf("%s: Etag kept on a changed body", tc.desc)
		}
	}
}

func itoa(n int) string { b, _ := json.Marshal(n); return string(b) }

func TestNonJSONPassesUntouched(t *testing.T) {
	t.Parallel()
	p, _ := CompileResponse(&config.ResponseTransform{Deny: []string{"secret"}})
	body := `{"secret":"looks like JSON but is text/plain"}`
	w := respond(p, "GET", jsonAction(200, "text/plain", body))
	if w.Body.String() != body || w.Header().Get("Etag") != `"v1"` {
		t.Errorf("got %q etag %q; want the body and headers untouched", w.Body, w.Header().Get("Etag"))
	}
}

func TestFilterRefusesWhatItCannotFilter(t *testing.T) {
	t.Parallel()
	p, _ := CompileResponse(&config.ResponseTransform{Deny: []string{"secret"}, MaxBodyBytes: 64})
	cases := []struct {
		desc, body, want string
	}{
		{"too large", `{"secret":"` + strings.Repeat("x", 100) + `"}`, "larger than 64 bytes"},
		{"invalid JSON", `{"secret":`, "not valid JSON"},
	}
	for _, tc := range cases {
		w := respond(p, "GET", jsonAction(200, "application/json", tc.body))
		if w.Code != 502 || !strings.Contains(w.Body.String(), tc.want) || strings.Contains(w.Body.String(), "xxxx") {
			t.Errorf("%s: %d %s; want 502 saying %q and no upstream bytes", tc.desc, w.Code, w.Body, tc.want)
		}
		if ct := w.Header().Get("Content-Type"); ct != "application/problem+json" {
			t.Errorf("%s: Content-Type %q", tc.desc, ct)
		}
	}
}

func TestStatusMap(t *testing.T) {
	t.Parallel()
	p, err := CompileResponse(&config.ResponseTransform{StatusMap: map[string]int{"404": 204, "500": 503}})
	if err != nil {
		t.Fatal(err)
	}
	w := respond(p, "GET", jsonAction(404, "application/json", `{"error":"nope"}`))
	if w.Code != 204 || w.Body.Len() != 0 || w.Header().Get("Content-Type") != "" {
		t.Errorf("404->204: %d %q ct %q; want 204 with no body", w.Code, w.Body, w.Header().Get("Content-Type"))
	}
	w = respond(p, "GET", jsonAction(500, "text/plain", "boom"))
	if w.Code != 503 || w.Body.String() != "boom" {
		t.Errorf("500->503: %d %q; want 503 boom", w.Code, w.Body)
	}
	w = respond(p, "GET", jsonAction(200, "text/plain", "ok"))
	if w.Code != 200 {
		t.Errorf("unmapped 200 became %d", w.Code)
	}
}

func TestKeepAndDropShapes(t *testing.T) {
	t.Parallel()
	var v any
	_ = json.Unmarshal([]byte(`[{"a":{"b":1,"c":2}},{"a":[{"b":3,"c":4}]},5]`), &v)
	got := keep(v, [][]string{{"a", "b"}})
	want := []any{map[string]any{"a": map[string]any{"b": 1.0}}, map[string]any{"a": []any{map[string]any{"b": 3.0}}}, nil}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("keep a.b: got %v; want %v", got, want)
	}
}

// A filter asks the upstream for an uncompressed answer, which it can read;
// the client's own request keeps its header.
func TestFilterAsksForIdentity(t *testing.T) {
	t.Parallel()
	p, _ := CompileResponse(&config.ResponseTransform{Deny: []string{"x"}})
	var sent []string
	h := p.Middleware()(func(w http.ResponseWriter, r *http.Request, s *pipeline.State) {
		sent = r.Header["Accept-Encoding"]
		jsonAction(200, "application/json", `{"x":1,"y":2}`)(w, r, s)
	})
	r := httptest.NewRequest("GET", "/", nil)
	r.Header.Set("Accept-Encoding", "gzip, br")
	w := httptest.NewRecorder()
	h(w, r, &pipeline.State{})
	if sent != nil || r.Header.Get("Accept-Encoding") != "gzip, br" {
		t.Errorf("upstream asked with Accept-Encoding %q, client's now %q; want none upstream, client's untouched", sent, r.Header.Get("Accept-Encoding"))
	}
	if w.Body.String() != `{"y":2}` {
		t.Errorf("body %q; want {\"y\":2}", w.Body)
	}
}
