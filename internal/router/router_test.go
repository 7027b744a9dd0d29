package router

import (
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"
)

// rt is shorthand for a route whose value is its name.
func rt(name string, r Route[string]) Route[string] {
	r.Value = name
	return r
}

func mustNew(t testing.TB, routes []Route[string]) *Router[string] {
	t.Helper()
	r, err := New(routes)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return r
}

// formatParams renders params as "a=1,b=2" for comparisons.
func formatParams(p *Params) string {
	var parts []string
	for i := 0; i < p.Len(); i++ {
		parts = append(parts, p.At(i).Name+"="+p.At(i).Value)
	}
	return strings.Join(parts, ",")
}

type matchCase struct {
	name   string
	routes []Route[string]
	req    Request
	want   Result
	value  string // winning route's name when Matched
	params string // formatParams of the match
	allow  string // comma-joined Allowed(req), checked when want is MethodNotAllowed
}

func runMatchCases(t *testing.T, cases []matchCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := mustNew(t, tc.routes)
			req := tc.req
			if req.Method == "" {
				req.Method = http.MethodGet
			}
			if req.Path == "" {
				req.Path = "/"
			}
			var m Match[string]
			m.Params.Add("stale", "value") // Match must reset it
			got := r.Match(&req, &m)
			if got != tc.want {
				t.Fatalf("Match(%s %s%s) = %v (route %q); want %v", req.Method, req.Host, req.Path, got, m.Value, tc.want)
			}
			if got != Matched {
				if m.Index != -1 || m.Value != "" || m.Params.Len() != 0 {
					t.Errorf("unmatched Match left Index %d, Value %q, %d params; want -1, \"\", 0", m.Index, m.Value, m.Params.Len())
				}
			} else {
				if m.Value != tc.value {
					t.Errorf("matched route %q; want %q", m.Value, tc.value)
				}
				if tc.routes[m.Index].Value != m.Value {
					t.Errorf("Index %d is route %q; want the index of %q", m.Index, tc.routes[m.Index].Value, m.Value)
				}
				if got := formatParams(&m.Params); got != tc.params {
					t.Errorf("params = %q; want %q", got, tc.params)
				}
			}
			if tc.want == MethodNotAllowed {
				if got := strings.Join(r.Allowed(&req), ","); got != tc.allow {
					t.Errorf("Allowed = %q; want %q", got, tc.allow)
				}
			}
		})
	}
}

