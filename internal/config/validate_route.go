package config

import (
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"
)

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func (v *validator) routes() {
	names := make(map[string]bool, len(v.c.Routes))
	for i := range v.c.Routes {
		r := &v.c.Routes[i]
		p := fmt.Sprintf("routes[%d]", i)
		switch name := r.Name; {
		case name == "":
			// Unnamed routes are called route-N; that must not collide.
			if name = fmt.Sprintf("route-%d", i); names[name] {
				v.add(p, "this route's default name %q is already used: give it a name", name)
			}
			names[name] = true
		case names[name]:
			v.add(p+".name", "duplicate route name %q", name)
		default:
			names[name] = true
		}
		v.route(p, r)
	}
}

func (v *validator) route(p string, r *Route) {
	actions := 0
	for _, set := range []bool{r.Upstream != nil, r.Aggregate != nil, r.Respond != nil} {
		if set {
			actions++
		}
	}
	if actions != 1 {
		v.add(p, "route needs exactly one of upstream, aggregate, respond (it has %d)", actions)
	}
	params := v.match(p+".match", &r.Match)

	if u := r.Upstream; u != nil {
		if u.Split == nil {
			v.upstreamName(p+".upstream", u.Name)
		} else {
			v.split(p+".upstream", u.Split)
		}
	}
	if r.StickyBy != "" {
		v.keyed(p+".sticky_by", r.StickyBy, []string{"consumer", "ip"}, "header")
		if r.Upstream == nil || r.Upstream.Split == nil {
			v.add(p+".sticky_by", "sticky_by only applies to a weighted upstream list")
		}
	}
	if rw := r.Rewrite; rw != nil {
		v.rewrite(p+".rewrite", rw, r.Match, params)
	}
	v.transforms(p, r)
	if a := r.Aggregate; a != nil {
		v.aggregate(p+".aggregate", a, params)
		for k, m := range r.Match.Methods {
			if m != "GET" && m != "HEAD" {
				v.add(joinIndex(p+".match.methods", k), "an aggregate route answers GET and HEAD only, not %s", m)
			}
		}
	}
	if rs := r.Respond; rs != nil {
		if rs.Status != 0 && (rs.Status < 100 || rs.Status > 599) || rs.Status == 0 && v.written(p+".respond.status") {
			v.add(p+".respond.status", "status must be between 100 and 599, got %d", rs.Status)
		}
		v.headerMap(p+".respond.headers", rs.Headers)
	}
	v.policies(p, &r.RoutePolicies)
}

func (v *validator) upstreamName(path, name string) {
	switch {
	case name == "":
		v.add(path, "upstream name is required")
	case !v.upstreams[name]:
		v.add(path, "unknown upstream %q%s", name, didYouMean(name, sortedKeys(v.upstreams)))
	}
}

func (v *validator) split(p string, split []WeightedUpstream) {
	if len(split) == 0 {
		v.add(p, "a weighted upstream list needs at least one entry")
		return
	}
	total := 0
	for j, w := range split {
		wp := joinIndex(p, j)
		v.upstreamName(wp+".name", w.Name)
		if w.Weight < 0 {
			v.add(wp+".weight", "weight must not be negative")
		}
		total += w.Weight
	}
	if total <= 0 {
		v.add(p, "the weights of a weighted upstream list must add up to more than 0")
	}
}

// match checks a route's match and returns the names of the parameters
// its path captures.
func (v *validator) match(p string, m *Match) []string {
	var params []string
	set := 0
	if m.Path != "" {
		set++
		params = v.paramPath(p+".path", m.Path, true)
	}
	if m.PathPrefix != "" {
		set++
		v.paramPath(p+".path_prefix", m.PathPrefix, false)
	}
	if m.PathRegex != "" {
		set++
		re, err := regexp.Compile(m.PathRegex)
		if err != nil {
			v.add(p+".path_regex", "invalid regular expression: %v", strings.TrimPrefix(err.Error(), "error parsing regexp: "))
		} else {
			for _, n := range re.SubexpNames() {
				if n != "" {
					params = append(params, n)
				}
			}
		}
	}
	if set > 1 {
		v.add(p, "use at most one of path, path_prefix, path_regex")
	}
	for i, h := range m.Hosts {
		m.Hosts[i] = v.host(joinIndex(p+".hosts", i), h)
	}
	for i, method := range m.Methods {
		v.method(joinIndex(p+".methods", i), method)
	}
	v.headerMap(p+".headers", m.Headers)
	return params
}

