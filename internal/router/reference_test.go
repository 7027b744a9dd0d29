package router

import (
	"cmp"
	"math/rand/v2"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
)

// refMatch is a deliberately naive matcher written straight from the
// contract: rank every route that matches host and path, sort, take the
// first that matches headers and method. Routes must be given in
// normalized form (it does not normalize them). Match must agree with it.
func refMatch(routes []Route[string], req *Request) (Result, int, string) {
	type cand struct {
		idx                 int
		tier, kind, special int
		pattern             []bool // param pattern: true = param
		constraints         int
	}
	host := NormalizeHost(req.Host)
	var cands []cand
	for i, r := range routes {
		tier := -1
		if len(r.Hosts) == 0 {
			tier = 1 << 20
		}
		for _, h := range r.Hosts {
			h = NormalizeHost(h)
			switch {
			case h == host:
				tier = 0
			case strings.HasPrefix(h, "*.") && len(host) > len(h)-1 && strings.HasSuffix(host, h[1:]):
				if t := 1000 - len(h); tier < 0 || t < tier {
					tier = t
				}
			}
		}
		if tier < 0 {
			continue
		}
		c := cand{idx: i, tier: tier, constraints: len(r.Headers)}
		if len(r.Methods) > 0 {
			c.constraints++
		}
		switch {
		case r.Path != "" && !strings.Contains(r.Path, "{"):
			if r.Path != req.Path {
				continue
			}
			c.kind = 0
		case r.Path != "":
			ps, qs := strings.Split(r.Path, "/"), strings.Split(req.Path, "/")
			if len(ps) != len(qs) {
				continue
			}
			ok := true
			for j := range ps {
				isParam := strings.HasPrefix(ps[j], "{")
				c.pattern = append(c.pattern, isParam)
				if isParam && qs[j] == "" || !isParam && ps[j] != qs[j] {
					ok = false
				}
			}
			if !ok {
				continue
			}
			c.kind = 1
		case r.PathRegex != "":
			if !refRegexp(r.PathRegex).MatchString(req.Path) {
				continue
			}
			c.kind = 3
			c.special = slices.IndexFunc(routes, func(o Route[string]) bool { return o.PathRegex == r.PathRegex })
		default:
			pre := strings.TrimSuffix(r.PathPrefix, "/")
			if pre != "" && req.Path != pre && !strings.HasPrefix(req.Path, pre+"/") {
				continue
			}
			c.kind = 2
			c.special = -len(pre)
		}
		cands = append(cands, c)
	}
	slices.SortStableFunc(cands, func(a, b cand) int {
		if c := cmp.Or(cmp.Compare(a.tier, b.tier), cmp.Compare(a.kind, b.kind), cmp.Compare(a.special, b.special)); c != 0 {
			return c
		}
		for j := range min(len(a.pattern), len(b.pattern)) {
			if a.pattern[j] != b.pattern[j] {
				if !a.pattern[j] {
					return -1
				}
				return 1
			}
		}
		return cmp.Or(cmp.Compare(b.constraints, a.constraints), cmp.Compare(a.idx, b.idx))
	})
	mismatch := false
	for _, c := range cands {
		r := routes[c.idx]
		ok := true
		for name, v := range r.Headers {
			if !slices.Contains(req.Header.Values(name), v) {
				ok = false
			}
		}
		if !ok {
			continue
		}
		if len(r.Methods) > 0 && !slices.Contains(r.Methods, req.Method) &&
			!(req.Method == http.MethodHead && slices.Contains(r.Methods, http.MethodGet)) {
			mismatch = true
			continue
		}
		var params []string
		if c.kind == 1 {
			qs := strings.Split(req.Path, "/")
			for j, seg := range strings.Split(r.Path, "/") {
				if strings.HasPrefix(seg, "{") {
					params = append(params, seg[1:len(seg)-1]+"="+qs[j])
				}
			}
		}
		if c.kind == 3 {
			re := refRegexp(r.PathRegex)
			sub := re.FindStringSubmatchIndex(req.Path)
			for j, name := range re.SubexpNames() {
				if name != "" && sub[2*j] >= 0 {
					params = append(params, name+"="+req.Path[sub[2*j]:sub[2*j+1]])
				}
			}
		}
		return Matched, c.idx, strings.Join(params, ",")
	}
	if mismatch {
		return MethodNotAllowed, -1, ""
	}
	return NotFound, -1, ""
}