func TestMatchHostTiers(t *testing.T) {
	t.Parallel()
	any := rt("any", Route[string]{})
	exact := rt("exact", Route[string]{Hosts: []string{"api.example.com"}})
	wild := rt("wild", Route[string]{Hosts: []string{"*.example.com"}})
	wildLong := rt("wild-long", Route[string]{Hosts: []string{"*.api.example.com"}})
	runMatchCases(t, []matchCase{
		{name: "exact beats wildcard and any", routes: []Route[string]{any, wild, exact}, req: Request{Host: "api.example.com"}, want: Matched, value: "exact"},
		{name: "wildcard beats any", routes: []Route[string]{any, wild}, req: Request{Host: "www.example.com"}, want: Matched, value: "wild"},
		{name: "any host when no host route fits", routes: []Route[string]{wild, any}, req: Request{Host: "other.org"}, want: Matched, value: "any"},
		{name: "wildcard spans several labels", routes: []Route[string]{wild}, req: Request{Host: "a.b.example.com"}, want: Matched, value: "wild"},
		{name: "wildcard never matches its apex", routes: []Route[string]{wild}, req: Request{Host: "example.com"}, want: NotFound},
		{name: "wildcard needs a label boundary", routes: []Route[string]{wild}, req: Request{Host: "badexample.com"}, want: NotFound},
		{name: "longer wildcard suffix wins", routes: []Route[string]{wild, wildLong}, req: Request{Host: "x.api.example.com"}, want: Matched, value: "wild-long"},
		{name: "shorter wildcard when the longer does not fit", routes: []Route[string]{wildLong, wild}, req: Request{Host: "x.www.example.com"}, want: Matched, value: "wild"},
		{name: "host with port", routes: []Route[string]{any, exact}, req: Request{Host: "api.example.com:8443"}, want: Matched, value: "exact"},
		{name: "host upper case", routes: []Route[string]{any, exact}, req: Request{Host: "API.Example.COM"}, want: Matched, value: "exact"},
		{name: "host trailing dot", routes: []Route[string]{any, exact}, req: Request{Host: "api.example.com."}, want: Matched, value: "exact"},
		{name: "wildcard with port, case and dot", routes: []Route[string]{any, wild}, req: Request{Host: "WWW.example.com.:80"}, want: Matched, value: "wild"},
		{name: "route hosts normalized", routes: []Route[string]{rt("upper", Route[string]{Hosts: []string{"API.Example.com."}})}, req: Request{Host: "api.example.com"}, want: Matched, value: "upper"},
		{name: "ipv6 literal", routes: []Route[string]{rt("v6", Route[string]{Hosts: []string{"[::1]"}})}, req: Request{Host: "[::1]:8080"}, want: Matched, value: "v6"},
		{name: "host route only: other host is 404", routes: []Route[string]{exact}, req: Request{Host: "other.example.org"}, want: NotFound},
		{
			name: "host tier beats path specificity",
			routes: []Route[string]{
				rt("any-exact-path", Route[string]{Path: "/x"}),
				rt("host-root-prefix", Route[string]{Hosts: []string{"api.example.com"}}),
			},
			req: Request{Host: "api.example.com", Path: "/x"}, want: Matched, value: "host-root-prefix",
		},
		{
			name: "several hosts: competes in the exact tier",
			routes: []Route[string]{
				rt("wild-exact-path", Route[string]{Hosts: []string{"*.example.com"}, Path: "/x"}),
				rt("both", Route[string]{Hosts: []string{"*.example.com", "api.example.com"}, PathPrefix: "/"}),
			},
			req: Request{Host: "api.example.com", Path: "/x"}, want: Matched, value: "both",
		},
		{
			name: "several hosts: competes in the wildcard tier",
			routes: []Route[string]{
				rt("both", Route[string]{Hosts: []string{"*.example.com", "api.example.com"}, PathPrefix: "/"}),
				rt("wild-exact-path", Route[string]{Hosts: []string{"*.example.com"}, Path: "/x"}),
			},
			req: Request{Host: "www.example.com", Path: "/x"}, want: Matched, value: "wild-exact-path",
		},
	})
}

