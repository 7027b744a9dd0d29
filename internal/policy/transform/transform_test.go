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

// Answers not labelled JSON fail closed: a body that starts like JSON is
// filtered (or refused when it cannot be parsed) whatever its label;
// anything else passes untouched.
func TestUnlabelledJSONIsFiltered(t *testing.T) {
	t.Parallel()
	p, _ := CompileResponse(&config.ResponseTransform{Deny: []string{"secret"}})
	filtered := []struct{ desc, ct, body, want string }{
		{"text/plain", "text/plain", `{"secret":"s","id":1}`, `{"id":1}`},
		{"no Content-Type, leading whitespace", "", " \n\t" + `[{"secret":"s","id":1}]`, `[{"id":1}]`},
		{"octet-stream with a byte order mark", "application/octet-stream", "\xEF\xBB\xBF" + `{"secret":"s"}`, `{}`},
		{"html error page holding JSON", "text/html", `{"secret":"s","error":"e"}`, `{"error":"e"}`},
	}
	for _, tc := range filtered {
		w := respond(p, "GET", jsonAction(200, tc.ct, tc.body))
		if w.Code != 200 || w.Body.String() != tc.want || strings.Contains(w.Body.String(), "secret") {
			t.Errorf("%s: %d %q; want 200 %s", tc.desc, w.Code, w.Body, tc.want)
		}
		if w.Header().Get("Etag") != "" || w.Header().Get("Content-Length") != itoa(len(tc.want)) {
			t.Errorf("%s: Etag %q Content-Length %q; want none and %d", tc.desc, w.Header().Get("Etag"), w.Header().Get("Content-Length"), len(tc.want))
		}
		if w.Header().Get("Content-Type") != tc.ct {
			t.Errorf("%s: Content-Type %q; want the upstream's %q kept", tc.desc, w.Header().Get("Content-Type"), tc.ct)
		}
	}
	refused := []struct{ desc, ct, body string }{
		{"JSON lines", "text/plain", `{"secret":"a"}` + "\n" + `{"secret":"b"}`},
		{"truncated JSON", "text/plain", `{"id":1,"secret":"s"`},
		{"text starting with a bracket", "text/plain", "[INFO] secret=s"},
	}
	for _, tc := range refused {
		w := respond(p, "GET", jsonAction(200, tc.ct, tc.body))
		if w.Code != 502 || strings.Contains(w.Body.String(), "secret=") || !strings.Contains(w.Body.String(), "starts like JSON") {
			t.Errorf("%s: %d %s; want 502 saying it starts like JSON, without the body", tc.desc, w.Code, w.Body)
		}
	}
	passed := []struct{ desc, ct, body string }{
		{"text", "text/plain", `secret: {"secret":"s"}`},
		{"HTML", "text/html", "<p>{\"secret\":1}</p>"},
		{"a JSON string is not an object", "text/plain", `"secret"`},
		{"whitespace only", "text/plain", "  \n"},
	}
	for _, tc := range passed {
		w := respond(p, "GET", jsonAction(200, tc.ct, tc.body))
		if w.Code != 200 || w.Body.String() != tc.body || w.Header().Get("Etag") != `"v1"` {
			t.Errorf("%s: %d %q etag %q; want the body and headers untouched", tc.desc, w.Code, w.Body, w.Header().Get("Etag"))
		}
	}
	// No body at all (HEAD, or an empty answer): status and headers pass.
	w := respond(p, "HEAD", jsonAction(200, "text/plain", ""))
	if w.Code != 200 || w.Header().Get("Etag") != `"v1"` {
		t.Errorf("HEAD: %d etag %q; want 200 with headers untouched", w.Code, w.Header().Get("Etag"))
	}
	// A compressed answer cannot be sniffed: refused (the filter asked
	// the upstream for identity).
	gz := func(w http.ResponseWriter, r *http.Request, s *pipeline.State) {
		w.Header().Set("Content-Type", "text/plain")
		w.Header().Set("Content-Encoding", "gzip")
		_, _ = w.Write([]byte("\x1f\x8b\x08..."))
	}
	if w := respond(p, "GET", gz); w.Code != 502 || !strings.Contains(w.Body.String(), "compressed") {
		t.Errorf("compressed text/plain: %d %s; want 502 saying compressed", w.Code, w.Body)
	}
	// Without a filter nothing is sniffed.
	plain, _ := CompileResponse(&config.ResponseTransform{StatusMap: map[string]int{"500": 503}})
	if w := respond(plain, "GET", jsonAction(200, "text/plain", `{"secret":"s"}`)); w.Body.String() != `{"secret":"s"}` {
		t.Errorf("no filter: body %q; want it untouched", w.Body)
	}
}

// Once the first body byte shows an answer is not JSON, it streams: bytes
// and flushes reach the client before the action returns. Event streams
// are never held.
func TestNonJSONStreams(t *testing.T) {
	t.Parallel()
	p, _ := CompileResponse(&config.ResponseTransform{Allow: []string{"id"}})
	for _, ct := range []string{"text/plain", "text/event-stream"} {
		w := httptest.NewRecorder()
		var seen string
		var flushed bool
		action := func(rw http.ResponseWriter, r *http.Request, s *pipeline.State) {
			rw.Header().Set("Content-Type", ct)
			rw.WriteHeader(200)
			_, _ = rw.Write([]byte("data: one\n\n"))
			rw.(http.Flusher).Flush()
			seen, flushed = w.Body.String(), w.Flushed
			_, _ = rw.Write([]byte("data: two\n\n"))
		}
		p.Middleware()(action)(w, httptest.NewRequest("GET", "/", nil), &pipeline.State{})
		if seen != "data: one\n\n" || !flushed {
			t.Errorf("%s: before the action returned the client had %q (flushed %v); want the first event, flushed", ct, seen, flushed)
		}
		if w.Body.String() != "data: one\n\ndata: two\n\n" {
			t.Errorf("%s: body %q; want both events untouched", ct, w.Body)
		}
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