// paramPath checks a path or path prefix: it starts with "/", is already
// normalized (requests are normalized before matching, so anything else
// could never match), and {param} segments are whole, valid and unique.
func (v *validator) paramPath(path, s string, allowParams bool) []string {
	if !strings.HasPrefix(s, "/") {
		v.add(path, "must start with \"/\", got %q", s)
		return nil
	}
	if strings.ContainsAny(s, "?#") {
		v.add(path, "must not contain a query or fragment (? or #)")
		return nil
	}
	var params []string
	segs := strings.Split(s[1:], "/")
	for i, seg := range segs {
		switch {
		case seg == "." || seg == "..":
			v.add(path, "%q is not normalized: dot segments never match", s)
			return nil
		case seg == "" && i < len(segs)-1:
			v.add(path, "%q is not normalized: empty segments (//) never match", s)
			return nil
		case !strings.ContainsAny(seg, "{}"):
			continue
		case !allowParams:
			v.add(path, "path_prefix cannot hold {params}: use path for parameters")
			return nil
		case len(seg) < 3 || seg[0] != '{' || seg[len(seg)-1] != '}' || strings.ContainsAny(seg[1:len(seg)-1], "{}"):
			v.add(path, "a {param} must be a whole segment, like /users/{id}; got %q", seg)
			return nil
		}
		name := seg[1 : len(seg)-1]
		if !validParamName(name) {
			v.add(path, "invalid parameter name %q (letters, digits and _, not starting with a digit)", name)
			return nil
		}
		if slices.Contains(params, name) {
			v.add(path, "parameter {%s} appears twice", name)
			return nil
		}
		params = append(params, name)
	}
	return params
}

var paramName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

func validParamName(s string) bool { return paramName.MatchString(s) }

// host checks a host name or "*.suffix" and returns it lower-cased (host
// matching is case-insensitive).
func (v *validator) host(path, h string) string {
	lower := strings.TrimSuffix(strings.ToLower(h), ".")
	name := strings.TrimPrefix(lower, "*.")
	switch {
	case lower == "*":
		v.add(path, "leave hosts out to match any host")
	case strings.Contains(lower, ":") && !strings.Contains(lower, "::"):
		v.add(path, "host %q: hosts are matched without the port; remove it", h)
	case !validHostName(name):
		v.add(path, "invalid host %q: want a name like api.example.com or *.example.com", h)
	}
	return lower
}