func TestMatchPathSpecificity(t *testing.T) {
	t.Parallel()
	runMatchCases(t, []matchCase{
		{
			name:   "exact beats param",
			routes: []Route[string]{rt("param", Route[string]{Path: "/u/{id}"}), rt("exact", Route[string]{Path: "/u/me"})},
			req:    Request{Path: "/u/me"}, want: Matched, value: "exact",
		},
		{
			name:   "param beats two params",
			routes: []Route[string]{rt("ab", Route[string]{Path: "/{a}/{b}"}), rt("u-id", Route[string]{Path: "/u/{id}"})},
			req:    Request{Path: "/u/7"}, want: Matched, value: "u-id", params: "id=7",
		},
		{
			name:   "two params when the literal does not fit",
			routes: []Route[string]{rt("ab", Route[string]{Path: "/{a}/{b}"}), rt("u-id", Route[string]{Path: "/u/{id}"})},
			req:    Request{Path: "/v/7"}, want: Matched, value: "ab", params: "a=v,b=7",
		},
		{
			name:   "literal beats param position by position",
			routes: []Route[string]{rt("late-literals", Route[string]{Path: "/{a}/b/c"}), rt("early-literal", Route[string]{Path: "/u/{x}/{y}"})},
			req:    Request{Path: "/u/b/c"}, want: Matched, value: "early-literal", params: "x=b,y=c",
		},
		{
			name:   "param beats prefix",
			routes: []Route[string]{rt("prefix", Route[string]{PathPrefix: "/u"}), rt("param", Route[string]{Path: "/u/{id}"})},
			req:    Request{Path: "/u/7"}, want: Matched, value: "param", params: "id=7",
		},
		{
			name:   "longest prefix wins",
			routes: []Route[string]{rt("api", Route[string]{PathPrefix: "/api"}), rt("api-v1", Route[string]{PathPrefix: "/api/v1"}), rt("root", Route[string]{PathPrefix: "/"})},
			req:    Request{Path: "/api/v1/users"}, want: Matched, value: "api-v1",
		},
		{
			name:   "prefix matches itself",
			routes: []Route[string]{rt("api", Route[string]{PathPrefix: "/api"})},
			req:    Request{Path: "/api"}, want: Matched, value: "api",
		},
		{
			name:   "prefix matches with trailing slash",
			routes: []Route[string]{rt("api", Route[string]{PathPrefix: "/api"})},
			req:    Request{Path: "/api/"}, want: Matched, value: "api",
		},
		{
			name:   "prefix is whole segments",
			routes: []Route[string]{rt("api", Route[string]{PathPrefix: "/api"})},
			req:    Request{Path: "/api-internal"}, want: NotFound,
		},
		{
			name:   "prefix trailing slash ignored",
			routes: []Route[string]{rt("api", Route[string]{PathPrefix: "/api/"})},
			req:    Request{Path: "/api"}, want: Matched, value: "api",
		},
		{
			name:   "root prefix matches everything",
			routes: []Route[string]{rt("root", Route[string]{PathPrefix: "/"})},
			req:    Request{Path: "/a/b/c"}, want: Matched, value: "root",
		},
		{
			name:   "no path fields match everything",
			routes: []Route[string]{rt("all", Route[string]{})},
			req:    Request{Path: "/anything/at/all"}, want: Matched, value: "all",
		},
		{
			name:   "prefix beats regex",
			routes: []Route[string]{rt("regex", Route[string]{PathRegex: "^/api/"}), rt("prefix", Route[string]{PathPrefix: "/api"})},
			req:    Request{Path: "/api/x"}, want: Matched, value: "prefix",
		},
		{
			name:   "regex in file order",
			routes: []Route[string]{rt("first", Route[string]{PathRegex: "^/a"}), rt("second", Route[string]{PathRegex: "^/a/b$"})},
			req:    Request{Path: "/a/b"}, want: Matched, value: "first",
		},
		{
			name:   "regex named groups become params",
			routes: []Route[string]{rt("re", Route[string]{PathRegex: `^/files/(?P<dir>[^/]+)/(?P<name>.+)$`})},
			req:    Request{Path: "/files/docs/a/b.txt"}, want: Matched, value: "re", params: "dir=docs,name=a/b.txt",
		},
		{
			name:   "regex is unanchored unless written so",
			routes: []Route[string]{rt("re", Route[string]{PathRegex: `\.php`})},
			req:    Request{Path: "/x/index.php"}, want: Matched, value: "re",
		},
		{
			name:   "param values stay escaped",
			routes: []Route[string]{rt("param", Route[string]{Path: "/u/{id}"})},
			req:    Request{Path: "/u/a%2Fb"}, want: Matched, value: "param", params: "id=a%2Fb",
		},
		{
			name:   "param never matches an empty segment",
			routes: []Route[string]{rt("param", Route[string]{Path: "/u/{id}"})},
			req:    Request{Path: "/u/"}, want: NotFound,
		},
		{
			name:   "param path and trailing slash differ",
			routes: []Route[string]{rt("param", Route[string]{Path: "/u/{id}"})},
			req:    Request{Path: "/u/7/"}, want: NotFound,
		},
		{
			name:   "param path with trailing slash",
			routes: []Route[string]{rt("param", Route[string]{Path: "/u/{id}/"})},
			req:    Request{Path: "/u/7/"}, want: Matched, value: "param", params: "id=7",
		},
		{
			name:   "exact path and trailing slash differ",
			routes: []Route[string]{rt("exact", Route[string]{Path: "/a"})},
			req:    Request{Path: "/a/"}, want: NotFound,
		},
		{
			name:   "route path normalized",
			routes: []Route[string]{rt("cafe", Route[string]{Path: "/café"})},
			req:    Request{Path: "/caf%C3%A9"}, want: Matched, value: "cafe",
		},
		{
			name:   "route path dot segments resolved",
			routes: []Route[string]{rt("dots", Route[string]{Path: "/a/./b/../c/{id}"})},
			req:    Request{Path: "/a/c/1"}, want: Matched, value: "dots", params: "id=1",
		},
		{
			name:   "route prefix normalized",
			routes: []Route[string]{rt("p", Route[string]{PathPrefix: "//a/%7e"})},
			req:    Request{Path: "/a/~/x"}, want: Matched, value: "p",
		},
		{
			name:   "paths are case-sensitive",
			routes: []Route[string]{rt("lower", Route[string]{Path: "/api"})},
			req:    Request{Path: "/API"}, want: NotFound,
		},
		{
			name:   "literal segments compare escaped form",
			routes: []Route[string]{rt("esc", Route[string]{Path: "/a%2Fb/{id}"})},
			req:    Request{Path: "/a%2Fb/1"}, want: Matched, value: "esc", params: "id=1",
		},
		{
			name:   "params backtrack cleanly",
			routes: []Route[string]{rt("me-post", Route[string]{Path: "/u/me/{a}", Methods: []string{"POST"}}), rt("generic", Route[string]{Path: "/u/{id}/{b}"})},
			req:    Request{Path: "/u/me/z"}, want: Matched, value: "generic", params: "id=me,b=z",
		},
		{
			name:   "params named by the winning route",
			routes: []Route[string]{rt("post", Route[string]{Path: "/u/{id}", Methods: []string{"POST"}}), rt("get", Route[string]{Path: "/u/{name}", Methods: []string{"GET"}})},
			req:    Request{Path: "/u/5"}, want: Matched, value: "get", params: "name=5",
		},
		{
			name:   "more than eight params",
			routes: []Route[string]{rt("many", Route[string]{Path: "/{a}/{b}/{c}/{d}/{e}/{f}/{g}/{h}/{i}/{j}"})},
			req:    Request{Path: "/1/2/3/4/5/6/7/8/9/10"}, want: Matched, value: "many",
			params: "a=1,b=2,c=3,d=4,e=5,f=6,g=7,h=8,i=9,j=10",
		},
		{
			name:   "malformed request path is not found",
			routes: []Route[string]{rt("all", Route[string]{})},
			req:    Request{Path: "nope"}, want: NotFound,
		},
	})
}

