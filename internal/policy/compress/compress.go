package compress

import (
	"fmt"
	"net/http"
	"sync"

	"github.com/portunus-gw/portunus/internal/config"
	"github.com/portunus-gw/portunus/internal/pipeline"
)

// policy is one route's compiled compression settings.
type policy struct {
	order    []algo
	types    []typeRule
	minBytes int
	writers  sync.Pool // *writer
}

// New returns the compression middleware for c (defaults already filled
// by config loading; an empty c compresses nothing but text/* at 1 KiB
// with every algorithm).
func New(c config.Compression) (pipeline.Middleware, error) {
	p := &policy{minBytes: int(c.MinBytes)}
	if c.MinBytes < 0 {
		return nil, fmt.Errorf("compress: min_bytes must not be negative")
	}
	names := c.Algorithms
	if len(names) == 0 {
		names = config.DefaultCompressAlgorithms
	}
	for _, n := range names {
		a := algoByName(n)
		if a == none {
			return nil, fmt.Errorf("compress: unknown algorithm %q: want zstd, br or gzip", n)
		}
		if !containsAlgo(p.order, a) {
			p.order = append(p.order, a)
		}
	}
	types := c.Types
	if len(types) == 0 {
		types = config.DefaultCompressTypes
	}
	for _, t := range types {
		r, err := parseTypeRule(t)
		if err != nil {
			return nil, err
		}
		p.types = append(p.types, r)
	}
	p.writers.New = func() any { return &writer{p: p} }
	return p.middleware, nil
}

func containsAlgo(as []algo, a algo) bool {
	for _, x := range as {
		if x == a {
			return true
		}
	}
	return false
}

func (p *policy) middleware(next pipeline.Handler) pipeline.Handler {
	return func(w http.ResponseWriter, r *http.Request, s *pipeline.State) {
		// Every request is wrapped, even without Accept-Encoding: an
		// answer eligible by type still needs Vary for shared caches.
		cw := p.writers.Get().(*writer)
		cw.reset(w, negotiate(r.Header["Accept-Encoding"], p.order), r.Method == http.MethodHead)
		defer p.release(cw)
		next(cw, r, s)
		cw.finish()
	}
}

// release returns cw to the pool unless the connection was hijacked from
// it (the WebSocket proxy may still hold the writer).
func (p *policy) release(cw *writer) {
	if cw.state == stateHijacked {
		return
	}
	if cw.enc != nil {
		// finish did not run (the handler panicked): drop the stream.
		putEncoder(cw.algo, cw.enc)
	}
	cw.reset(nil, none, false)
	p.writers.Put(cw)
}