func validHostName(s string) bool {
	if s == "" || len(s) > 253 {
		return false
	}
	for _, label := range strings.Split(s, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}

func (v *validator) method(path, m string) {
	switch {
	case !isToken(m):
		v.add(path, "invalid method %q", m)
	case strings.ToUpper(m) != m:
		v.add(path, "methods are case-sensitive: write %q, not %q", strings.ToUpper(m), m)
	case m == "CONNECT":
		v.add(path, "CONNECT cannot be routed (the gateway answers it with 405)")
	}
}

func (v *validator) rewrite(p string, rw *Rewrite, m Match, params []string) {
	if rw.StripPrefix != "" && rw.Path != "" {
		v.add(p, "use at most one of strip_prefix, path")
	}
	if rw.StripPrefix != "" {
		v.paramPath(p+".strip_prefix", rw.StripPrefix, false)
		if m.PathPrefix != "" && !segmentPrefix(m.PathPrefix, rw.StripPrefix) {
			v.add(p+".strip_prefix", "%q is not a prefix of match.path_prefix %q, so it would never be stripped", rw.StripPrefix, m.PathPrefix)
		}
	}
	if rw.Path != "" {
		for _, name := range v.paramPath(p+".path", rw.Path, true) {
			if !slices.Contains(params, name) {
				v.add(p+".path", "{%s} is not a parameter of this route's match%s", name, didYouMean(name, params))
			}
		}
	}
}

// segmentPrefix reports whether prefix is path or a whole-segment prefix of it.
func segmentPrefix(path, prefix string) bool {
	prefix = strings.TrimSuffix(prefix, "/")
	return path == prefix || strings.HasPrefix(path, prefix+"/") || prefix == ""
}

var templateRef = regexp.MustCompile(`\{([^{}]*)\}`)

func (v *validator) aggregate(p string, a *Aggregate, params []string) {
	if len(a.Backends) == 0 {
		v.add(p+".backends", "an aggregate needs at least one backend")
	}
	v.positiveDuration(p+".timeout", a.Timeout)
	as := map[string]int{}
	for j, b := range a.Backends {
		if b.As == "" {
			continue
		}
		if _, dup := as[b.As]; dup {
			v.add(fmt.Sprintf("%s.backends[%d].as", p, j), "duplicate as %q", b.As)
		}
		if b.As == "query" || b.As == "param" || strings.ContainsAny(b.As, ".{}") {
			v.add(fmt.Sprintf("%s.backends[%d].as", p, j), "as %q is reserved or has '.', '{' or '}' (templates could not name it)", b.As)
		}
		as[b.As] = j
	}
	for j, b := range a.Backends {
		names := map[string]bool{}
		for k, f := range b.Fields {
			from, to, renamed := strings.Cut(f, ":")
			if !renamed {
				to = from
			}
			fp := fmt.Sprintf("%s.backends[%d].fields[%d]", p, j, k)
			switch {
			case from == "" || to == "" || strings.Contains(to, ":"):
				v.add(fp, "invalid field %q: want \"name\" or \"name:new_name\"", f)
			case names[to]:
				v.add(fp, "two fields would be named %q", to)
			}
			names[to] = true
		}
	}
	for j, b := range a.Backends {
		bp := fmt.Sprintf("%s.backends[%d]", p, j)
		v.upstreamName(bp+".upstream", b.Upstream)
		if !strings.HasPrefix(b.Path, "/") {
			v.add(bp+".path", "must start with \"/\", got %q", b.Path)
		}
		if b.After != "" {
			k, ok := as[b.After]
			switch {
			case !ok:
				v.add(bp+".after", "no backend has as: %q", b.After)
			case k == j:
				v.add(bp+".after", "a backend cannot run after itself")
			case aggregateCycle(a.Backends, as, j):
				v.add(bp+".after", "the after chain loops")
			}
		}
		for _, ref := range templateRef.FindAllStringSubmatch(b.Path, -1) {
			name, field, dotted := strings.Cut(ref[1], ".")
			switch {
			case !dotted && name == "consumer":
			case dotted && name == "query" && field != "":
			case dotted && name == "param" && slices.Contains(params, field):
			case !dotted && !slices.Contains(params, name):
				v.add(bp+".path", "{%s} is not a parameter of this route's match (placeholders: {param}, {param.NAME}, {query.NAME}, {consumer}, {AS.FIELD})", name)
			case dotted && name != b.After:
				v.add(bp+".path", "{%s.%s} needs after: %s (values come from the backend this one runs after)", name, field, name)
			case dotted && field == "":
				v.add(bp+".path", "{%s.} names no field", name)
			case dotted:
				if k, ok := as[name]; ok {
					if msg := aggregateFieldDropped(a.Backends[k].Fields, name, field); msg != "" {
						v.add(bp+".path", "%s (backends[%d].fields)", msg, k)
					}
				}
			}
		}
	}
}

// aggregateFieldDropped says why {as.field} can never have a value when
// the backend named as keeps only fields ("" when it can): the first name
// of the dotted field must be one the fields keep, under its new name
// when renamed (internal/aggregate checks the same at compile time).
func aggregateFieldDropped(fields []string, as, field string) string {
	if fields == nil {
		return ""
	}
	head, rest, nested := strings.Cut(field, ".")
	var kept []string
	renamed := ""
	for _, f := range fields {
		from, to, ok := strings.Cut(f, ":")
		if !ok {
			to = from
		}
		if from == "" || to == "" || strings.Contains(to, ":") || slices.Contains(kept, to) {
			continue // reported at fields
		}
		if to == head {
			return ""
		}
		if from == head {
			renamed = to
		}
		kept = append(kept, to)
	}
	if renamed != "" {
		if nested {
			renamed += "." + rest
		}
		return fmt.Sprintf("{%s.%s} names a field that %s's fields rename to %s: use {%s.%s}", as, field, as, strings.SplitN(renamed, ".", 2)[0], as, renamed)
	}
	return fmt.Sprintf("{%s.%s} names a field that %s's fields drop (kept: %s)", as, field, as, strings.Join(kept, ", "))
}

func aggregateCycle(bs []AggregateBackend, as map[string]int, start int) bool {
	j := start
	for range len(bs) {
		k, ok := as[bs[j].After]
		if bs[j].After == "" || !ok {
			return false
		}
		if k == start {
			return true
		}
		j = k
	}
	return true
}

// policies checks the keys routes share with defaults and policy sets, at
// the place they are written.
func (v *validator) policies(p string, rp *RoutePolicies) {
	for i, m := range rp.Auth {
		v.authMethod(joinIndex(p+".auth", i), m)
	}
	v.rateLimits(p+".rate_limits", rp.RateLimits)
	v.quotas(p+".quotas", rp.Quotas)
	if cc := rp.Concurrency; cc != nil {
		cp := p + ".concurrency"
		if cc.Max < 1 {
			v.add(cp+".max", "max must be at least 1")
		}
		v.nonNegative(cp+".queue", cc.Queue)
		if cc.PerConsumerShare < 0 || cc.PerConsumerShare > 1 {
			v.add(cp+".per_consumer_share", "must be between 0 and 1")
		}
	}
	if ca := rp.Cache; ca != nil {
		cp := p + ".cache"
		if ca.TTL == 0 {
			v.add(cp+".ttl", "ttl is required and must be greater than 0")
		}
		v.enum(cp+".query", ca.Query, "keep", "sort", "ignore")
		for i, h := range ca.Vary {
			v.header(joinIndex(cp+".vary", i), h)
		}
		for i, q := range ca.IgnoreQuery {
			if q == "" {
				v.add(joinIndex(cp+".ignore_query", i), "must not be empty")
			}
		}
	}
	if co := rp.CORS; co != nil {
		v.cors(p+".cors", co)
	}
	if ip := rp.IP; ip != nil {
		v.cidrs(p+".ip.allow", ip.Allow)
		v.cidrs(p+".ip.deny", ip.Deny)
	}
	v.headerRules(p+".request_headers", rp.RequestHeaders)
	v.headerRules(p+".response_headers", rp.ResponseHeaders)
	if rp.MaxBodyBytes != nil && *rp.MaxBodyBytes == 0 {
		v.add(p+".max_body_bytes", "must be greater than 0")
	}
	if rp.Timeout != nil && *rp.Timeout == 0 {
		v.add(p+".timeout", "must be greater than 0")
	}
	if c := rp.Compression; c != nil {
		cp := p + ".compression"
		for i, a := range c.Algorithms {
			v.enum(joinIndex(cp+".algorithms", i), a, "zstd", "br", "gzip")
		}
		if c.Algorithms != nil && len(c.Algorithms) == 0 {
			v.add(cp+".algorithms", "list at least one of zstd, br, gzip (remove compression to turn it off)")
		}
		for i, t := range c.Types {
			if !strings.Contains(t, "/") || strings.ContainsAny(t, " ;,") {
				v.add(joinIndex(cp+".types", i), "invalid media type %q: want e.g. application/json or text/*", t)
			}
		}
	}
	if m := rp.Mirror; m != nil {
		v.upstreamName(p+".mirror.upstream", m.Upstream)
		if m.Percent < 0 || m.Percent > 100 || m.Percent == 0 && v.written(p+".mirror.percent") {
			v.add(p+".mirror.percent", "percent must be greater than 0 and at most 100 (remove mirror to turn it off)")
		}
	}
	if h := rp.Hedge; h != nil {
		if h.After.IsZero() {
			v.add(p+".hedge.after", "after is required and must be greater than 0")
		}
		switch {
		case h.After.Duration > 0 && (h.Min != 0 || v.written(p+".hedge.min")):
			v.add(p+".hedge.min", "min only applies when after is a percentile (e.g. after: p95)")
		case h.After.Percentile > 0 && h.Min == 0 && v.written(p+".hedge.min"):
			v.add(p+".hedge.min", "min must be greater than 0 (default %s)", DefaultHedgeMin)
		}
		if h.Max < 0 || h.Max > 3 || h.Max == 0 && v.written(p+".hedge.max") {
			v.add(p+".hedge.max", "max must be 1, 2 or 3 (extra attempts per request), got %d", h.Max)
		}
	}
	if d := rp.Deprecated; d != nil {
		if d.Since != "" {
			if _, err := time.Parse(time.RFC3339, d.Since); err != nil {
				v.add(p+".deprecated.since", "invalid time %q: want RFC 3339, e.g. 2026-01-01T00:00:00Z", d.Since)
			}
		}
		if d.Sunset != "" {
			if _, err := time.Parse(time.RFC3339, d.Sunset); err != nil {
				v.add(p+".deprecated.sunset", "invalid time %q: want RFC 3339, e.g. 2027-06-30T00:00:00Z", d.Sunset)
			}
		}
		if d.Link != "" {
			if u, err := url.Parse(d.Link); err != nil || !u.IsAbs() {
				v.add(p+".deprecated.link", "invalid link %q: want an absolute URL", d.Link)
			}
		}
	}
}

func (v *validator) rateLimits(p string, rls []RateLimit) {
	names := map[string]bool{}
	for i, rl := range rls {
		rp := joinIndex(p, i)
		if rl.Limit < 1 {
			v.add(rp+".limit", "limit must be at least 1")
		}
		if rl.Window == 0 {
			v.add(rp+".window", "window is required and must be greater than 0, e.g. 1m")
		}
		if rl.Burst < 0 {
			v.add(rp+".burst", "burst must not be negative")
		}
		v.keyed(rp+".by", rl.By, []string{"consumer", "ip", "route"}, "header")
		if rl.Name != "" {
			if !isToken(rl.Name) || strings.ContainsAny(rl.Name, `"\`) {
				v.add(rp+".name", "invalid name %q: letters, digits and -._ only (it appears in RateLimit headers)", rl.Name)
			} else if names[rl.Name] {
				v.add(rp+".name", "duplicate rate limit name %q", rl.Name)
			}
			names[rl.Name] = true
		}
	}
}

func (v *validator) quotas(p string, qs []Quota) {
	for i, q := range qs {
		qp := joinIndex(p, i)
		if q.Limit < 1 {
			v.add(qp+".limit", "limit must be at least 1")
		}
		if q.Period == "" {
			v.add(qp+".period", "period is required: day, week or month")
		}
		v.enum(qp+".period", q.Period, "day", "week", "month")
		v.keyed(qp+".by", q.By, []string{"consumer", "ip", "route"}, "header")
		if q.TimeZone != "" {
			if _, err := time.LoadLocation(q.TimeZone); err != nil {
				v.add(qp+".time_zone", "unknown time zone %q (want an IANA name such as UTC or Europe/Paris)", q.TimeZone)
			}
		}
	}
}

func (v *validator) cors(p string, co *CORS) {
	for i, o := range co.Origins {
		op := joinIndex(p+".origins", i)
		if o == "*" {
			if co.Credentials {
				v.add(op, "origin \"*\" cannot be combined with credentials: true (browsers refuse it); list the origins")
			}
			continue
		}
		u, err := url.Parse(strings.Replace(o, "://*.", "://wildcard.", 1))
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" {
			v.add(op, "invalid origin %q: want scheme://host[:port], e.g. https://app.example.com or https://*.example.com", o)
		}
	}
	for i, m := range co.Methods {
		v.method(joinIndex(p+".methods", i), m)
	}
	for i, h := range co.Headers {
		v.header(joinIndex(p+".headers", i), h)
	}
}

func (v *validator) headerRules(p string, hr *HeaderRules) {
	if hr == nil {
		return
	}
	v.headerMap(p+".set", hr.Set)
	v.headerMap(p+".add", hr.Add)
	for i, h := range hr.Remove {
		v.header(joinIndex(p+".remove", i), h)
	}
}

// authMethod checks one entry of auth: api_key, basic, mtls, or
// jwt:/oauth2:/forward: followed by a configured provider's name.
func (v *validator) authMethod(path, m string) {
	kind, name, hasName := strings.Cut(m, ":")
	var known map[string]bool
	switch {
	case !hasName && (m == "api_key" || m == "basic" || m == "mtls"):
		return
	case hasName && kind == "jwt":
		known = v.jwt
	case hasName && kind == "oauth2":
		known = v.oauth2
	case hasName && kind == "forward":
		known = v.forward
	default:
		v.add(path, "invalid auth method %q: want api_key, basic, mtls, jwt:NAME, oauth2:NAME or forward:NAME", m)
		return
	}
	if !known[name] {
		v.add(path, "unknown %s provider %q%s", kind, name, didYouMean(name, sortedKeys(known)))
	}
}
