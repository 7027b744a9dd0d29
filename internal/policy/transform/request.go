// Package transform reshapes traffic around a route's action.
//
// The request side (Request) runs just before the action: a regex path
// rewrite (rewrite.regex / rewrite.replace, on the escaped path, before
// rewrite.strip_prefix), query parameters renamed, removed, set and added
// (request_transform.query; values are header-style templates such as
// {consumer} or {param.id}), and a method override
// (request_transform.method). Header edits stay where they were:
// request_headers.
//
// The response side (Response) wraps the action: a status map
// (response_transform.status_map) and a JSON field filter
// (response_transform.allow_fields / deny_fields, dotted paths that reach
// through arrays). Answers whose Content-Type is JSON are buffered and
// filtered, up to max_body_bytes (default 1MiB); a larger or invalid JSON
// answer is refused with 502 rather than passed on unfiltered, since the
// filter usually exists to keep internal fields in. The filter fails
// closed on labels too: an answer not labelled JSON whose body starts
// like JSON ('{' or '[' after whitespace) is filtered the same way (or
// refused when it is not one valid JSON value), and a compressed one is
// refused; any other answer streams through untouched once its first
// body byte is seen (text/event-stream at once).
//
// Example:
//
//	rewrite: { regex: "^/api/v1/(.*)$", replace: "/internal/$1" }
//	request_transform:
//	  method: POST
//	  query: { rename: { q: search }, remove: [debug], set: { tenant: "{consumer}" } }
//	response_transform:
//	  status_map: { "404": 204 }
//	  deny_fields: [password_hash, owner.email]
package transform

import (
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"sort"
	"strings"

	"github.com/portunus-gw/portunus/internal/config"
	"github.com/portunus-gw/portunus/internal/headers"
	"github.com/portunus-gw/portunus/internal/pipeline"
)

type queryValue struct {
	name string
	tmpl *headers.Template
}

// RequestPlan is a compiled request transformation.
type RequestPlan struct {
	re      *regexp.Regexp
	replace string
	method  string
	rename  [][2]string
	remove  []string
	set     []queryValue
	add     []queryValue
}

// CompileRequest builds the request side from rewrite.regex and
// request_transform; nil when neither asks for anything.
func CompileRequest(rw *config.Rewrite, rt *config.RequestTransform, params []string) (*RequestPlan, error) {
	p := &RequestPlan{}
	empty := true
	if rw != nil && rw.Regex != "" {
		re, err := regexp.Compile(rw.Regex)
		if err != nil {
			return nil, fmt.Errorf("rewrite.regex: %v", err)
		}
		p.re, p.replace, empty = re, rw.Replace, false
	}
	if rt != nil {
		if rt.Method != "" {
			p.method, empty = rt.Method, false
		}
		if q := rt.Query; q != nil {
			for _, k := range sortedKeys(q.Rename) {
				p.rename = append(p.rename, [2]string{k, q.Rename[k]})
			}
			p.remove = q.Remove
			var err error
			if p.set, err = compileValues("set", q.Set, params); err != nil {
				return nil, err
			}
			if p.add, err = compileValues("add", q.Add, params); err != nil {
				return nil, err
			}
			empty = empty && len(p.rename)+len(p.remove)+len(p.set)+len(p.add) == 0
		}
	}
	if empty {
		return nil, nil
	}
	return p, nil
}

func compileValues(op string, m map[string]string, params []string) ([]queryValue, error) {
	var out []queryValue
	for _, k := range sortedKeys(m) {
		t, err := headers.Compile(m[k], params)
		if err != nil {
			return nil, fmt.Errorf("request_transform.query.%s.%s: %v", op, k, err)
		}
		out = append(out, queryValue{name: k, tmpl: t})
	}
	return out, nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// Describe lists what the plan does, for explain.
func (p *RequestPlan) Describe() []string {
	var out []string
	if p.re != nil {
		out = append(out, fmt.Sprintf("path regex %q -> %q", p.re.String(), p.replace))
	}
	for _, rn := range p.rename {
		out = append(out, fmt.Sprintf("query rename %s -> %s", rn[0], rn[1]))
	}
	if len(p.remove) > 0 {
		out = append(out, "query remove "+strings.Join(p.remove, ", "))
	}
	for _, v := range p.set {
		out = append(out, fmt.Sprintf("query set %s = %s", v.name, v.tmpl.String()))
	}
	for _, v := range p.add {
		out = append(out, fmt.Sprintf("query add %s = %s", v.name, v.tmpl.String()))
	}
	if p.method != "" {
		out = append(out, "method "+p.method)
	}
	return out
}

// Middleware edits the request the action sees (Apply).
func (p *RequestPlan) Middleware() pipeline.Middleware {
	return func(next pipeline.Handler) pipeline.Handler {
		return func(w http.ResponseWriter, r *http.Request, s *pipeline.State) {
			next(w, p.Apply(r, s), s)
		}
	}
}

// Apply returns the request the action sees: s.Path (what the proxy sends
// upstream) is rewritten in place, and the result is a shallow copy of r
// with its own URL and method. The client's request itself is never
// modified. Explain calls it to show what the upstream really receives.
func (p *RequestPlan) Apply(r *http.Request, s *pipeline.State) *http.Request {
	if p.re != nil {
		path := s.Path
		if path == "" {
			path = "/"
		}
		if np := p.re.ReplaceAllString(path, p.replace); np != path {
			if !strings.HasPrefix(np, "/") {
				np = "/" + np
			}
			s.Path = np
		}
	}
	r2 := new(http.Request)
	*r2 = *r
	u := *r.URL
	r2.URL = &u
	if p.method != "" {
		r2.Method = p.method
	}
	if len(p.rename)+len(p.remove)+len(p.set)+len(p.add) > 0 {
		u.RawQuery = p.query(r, s)
	}
	return r2
}

// query is the edited query string. Templates render against the
// client's request, so {query.x} sees the original value.
func (p *RequestPlan) query(r *http.Request, s *pipeline.State) string {
	q := r.URL.Query()
	for _, rn := range p.rename {
		if vs, ok := q[rn[0]]; ok {
			delete(q, rn[0])
			q[rn[1]] = append(q[rn[1]], vs...)
		}
	}
	for _, k := range p.remove {
		delete(q, k)
	}
	var buf [128]byte
	for _, v := range p.set {
		q[v.name] = []string{string(v.tmpl.Render(buf[:0], r, s))}
	}
	for _, v := range p.add {
		q[v.name] = append(q[v.name], string(v.tmpl.Render(buf[:0], r, s)))
	}
	return url.Values(q).Encode()
}
