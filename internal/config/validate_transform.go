package config

import (
	"regexp"
	"strconv"
	"strings"
)

// transforms checks match.media_type, rewrite.regex, request_transform and
// response_transform of a route.
func (v *validator) transforms(p string, r *Route) {
	if mt := r.Match.MediaType; mt != "" {
		typ, sub, ok := strings.Cut(mt, "/")
		if !ok || !isToken(typ) || !isToken(sub) || typ == "*" || sub == "*" {
			v.add(p+".match.media_type", "invalid media type %q: want type/subtype, e.g. application/vnd.shop.v2+json (no parameters, no wildcards)", mt)
		}
	}
	if rw := r.Rewrite; rw != nil {
		if rw.Regex != "" {
			if _, err := regexp.Compile(rw.Regex); err != nil {
				v.add(p+".rewrite.regex", "invalid regular expression: %v", err)
			}
			if rw.Path != "" {
				v.add(p+".rewrite", "use at most one of regex, path")
			}
		} else if rw.Replace != "" {
			v.add(p+".rewrite.replace", "replace needs regex")
		}
	}
	if rt := r.RequestTransform; rt != nil {
		if rt.Method != "" {
			v.method(p+".request_transform.method", rt.Method)
		}
		if q := rt.Query; q != nil {
			qp := p + ".request_transform.query"
			for _, k := range sortedKeys(q.Rename) {
				if k == "" || q.Rename[k] == "" {
					v.add(joinKey(qp+".rename", k), "rename needs a name on both sides")
				}
			}
			for i, k := range q.Remove {
				if k == "" {
					v.add(joinIndex(qp+".remove", i), "empty parameter name")
				}
			}
			for _, m := range []struct {
				key string
				m   map[string]string
			}{{"set", q.Set}, {"add", q.Add}} {
				if _, ok := m.m[""]; ok {
					v.add(qp+"."+m.key, "empty parameter name")
				}
			}
		}
		if r.Aggregate != nil {
			v.add(p+".request_transform", "an aggregate route builds its own backend calls: use the backends' path templates instead")
		}
	}
	if rt := r.ResponseTransform; rt != nil {
		rp := p + ".response_transform"
		for _, k := range sortedKeys(rt.StatusMap) {
			from, err := strconv.Atoi(k)
			if err != nil || from < 100 || from > 599 {
				v.add(joinKey(rp+".status_map", k), "%q is not a status code 100-599", k)
			}
			if to := rt.StatusMap[k]; to < 200 || to > 599 {
				v.add(joinKey(rp+".status_map", k), "maps to %d: want a final status 200-599", to)
			}
		}
		if len(rt.Allow) > 0 && len(rt.Deny) > 0 {
			v.add(rp, "use at most one of allow_fields, deny_fields")
		}
		for name, list := range map[string][]string{"allow_fields": rt.Allow, "deny_fields": rt.Deny} {
			for i, f := range list {
				if f == "" || strings.HasPrefix(f, ".") || strings.HasSuffix(f, ".") || strings.Contains(f, "..") {
					v.add(joinIndex(rp+"."+name, i), "invalid field %q: want a name or a dotted path like owner.email", f)
				}
			}
		}
	}
}
