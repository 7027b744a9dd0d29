package headers

import (
	"fmt"
	"net/http"
	"net/textproto"
	"sort"

	"github.com/portunus-gw/portunus/internal/config"
	"github.com/portunus-gw/portunus/internal/pipeline"
)

// RulesConfig is the config section rules are compiled from.
type RulesConfig = config.HeaderRules

// Rules are compiled header edits: remove, then set (replace), then add
// (append). A nil *Rules applies nothing. Rules are immutable and safe for
// concurrent use.
type Rules struct {
	remove []string
	set    []rule
	add    []rule
}

type rule struct {
	name string // canonical
	tmpl *Template
	// static is the precomputed value slice of a static template, shared
	// by every request: header value slices are read-only by convention
	// (http.Header methods replace or append, never write in place), and
	// its capacity is capped so an append copies.
	static []string
}

// CompileRules compiles c. A nil c gives nil Rules. paramNames are the
// route's path parameter names (see Compile). Errors name the header.
func CompileRules(c *config.HeaderRules, paramNames []string) (*Rules, error) {
	if c == nil || (len(c.Set) == 0 && len(c.Add) == 0 && len(c.Remove) == 0) {
		return nil, nil
	}
	rs := &Rules{}
	for _, name := range c.Remove {
		if !validToken(name) {
			return nil, fmt.Errorf("headers: remove: %q is not a valid header name", name)
		}
		rs.remove = append(rs.remove, textproto.CanonicalMIMEHeaderKey(name))
	}
	var err error
	if rs.set, err = compileMap("set", c.Set, paramNames); err != nil {
		return nil, err
	}
	if rs.add, err = compileMap("add", c.Add, paramNames); err != nil {
		return nil, err
	}
	return rs, nil
}

func compileMap(op string, m map[string]string, paramNames []string) ([]rule, error) {
	names := make([]string, 0, len(m))
	for name := range m {
		names = append(names, name)
	}
	// Map order is random; a fixed order keeps add's appended values and
	// error messages stable from one load to the next.
	sort.Strings(names)
	out := make([]rule, 0, len(names))
	for _, name := range names {
		if !validToken(name) {
			return nil, fmt.Errorf("headers: %s: %q is not a valid header name", op, name)
		}
		t, err := Compile(m[name], paramNames)
		if err != nil {
			return nil, fmt.Errorf("headers: %s %s: %w", op, name, err)
		}
		rl := rule{name: textproto.CanonicalMIMEHeaderKey(name), tmpl: t}
		if t.IsStatic() {
			v := t.static()
			for i := 0; i < len(v); i++ {
				if isCtl(v[i]) {
					return nil, fmt.Errorf("headers: %s %s: value holds a control character", op, name)
				}
			}
			rl.static = []string{v}[:1:1]
		}
		out = append(out, rl)
	}
	return out, nil
}

// Apply edits h: removes, then sets, then adds. Templates are rendered
// against the inbound request r and the state s. A dynamic value that
// renders empty sets nothing: for set it removes the header (so an
// anonymous request never carries a stale value), for add it adds nothing.
func (rs *Rules) Apply(h http.Header, r *http.Request, s *pipeline.State) {
	if rs == nil {
		return
	}
	for _, name := range rs.remove {
		delete(h, name)
	}
	for i := range rs.set {
		rl := &rs.set[i]
		if rl.static != nil {
			h[rl.name] = rl.static
			continue
		}
		if v := rl.tmpl.renderString(r, s); v != "" {
			h[rl.name] = []string{v}
		} else {
			delete(h, rl.name)
		}
	}
	for i := range rs.add {
		rl := &rs.add[i]
		if rl.static != nil {
			if old := h[rl.name]; len(old) > 0 {
				h[rl.name] = append(old[:len(old):len(old)], rl.static[0])
			} else {
				h[rl.name] = rl.static
			}
			continue
		}
		if v := rl.tmpl.renderString(r, s); v != "" {
			old := h[rl.name]
			h[rl.name] = append(old[:len(old):len(old)], v)
		}
	}
}

// Empty reports whether rs edits nothing.
func (rs *Rules) Empty() bool {
	return rs == nil || len(rs.remove)+len(rs.set)+len(rs.add) == 0
}
