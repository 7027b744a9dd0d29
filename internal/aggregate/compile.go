package aggregate

import (
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/portunus-gw/portunus/internal/config"
	"github.com/portunus-gw/portunus/internal/headers"
	"github.com/portunus-gw/portunus/internal/pipeline"
	"github.com/portunus-gw/portunus/internal/upstream"
)

// Options are what Compile needs besides the aggregate block.
type Options struct {
	// Pools are the snapshot's upstreams by name.
	Pools map[string]*upstream.Pool
	// Params are the route's path parameter names.
	Params []string
	// RouteTimeout caps the fan-out deadline; 0 = no cap.
	RouteTimeout time.Duration
	// RequestHeaders are the route's request_headers rules, applied to
	// every backend call; nil = none.
	RequestHeaders *headers.Rules
	// Now is the clock for latency reports; nil = time.Now.
	Now func() time.Time
}

// Compile turns a validated aggregate block into a Plan. Errors name the
// field path below the block ("backends[1].path: ...").
func Compile(c *config.Aggregate, o Options) (*Plan, error) {
	p := &Plan{
		backends: make([]Backend, len(c.Backends)),
		children: make([][]int, len(c.Backends)),
		timeout:  c.Timeout.D(),
		maxBytes: int64(c.MaxBackendBytes),
		reqRules: o.RequestHeaders,
		now:      o.Now,
	}
	if p.timeout <= 0 {
		p.timeout = DefaultTimeout
	}
	if o.RouteTimeout > 0 && o.RouteTimeout < p.timeout {
		p.timeout = o.RouteTimeout
	}
	if p.maxBytes <= 0 {
		p.maxBytes = DefaultMaxBackendBytes
	}
	if p.now == nil {
		p.now = time.Now
	}
	byAs := map[string]int{}
	for i, b := range c.Backends {
		if b.As != "" {
			byAs[b.As] = i
		}
	}
	for i, bc := range c.Backends {
		at := fmt.Sprintf("backends[%d]", i)
		b := Backend{As: bc.As, Optional: bc.Optional, After: -1}
		if b.Pool = o.Pools[bc.Upstream]; b.Pool == nil {
			return nil, fmt.Errorf("%s.upstream: unknown upstream %q", at, bc.Upstream)
		}
		if bc.After != "" {
			k, ok := byAs[bc.After]
			if !ok || k == i {
				return nil, fmt.Errorf("%s.after: no other backend has as: %q", at, bc.After)
			}
			b.After = k
		}
		fields, err := ParseFields(bc.Fields)
		if err != nil {
			return nil, fmt.Errorf("%s.fields: %v", at, err)
		}
		b.Fields = fields
		if b.path, err = compileTemplate(bc.Path, o.Params, bc.After); err != nil {
			return nil, fmt.Errorf("%s.path: %v", at, err)
		}
		p.backends[i] = b
	}
	// A {AS.FIELD} must name a field the earlier backend's `fields`
	// keep (under its new name when renamed): the value would otherwise
	// be missing from every answer, a 502 at run time.
	for i, b := range p.backends {
		if b.After < 0 || p.backends[b.After].Fields == nil {
			continue
		}
		for _, pt := range b.path.parts {
			if pt.kind != pResult {
				continue
			}
			if err := fieldKept(c.Backends[i].After, p.backends[b.After].Fields, pt.text); err != nil {
				return nil, fmt.Errorf("backends[%d].path: %v (backends[%d].fields)", i, err, b.After)
			}
		}
	}
	for i, b := range p.backends {
		if b.After < 0 {
			p.roots = append(p.roots, i)
		} else {
			p.children[b.After] = append(p.children[b.After], i)
		}
	}
	// A loop of afters has no root to start from: refuse it here too, so
	// a plan can never wait forever.
	if reach := len(p.roots); reach == 0 || countReachable(p) != len(p.backends) {
		return nil, fmt.Errorf("backends: the after chain loops")
	}
	return p, nil
}

func countReachable(p *Plan) int {
	n := 0
	for _, r := range p.roots {
		n += len(p.subtree(r))
	}
	return n
}

// fieldKept checks that the first name of the dotted field of {as.field}
// is one of the names fields keep.
func fieldKept(as string, fields []Field, dotted string) error {
	head, rest, nested := strings.Cut(dotted, ".")
	kept := make([]string, len(fields))
	for i, f := range fields {
		if f.To == head {
			return nil
		}
		kept[i] = f.To
	}
	for _, f := range fields {
		if f.From == head {
			use := f.To
			if nested {
				use += "." + rest
			}
			return fmt.Errorf("{%s.%s} names a field that %s's fields rename to %s: use {%s.%s}", as, dotted, as, f.To, as, use)
		}
	}
	return fmt.Errorf("{%s.%s} names a field that %s's fields drop (kept: %s)", as, dotted, as, strings.Join(kept, ", "))
}

// ParseFields reads `fields` entries: "name" keeps a field, "name:new"
// keeps it renamed. nil in, nil out (keep everything).
func ParseFields(list []string) ([]Field, error) {
	if list == nil {
		return nil, nil
	}
	out := make([]Field, 0, len(list))
	seen := map[string]bool{}
	for _, s := range list {
		from, to, renamed := strings.Cut(s, ":")
		if !renamed {
			to = from
		}
		if from == "" || to == "" || strings.Contains(to, ":") {
			return nil, fmt.Errorf("%q: want \"name\" or \"name:new_name\"", s)
		}
		if seen[to] {
			return nil, fmt.Errorf("%q: two fields would be named %q", s, to)
		}
		seen[to] = true
		out = append(out, Field{From: from, To: to})
	}
	return out, nil
}

// Step describes one backend for explain.
type Step struct {
	Name     string  `json:"name"`
	Upstream string  `json:"upstream"`
	Path     string  `json:"path"`
	As       string  `json:"as,omitempty"`
	After    string  `json:"after,omitempty"`
	Optional bool    `json:"optional,omitempty"`
	Fields   []Field `json:"fields,omitempty"`
	// Stage is 0 for the backends that start at once, n+1 for those
	// after a stage-n backend.
	Stage int `json:"stage"`
}

// Steps lists the plan's backends in config order, with their stage.
func (p *Plan) Steps() []Step {
	out := make([]Step, len(p.backends))
	for i, b := range p.backends {
		st := Step{Name: p.Name(i), Upstream: b.Pool.Name(), Path: b.path.src, As: b.As, Optional: b.Optional, Fields: b.Fields}
		for k := b.After; k >= 0; k = p.backends[k].After {
			st.Stage++
		}
		if b.After >= 0 {
			st.After = p.Name(b.After)
		}
		out[i] = st
	}
	return out
}

// ExplainStep is one backend call as explain shows it for a request.
type ExplainStep struct {
	Step
	// URL is the call this request would make, on the backend's first
	// target; empty when the path needs an earlier answer (Template says
	// which).
	URL string `json:"url,omitempty"`
}

// Explain renders every backend call that does not wait for an earlier
// answer, for r and s, without sending anything.
func (p *Plan) Explain(r *http.Request, s *pipeline.State) []ExplainStep {
	steps := p.Steps()
	out := make([]ExplainStep, len(steps))
	for i, st := range steps {
		out[i].Step = st
		if p.backends[i].After >= 0 {
			continue
		}
		path, err := p.backends[i].path.render(r, s, nil)
		if err != nil {
			continue
		}
		if ts := p.backends[i].Pool.Targets(); len(ts) > 0 {
			out[i].URL = ts[0].URL.Scheme + "://" + ts[0].Host + ts[0].PathPrefix + path
		}
	}
	return out
}
