// Package carry keeps long-lived objects alive across configuration reloads.
//
// A reload compiles a new snapshot beside the live one. Objects whose
// config did not change (connection pools, limiters, caches, health
// checkers) must be reused rather than rebuilt, so that counters, cached
// entries, target health and warm connections survive; objects the new
// snapshot no longer uses must be closed once it is live.
//
// The reloader calls Begin, asks for every object through Get while
// compiling, then Commit once the new snapshot is swapped in (or Abort if
// compiling failed). Objects are identified by Key(kind, name, cfg): the
// same kind, name and config give the same key, hence the same object.
//
// Builds are serialized: Begin waits while another build is active, so one
// reload finishes before the next starts.
//
// Closing contract: an object that implements io.Closer is closed when the
// generation that replaced it commits, while requests of the old snapshot
// may still be using it. Close must therefore be safe to call under
// concurrent use and must not break in-flight work: release idle resources
// and stop background goroutines, and let in-flight calls finish (as
// http.Transport.CloseIdleConnections does). Objects that cannot promise
// that should not implement io.Closer, or should defer their teardown.
package carry

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"
)

// Registry holds the live objects of the current snapshot. The zero value
// is not usable; call NewRegistry.
type Registry struct {
	building sync.Mutex // held from Begin to Commit/Abort: one build at a time

	mu   sync.Mutex
	live map[string]any
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry {
	return &Registry{live: make(map[string]any)}
}

// Build is one generation being compiled. It is used by one goroutine.
type Build struct {
	r       *Registry
	used    map[string]any
	created map[string]any
	done    bool
}

// ErrBuildDone is returned by Get on a build that was committed or aborted.
var ErrBuildDone = errors.New("carry: build already committed or aborted")

// Begin starts building a new generation. It waits until any build already
// active is committed or aborted.
func (r *Registry) Begin() *Build {
	r.building.Lock()
	return &Build{r: r, used: make(map[string]any), created: make(map[string]any)}
}

// Get returns the object under key: the one this build already has, else
// the live one from the current generation, else a new one made by create.
// Either way it is remembered as used by this build. An object found under
// key with another type than T is an error (two kinds sharing a key).
// When create fails nothing is remembered.
func Get[T any](b *Build, key string, create func() (T, error)) (T, error) {
	var zero T
	if b.done {
		return zero, ErrBuildDone
	}
	if obj, ok := b.used[key]; ok {
		return typed[T](key, obj)
	}
	b.r.mu.Lock()
	obj, ok := b.r.live[key]
	b.r.mu.Unlock()
	if ok {
		v, err := typed[T](key, obj)
		if err != nil {
			return zero, err
		}
		b.used[key] = obj
		return v, nil
	}
	v, err := create()
	if err != nil {
		return zero, err
	}
	b.used[key] = v
	b.created[key] = v
	return v, nil
}

func typed[T any](key string, obj any) (T, error) {
	v, ok := obj.(T)
	if !ok {
		var zero T
		return zero, fmt.Errorf("carry: object under %q is %T, not %T", key, obj, zero)
	}
	return v, nil
}

// Commit makes this build's objects the live set and closes every object of
// the previous generation that this build did not use. Calling Commit or
// Abort again does nothing.
func (b *Build) Commit() {
	if b.done {
		return
	}
	b.done = true
	b.r.mu.Lock()
	old := b.r.live
	b.r.live = b.used
	b.r.mu.Unlock()
	for key, obj := range old {
		if _, kept := b.used[key]; !kept {
			closeObject(obj)
		}
	}
	b.r.building.Unlock()
}

// Abort drops this build: it closes the objects this build created and
// leaves the live generation as it was. Calling Commit or Abort again does nothing.
func (b *Build) Abort() {
	if b.done {
		return
	}
	b.done = true
	for _, obj := range b.created {
		closeObject(obj)
	}
	b.r.building.Unlock()
}

// Close closes every live object and empties the registry, for shutdown.
// It waits for an active build to finish first.
func (r *Registry) Close() {
	r.building.Lock()
	defer r.building.Unlock()
	r.mu.Lock()
	old := r.live
	r.live = make(map[string]any)
	r.mu.Unlock()
	for _, obj := range old {
		closeObject(obj)
	}
}

// Len reports how many objects are live.
func (r *Registry) Len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.live)
}

func closeObject(obj any) {
	if c, ok := obj.(io.Closer); ok {
		_ = c.Close() // nothing useful to do with a close error during a reload
	}
}

// Key makes an identity from a kind ("upstream", "ratelimit", ...), a name
// and the object's config: the same three give the same key, and a config
// change gives a new key (so a new object). cfg is hashed through its JSON
// encoding, which is stable for structs (field order) and maps (sorted keys).
func Key(kind, name string, cfg any) string {
	data, err := json.Marshal(cfg)
	if err != nil {
		// Unencodable config (a func or channel field): fall back to Go
		// syntax, which is stable for the plain values configs hold.
		data = fmt.Appendf(nil, "%#v", cfg)
	}
	sum := sha256.Sum256(data)
	return kind + "/" + name + "/" + hex.EncodeToString(sum[:12])
}