var refRegexps sync.Map // pattern -> *regexp.Regexp

func refRegexp(pattern string) *regexp.Regexp {
	if re, ok := refRegexps.Load(pattern); ok {
		return re.(*regexp.Regexp)
	}
	re := regexp.MustCompile(pattern)
	refRegexps.Store(pattern, re)
	return re
}

// refRoutes is a router exercising every kind of rule at once.
var refRoutes = []Route[string]{
	{Value: "r0", Path: "/u/me"},
	{Value: "r1", Path: "/u/{id}", Methods: []string{"GET"}},
	{Value: "r2", Path: "/u/{id}", Methods: []string{"POST"}, Headers: map[string]string{"X-A": "1"}},
	{Value: "r3", Path: "/{a}/{b}"},
	{Value: "r4", Path: "/{a}/me/{c}", Methods: []string{"PUT"}},
	{Value: "r5", Path: "/u/{id}/me", Methods: []string{"DELETE"}},
	{Value: "r6", PathPrefix: "/api", Methods: []string{"GET", "PUT"}},
	{Value: "r7", PathPrefix: "/api/v1", Methods: []string{"GET", "POST"}},
	{Value: "r8", PathPrefix: "/api/v1", Headers: map[string]string{"X-A": "1"}},
	{Value: "r9", PathRegex: `^/api/v1/(?P<rest>.*)$`},
	{Value: "r10", PathRegex: `me`, Methods: []string{"PATCH"}},
	{Value: "r11", Hosts: []string{"api.example.com"}, Path: "/u/me", Methods: []string{"POST"}},
	{Value: "r12", Hosts: []string{"*.example.com"}, PathPrefix: "/api", Methods: []string{"DELETE"}},
	{Value: "r13", Hosts: []string{"*.a.example.com", "b.example.com"}, Path: "/{x}"},
	{Value: "r14", Hosts: []string{"api.example.com"}, PathPrefix: "/", Headers: map[string]string{"X-B": "2"}},
	{Value: "r15", PathPrefix: "/me", Methods: []string{"GET"}},
	{Value: "r16", Path: "/u/{id}/", Methods: []string{"GET"}},
	{Value: "r17", PathRegex: `^/x/(?P<n>[0-9]+)`, Methods: []string{"GET"}},
	{Value: "r18", PathRegex: `^/x/`},
	{Value: "r19", Hosts: []string{"b.example.com"}, PathRegex: `^/`, Methods: []string{"OPTIONS"}},
}

