package cache

import (
	"net/http"
	"sort"
	"strings"

	"github.com/portunus-gw/portunus/internal/router"
)

// queryKey is the query part of the key under the route's query mode.
func (p *Policy) queryKey(raw string) string {
	if raw == "" || p.query == "ignore" {
		return ""
	}
	if p.query == "keep" && len(p.ignoreQuery) == 0 {
		return raw
	}
	parts := strings.Split(raw, "&")
	kept := parts[:0]
	for _, kv := range parts {
		if kv == "" {
			continue
		}
		name, _, _ := strings.Cut(kv, "=")
		if p.ignoreQuery[name] {
			continue
		}
		kept = append(kept, kv)
	}
	if p.query == "sort" {
		sort.Strings(kept)
	}
	return strings.Join(kept, "&")
}

// headerValues joins the request's values of names for a key: one
// field per name, values trimmed, so "a,b" and "a, b" key alike.
func headerValues(h http.Header, names []string) string {
	if len(names) == 0 {
		return ""
	}
	var b strings.Builder
	for i, n := range names {
		if i > 0 {
			b.WriteByte('\x1e')
		}
		for j, v := range h.Values(n) {
			if j > 0 {
				b.WriteByte(',')
			}
			b.WriteString(strings.TrimSpace(v))
		}
	}
	return b.String()
}

// varyNames lists the header names a response's Vary fields name.
func varyNames(h http.Header) []string {
	var out []string
	for _, v := range h["Vary"] {
		for _, f := range strings.Split(v, ",") {
			if f = strings.TrimSpace(f); f != "" {
				out = append(out, http.CanonicalHeaderKey(f))
			}
		}
	}
	sort.Strings(out)
	return out
}

// baseKeys are the keys a request is looked up and stored under: shared
// (any consumer may be served it) and own (this consumer only). They are
// the same on routes without auth.
func (p *Policy) baseKeys(r *http.Request, path, consumer string) (shared, own Key) {
	k := Key{
		Route: p.route,
		Host:  router.NormalizeHost(r.Host),
		Path:  path,
		Query: p.queryKey(r.URL.RawQuery),
	}
	vary := headerValues(r.Header, p.vary)
	if !p.perConsumer {
		k.Extra = "v=" + vary
		return k, k
	}
	shared, own = k, k
	shared.Extra = "v=" + vary + "\x1es"
	own.Extra = "v=" + vary + "\x1ec=" + consumer
	return shared, own
}

// variant is the key of the answer for a request whose stored answers
// vary by names.
func variant(base Key, r *http.Request, names []string) Key {
	base.Extra += "\x1erv=" + headerValues(r.Header, names)
	return base
}