func TestMatchMethodsHeadersAndOrdering(t *testing.T) {
	t.Parallel()
	post := rt("post", Route[string]{Path: "/x", Methods: []string{"POST"}})
	runMatchCases(t, []matchCase{
		{name: "method not allowed", routes: []Route[string]{post}, req: Request{Path: "/x"}, want: MethodNotAllowed, allow: "POST"},
		{name: "not found beats nothing", routes: []Route[string]{post}, req: Request{Path: "/y"}, want: NotFound},
		{name: "method matches", routes: []Route[string]{post}, req: Request{Path: "/x", Method: "POST"}, want: Matched, value: "post"},
		{name: "GET takes HEAD", routes: []Route[string]{rt("get", Route[string]{Methods: []string{"GET"}})}, req: Request{Method: "HEAD"}, want: Matched, value: "get"},
		{name: "HEAD does not take GET", routes: []Route[string]{rt("head", Route[string]{Methods: []string{"HEAD"}})}, req: Request{Method: "GET"}, want: MethodNotAllowed, allow: "HEAD"},
		{
			name:   "allow lists HEAD with GET, sorted and merged",
			routes: []Route[string]{rt("get", Route[string]{Path: "/x", Methods: []string{"GET", "PUT"}}), rt("p", Route[string]{PathPrefix: "/", Methods: []string{"PUT", "DELETE"}})},
			req:    Request{Path: "/x", Method: "PATCH"}, want: MethodNotAllowed, allow: "DELETE,GET,HEAD,PUT",
		},
		{name: "extension method", routes: []Route[string]{rt("purge", Route[string]{Methods: []string{"PURGE"}})}, req: Request{Method: "PURGE"}, want: Matched, value: "purge"},
		{name: "extension method refused", routes: []Route[string]{rt("purge", Route[string]{Methods: []string{"PURGE"}})}, req: Request{Method: "GET"}, want: MethodNotAllowed, allow: "PURGE"},
		{name: "unknown method against a GET route", routes: []Route[string]{rt("get", Route[string]{Methods: []string{"GET"}})}, req: Request{Method: "PURGE"}, want: MethodNotAllowed, allow: "GET,HEAD"},
		{name: "no methods takes any", routes: []Route[string]{rt("all", Route[string]{})}, req: Request{Method: "PROPFIND"}, want: Matched, value: "all"},
		{
			name:   "header matches",
			routes: []Route[string]{rt("mobile", Route[string]{Headers: map[string]string{"x-client": "mobile"}})},
			req:    Request{Header: http.Header{"X-Client": {"mobile"}}}, want: Matched, value: "mobile",
		},
		{
			name:   "header any of repeated values",
			routes: []Route[string]{rt("mobile", Route[string]{Headers: map[string]string{"X-Client": "mobile"}})},
			req:    Request{Header: http.Header{"X-Client": {"web", "mobile"}}}, want: Matched, value: "mobile",
		},
		{
			name:   "header value is exact",
			routes: []Route[string]{rt("mobile", Route[string]{Headers: map[string]string{"X-Client": "mobile"}})},
			req:    Request{Header: http.Header{"X-Client": {"Mobile"}}}, want: NotFound,
		},
		{
			name:   "header missing is not a 405",
			routes: []Route[string]{rt("mobile-post", Route[string]{Methods: []string{"POST"}, Headers: map[string]string{"X-Client": "mobile"}})},
			req:    Request{}, want: NotFound,
		},
		{
			name:   "header present, method wrong is a 405",
			routes: []Route[string]{rt("mobile-post", Route[string]{Methods: []string{"POST"}, Headers: map[string]string{"X-Client": "mobile"}})},
			req:    Request{Header: http.Header{"X-Client": {"mobile"}}}, want: MethodNotAllowed, allow: "POST",
		},
		{
			name:   "all headers must match",
			routes: []Route[string]{rt("two", Route[string]{Headers: map[string]string{"A": "1", "B": "2"}})},
			req:    Request{Header: http.Header{"A": {"1"}}}, want: NotFound,
		},
		{
			name:   "methods constraint beats none",
			routes: []Route[string]{rt("plain", Route[string]{Path: "/x"}), rt("get", Route[string]{Path: "/x", Methods: []string{"GET"}})},
			req:    Request{Path: "/x"}, want: Matched, value: "get",
		},
		{
			name:   "unconstrained still takes other methods",
			routes: []Route[string]{rt("plain", Route[string]{Path: "/x"}), rt("get", Route[string]{Path: "/x", Methods: []string{"GET"}})},
			req:    Request{Path: "/x", Method: "POST"}, want: Matched, value: "plain",
		},
		{
			name: "two headers beat methods alone",
			routes: []Route[string]{
				rt("methods", Route[string]{PathPrefix: "/api", Methods: []string{"GET"}}),
				rt("headers", Route[string]{PathPrefix: "/api", Headers: map[string]string{"A": "1", "B": "2"}}),
			},
			req: Request{Path: "/api/x", Header: http.Header{"A": {"1"}, "B": {"2"}}}, want: Matched, value: "headers",
		},
		{
			name: "constraints only order equally specific routes",
			routes: []Route[string]{
				rt("constrained-prefix", Route[string]{PathPrefix: "/api", Methods: []string{"GET"}, Headers: map[string]string{"A": "1"}}),
				rt("longer-prefix", Route[string]{PathPrefix: "/api/x"}),
			},
			req: Request{Path: "/api/x", Header: http.Header{"A": {"1"}}}, want: Matched, value: "longer-prefix",
		},
		{
			name:   "file order breaks ties",
			routes: []Route[string]{rt("first", Route[string]{Path: "/x", Methods: []string{"GET"}}), rt("second", Route[string]{Path: "/x", Methods: []string{"GET"}})},
			req:    Request{Path: "/x"}, want: Matched, value: "first",
		},
		{
			name:   "same regex ordered by constraints",
			routes: []Route[string]{rt("plain", Route[string]{PathRegex: "^/r"}), rt("get", Route[string]{PathRegex: "^/r", Methods: []string{"GET"}})},
			req:    Request{Path: "/r"}, want: Matched, value: "get",
		},
		{
			name:   "less specific full match beats a 405 in the same tier",
			routes: []Route[string]{rt("exact-post", Route[string]{Path: "/x", Methods: []string{"POST"}}), rt("prefix", Route[string]{PathPrefix: "/"})},
			req:    Request{Path: "/x"}, want: Matched, value: "prefix",
		},
		{
			name: "falls through to a less specific host tier",
			routes: []Route[string]{
				rt("host-post", Route[string]{Hosts: []string{"api.example.com"}, Path: "/x", Methods: []string{"POST"}}),
				rt("wild-put", Route[string]{Hosts: []string{"*.example.com"}, Path: "/x", Methods: []string{"PUT"}}),
				rt("any-get", Route[string]{Path: "/x", Methods: []string{"GET"}}),
			},
			req: Request{Host: "api.example.com", Path: "/x"}, want: Matched, value: "any-get",
		},
		{
			name: "405 across tiers lists every tier's methods",
			routes: []Route[string]{
				rt("host-post", Route[string]{Hosts: []string{"api.example.com"}, Path: "/x", Methods: []string{"POST"}}),
				rt("any-put", Route[string]{Path: "/x", Methods: []string{"PUT"}}),
			},
			req: Request{Host: "api.example.com", Path: "/x", Method: "DELETE"}, want: MethodNotAllowed, allow: "POST,PUT",
		},
		{
			name: "405 only from routes whose host matches",
			routes: []Route[string]{
				rt("host-post", Route[string]{Hosts: []string{"api.example.com"}, Path: "/x", Methods: []string{"POST"}}),
				rt("other-put", Route[string]{Hosts: []string{"other.example.com"}, Path: "/x", Methods: []string{"PUT"}}),
			},
			req: Request{Host: "api.example.com", Path: "/x"}, want: MethodNotAllowed, allow: "POST",
		},
	})
}