var (
	refSegments = []string{"u", "me", "api", "v1", "x", "7", "", "%2F", "a"}
	refHosts    = []string{"", "api.example.com", "API.example.com:80", "b.example.com", "z.a.example.com", "a.example.com", "example.com", "www.example.com.", "other.org"}
	refMethods  = []string{"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "PURGE"}
)

// checkAgainstRef compares Match and Allowed with refMatch for one
// request and returns Match's result and route index.
func checkAgainstRef(t *testing.T, r *Router[string], req *Request) (Result, int) {
	t.Helper()
	var m Match[string]
	got := r.Match(req, &m)
	want, wantIdx, wantParams := refMatch(refRoutes, req)
	if got != want || m.Index != wantIdx || formatParams(&m.Params) != wantParams {
		t.Fatalf("Match(%s %s %s %v) = %v, route %d, params %q; want %v, route %d, params %q",
			req.Method, req.Host, req.Path, req.Header, got, m.Index, formatParams(&m.Params), want, wantIdx, wantParams)
	}
	if got == MethodNotAllowed {
		allowed := r.Allowed(req)
		if len(allowed) == 0 || slices.Contains(allowed, req.Method) {
			t.Fatalf("Allowed(%s %s %s) = %v; want a non-empty list without the method", req.Method, req.Host, req.Path, allowed)
		}
	}
	return got, m.Index
}

func TestMatchAgreesWithReference(t *testing.T) {
	t.Parallel()
	r := mustNew(t, refRoutes)
	rnd := rand.New(rand.NewPCG(1, 2))
	results := map[Result]int{}
	wins := make([]int, len(refRoutes))
	for range 10000 {
		var sb strings.Builder
		for range 1 + rnd.IntN(4) {
			sb.WriteByte('/')
			sb.WriteString(refSegments[rnd.IntN(len(refSegments))])
		}
		path, _, err := Normalize(sb.String())
		if err != nil {
			t.Fatalf("Normalize(%q): %v", sb.String(), err)
		}
		req := &Request{
			Host:   refHosts[rnd.IntN(len(refHosts))],
			Path:   path,
			Method: refMethods[rnd.IntN(len(refMethods))],
			Header: http.Header{},
		}
		if rnd.IntN(2) == 0 {
			req.Header.Set("X-A", "1")
		}
		if rnd.IntN(3) == 0 {
			req.Header.Set("X-B", "2")
		}
		res, idx := checkAgainstRef(t, r, req)
		results[res]++
		if idx >= 0 {
			wins[idx]++
		}
	}
	// The comparison only means something if every rule was exercised.
	for _, res := range []Result{NotFound, Matched, MethodNotAllowed} {
		if results[res] == 0 {
			t.Errorf("no request ended %v; want every result covered", res)
		}
	}
	for i, n := range wins {
		if n == 0 {
			t.Errorf("route %s never won; want every route covered", refRoutes[i].Value)
		}
	}
}

func FuzzMatch(f *testing.F) {
	for _, s := range []struct{ host, path, method, xa string }{
		{"api.example.com", "/u/me", "POST", ""},
		{"", "/u/7", "GET", "1"},
		{"z.a.example.com", "/q", "GET", ""},
		{"b.example.com", "/api/v1/x", "OPTIONS", "1"},
		{"x", "/x/12/y", "HEAD", ""},
		{"API.EXAMPLE.COM.:1", "//me/../u/./me/", "PATCH", "0"},
	} {
		f.Add(s.host, s.path, s.method, s.xa)
	}
	r := mustNew(f, refRoutes)
	f.Fuzz(func(t *testing.T, host, rawPath, method, xa string) {
		path, _, err := Normalize(rawPath)
		if err != nil {
			return
		}
		checkAgainstRef(t, r, &Request{Host: host, Path: path, Method: method, Header: http.Header{"X-A": {xa}}})
	})
}

// FuzzRoutePath feeds configured paths to New: it never panics, and an
// accepted path matches its own normalized form (params filled with "v").
func FuzzRoutePath(f *testing.F) {
	for _, s := range []string{"", "/u/{id}", "/a/./{b}/../c", "/café/{x}/", "/{a}/{a}", "/x{y}", "/%7B{a}", "relative", "/a/%zz", "/{a}/.."} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		r, err := New([]Route[string]{{Path: p, Value: "r"}})
		if err != nil || p == "" { // "" is no path constraint at all
			return
		}
		pattern := regexp.MustCompile(`\{[A-Za-z0-9_]+\}`).ReplaceAllString(p, "v")
		path, _, err := Normalize(pattern)
		if err != nil {
			t.Fatalf("New accepted %q but Normalize(%q) fails: %v", p, pattern, err)
		}
		var m Match[string]
		if got := r.Match(&Request{Path: path, Method: "GET"}, &m); got != Matched {
			t.Fatalf("route %q does not match %q: %v", p, path, got)
		}
	})
}
