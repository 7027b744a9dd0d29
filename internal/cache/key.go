package cache

import (
	"net/http"
	"sort"
	"strings"
	"sync"

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

// appendHeaderValues appends the request's values of names for a key:
// one field per name, values trimmed, so "a,b" and "a, b" key alike.
// names are canonical (the route's vary list and varyNames are).
func appendHeaderValues(b []byte, h http.Header, names []string) []byte {
	for i, n := range names {
		if i > 0 {
			b = append(b, '\x1e')
		}
		for j, v := range h[n] {
			if j > 0 {
				b = append(b, ',')
			}
			b = append(b, strings.TrimSpace(v)...)
		}
	}
	return b
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
	shared, own = k, k
	shared.Extra = string(p.appendExtra(nil, r.Header, consumer, false))
	if !p.perConsumer {
		return shared, shared
	}
	own.Extra = string(p.appendExtra(nil, r.Header, consumer, true))
	return shared, own
}

// appendExtra appends the Extra part of a base key: the values of the
// route's vary headers and, on routes with auth, the consumer (own) or
// the shared marker.
func (p *Policy) appendExtra(b []byte, h http.Header, consumer string, own bool) []byte {
	b = append(b, "v="...)
	b = appendHeaderValues(b, h, p.vary)
	if p.perConsumer {
		if own {
			b = append(b, "\x1ec="...)
			b = append(b, consumer...)
		} else {
			b = append(b, "\x1es"...)
		}
	}
	return b
}

// appendVariant appends what turns a base key into the key of the answer
// for a request whose stored answers vary by names.
func appendVariant(b []byte, h http.Header, names []string) []byte {
	b = append(b, "\x1erv="...)
	return appendHeaderValues(b, h, names)
}

// variant is the key of the answer for a request whose stored answers
// vary by names.
func variant(base Key, r *http.Request, names []string) Key {
	base.Extra = string(appendVariant([]byte(base.Extra), r.Header, names))
	return base
}

// appendKeyPrefix appends the start of k's backend key (k.String()): every
// field but Extra, and the separator before it.
func appendKeyPrefix(b []byte, k *Key) []byte {
	b = append(b, k.Route...)
	b = append(b, sep...)
	b = append(b, k.Host...)
	b = append(b, sep...)
	b = append(b, k.Path...)
	b = append(b, sep...)
	b = append(b, k.Query...)
	return append(b, sep...)
}

// keyBuf is scratch space for building lookup keys without allocating.
type keyBuf struct{ b []byte }

var keyBufs = sync.Pool{New: func() any { return &keyBuf{b: make([]byte, 0, 256)} }}

// maxPooledKey bounds the buffers kept in keyBufs, so one huge key does
// not stay in memory.
const maxPooledKey = 4 << 10
