package proxy

import (
	"errors"
	"net/http"

	"github.com/portunus-gw/portunus/internal/pipeline"
)

// Describe returns the request the proxy action of cfg would send to the
// pool's first target for r, without sending anything (for `portunus
// explain`). It runs the same code as a real request.
func Describe(cfg *Config, r *http.Request, s *pipeline.State) (*http.Request, error) {
	if cfg == nil || cfg.Pool == nil {
		return nil, errors.New("proxy: no upstream")
	}
	targets := cfg.Pool.Targets()
	if len(targets) == 0 {
		return nil, errors.New("proxy: upstream " + cfg.Pool.Name() + " has no target")
	}
	hd := newHandler(*cfg)
	out := new(http.Request)
	var sink discardWriter
	if !hd.outbound(out, &sink, r, s, targets[0]) {
		return nil, errors.New("proxy: " + sink.detail())
	}
	return out, nil
}

// discardWriter records what outbound would have answered the client.
type discardWriter struct {
	h      http.Header
	status int
}

func (d *discardWriter) Header() http.Header {
	if d.h == nil {
		d.h = http.Header{}
	}
	return d.h
}
func (d *discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (d *discardWriter) WriteHeader(code int)        { d.status = code }
func (d *discardWriter) detail() string              { return http.StatusText(d.status) }
