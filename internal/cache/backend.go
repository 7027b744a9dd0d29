package cache

import (
	"context"
	"strings"
	"time"
)

// Backend keeps entries. Keys are built by Key; urlKey (host and path)
// groups every entry of one URL so that an unsafe request can drop them
// all at once. Implementations are safe for concurrent use.
type Backend interface {
	// Get returns the entry at key, or nil when absent or expired.
	// The caller must not modify the entry.
	Get(ctx context.Context, key string) (*Entry, error)
	// Set stores e at key for ttl.
	Set(ctx context.Context, key, urlKey string, e *Entry, ttl time.Duration) error
	// Delete drops the entry at key, if any.
	Delete(ctx context.Context, key string) error
	// InvalidateURL drops every entry stored under urlKey.
	InvalidateURL(ctx context.Context, urlKey string) error
	// Purge drops the entries sel selects and says how many.
	Purge(ctx context.Context, sel Selector) (int, error)
}

// sep separates the fields of a key. It cannot occur in a route name, a
// host or an escaped path, so keys split back unambiguously.
const sep = "\x1f"

// Key is the parts of one cache key.
type Key struct {
	Route, Host, Path, Query string
	// Extra holds the route's vary values, the consumer and the
	// response's vary values; it only distinguishes entries.
	Extra string
}

// String is the backend key.
func (k Key) String() string {
	return k.Route + sep + k.Host + sep + k.Path + sep + k.Query + sep + k.Extra
}

// URLKey groups the entries of one host and path, whatever the query.
func (k Key) URLKey() string { return k.Host + sep + k.Path }

// parseKey splits a backend key; ok is false for anything else.
func parseKey(s string) (Key, bool) {
	f := strings.SplitN(s, sep, 5)
	if len(f) != 5 {
		return Key{}, false
	}
	return Key{Route: f[0], Host: f[1], Path: f[2], Query: f[3], Extra: f[4]}, true
}

// Selector picks entries to purge: set fields must all match; the zero
// Selector with All selects everything.
type Selector struct {
	All   bool
	Route string
	Host  string
	// Path must equal the key's path; PathPrefix must prefix it.
	Path       string
	PathPrefix string
	// Queries, when not nil, lists the accepted query forms.
	Queries []string
}

func (s Selector) match(k Key) bool {
	if s.All {
		return true
	}
	if s.Route != "" && k.Route != s.Route {
		return false
	}
	if s.Host != "" && k.Host != s.Host {
		return false
	}
	if s.Path != "" && k.Path != s.Path {
		return false
	}
	if s.PathPrefix != "" && !strings.HasPrefix(k.Path, s.PathPrefix) {
		return false
	}
	if s.Queries != nil {
		ok := false
		for _, q := range s.Queries {
			if q == k.Query {
				ok = true
				break
			}
		}
		return ok
	}
	return true
}