func TestNewErrors(t *testing.T) {
	t.Parallel()
	routes := []Route[string]{
		{Path: "/ok"},
		{Path: "/a", PathPrefix: "/b"},                  // 1 match
		{Path: "/u/x{id}"},                              // 2 match.path
		{Path: "/u/{id}/{id}"},                          // 3 match.path
		{Path: "relative"},                              // 4 match.path
		{PathPrefix: "/a/%zz"},                          // 5 match.path_prefix
		{PathRegex: "("},                                // 6 match.path_regex
		{Methods: []string{"get"}},                      // 7 match.methods
		{Headers: map[string]string{"bad header": "x"}}, // 8 match.headers
		{Hosts: []string{"*"}},                          // 9 match.hosts
		{Hosts: []string{"api.*.com"}},                  // 10 match.hosts
		{Hosts: []string{"api.example.com:80"}},         // 11 match.hosts
		{PathPrefix: "/a/{id}"},                         // 12 match.path_prefix
		{Path: "/{a}", Methods: []string{"G T"}, Hosts: []string{""}}, // 13 match.methods + match.hosts
		{Path: "/{a}/%7B"}, // 14 match.path
		{Headers: map[string]string{"x-a": "1", "X-A": "2"}}, // 15 match.headers
	}
	_, err := New(routes)
	if err == nil {
		t.Fatal("New accepted invalid routes")
	}
	var got []string
	for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
		var be *BuildError
		if !errors.As(e, &be) {
			t.Fatalf("error %v is not a *BuildError", e)
		}
		if !strings.HasPrefix(be.Error(), "routes[") {
			t.Errorf("Error() = %q; want it to start with the route's path", be.Error())
		}
		got = append(got, be.Field+"@"+string(rune('0'+be.Index/10))+string(rune('0'+be.Index%10)))
	}
	slices.Sort(got)
	want := []string{
		"match.headers.bad header@08", "match.headers@15", "match.hosts[0]@09", "match.hosts[0]@10", "match.hosts[0]@11", "match.hosts[0]@13",
		"match.methods[0]@07", "match.methods[0]@13", "match.path@02", "match.path@03", "match.path@04", "match.path@14",
		"match.path_prefix@05", "match.path_prefix@12", "match.path_regex@06", "match@01",
	}
	if !slices.Equal(got, want) {
		t.Errorf("errors = %v;\nwant %v", got, want)
	}
}

func TestNewEmpty(t *testing.T) {
	t.Parallel()
	r := mustNew(t, nil)
	var m Match[string]
	if got := r.Match(&Request{Host: "a", Path: "/", Method: "GET"}, &m); got != NotFound {
		t.Errorf("Match on an empty router = %v; want %v", got, NotFound)
	}
	if got := r.Allowed(&Request{Path: "/"}); len(got) != 0 {
		t.Errorf("Allowed on an empty router = %v; want none", got)
	}
}
