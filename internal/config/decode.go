package config

import (
	"fmt"
	"math"
	"reflect"
	"strconv"
	"strings"
	"sync"

	"go.yaml.in/yaml/v3"
)

// The decoder walks a yaml.Node tree into the config types. It is ours,
// not yaml.v3's, so that it can report every problem at once with its line,
// column and field path, refuse unknown and duplicate keys with
// suggestions, expand ${ENV} in values, and decode a scalar by the Go type
// of its field rather than by its YAML tag ("${REDIS_DB}" into an int).
// Config loading is not on the request path, so reflection is fine here.

// maxDecodeSteps bounds the work of one decode, so that a small document
// whose aliases expand exponentially ("billion laughs") is refused instead
// of exhausting memory. A 10,000-route config needs about 150,000 steps,
// so this allows some 60,000 routes.
const maxDecodeSteps = 1 << 20

var (
	durationType    = reflect.TypeFor[Duration]()
	sizeType        = reflect.TypeFor[Size]()
	upstreamRefType = reflect.TypeFor[UpstreamRef]()
	hedgeDelayType  = reflect.TypeFor[HedgeDelay]()
)

type decoder struct {
	src    *source
	env    func(string) (string, bool)
	errs   ErrorList
	failed map[string]bool // paths whose value could not be decoded
	steps  int
}

func (d *decoder) errorf(n *yaml.Node, path, format string, args ...any) {
	d.failed[path] = true
	d.errs = append(d.errs, Error{File: d.src.name, Line: n.Line, Col: n.Column, Path: path, Msg: fmt.Sprintf(format, args...)})
}

// decode decodes n into v. key is the mapping key n is the value of (nil
// for list items and the document), used to position block values.
func (d *decoder) decode(key, n *yaml.Node, v reflect.Value, path string) {
	d.steps++
	if d.steps > maxDecodeSteps {
		if d.steps == maxDecodeSteps+1 {
			d.errorf(n, path, "document too large or too deeply aliased (more than %d values)", maxDecodeSteps)
		}
		return
	}
	at := n
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	// Scalars are positioned at their value; block mappings and lists at
	// their key, which is where a reader looks for them.
	if key != nil && (n.Kind == yaml.MappingNode || n.Kind == yaml.SequenceNode) {
		at = key
	}
	d.src.at[path] = pos{at.Line, at.Column}
	if isNull(n) {
		return // absent: the zero value, which defaults may fill
	}
	t := v.Type()
	switch t {
	case durationType:
		if s, ok := d.scalar(n, path, t); ok {
			d.setDuration(n, v, path, s)
		}
		return
	case sizeType:
		if s, ok := d.scalar(n, path, t); ok {
			d.setSize(n, v, path, s)
		}
		return
	case upstreamRefType:
		d.decodeUpstreamRef(n, v, path)
		return
	case hedgeDelayType:
		if s, ok := d.scalar(n, path, t); ok {
			h, err := ParseHedgeDelay(s)
			if err != nil {
				d.errorf(n, path, "%v", err)
				return
			}
			v.Set(reflect.ValueOf(h))
		}
		return
	}
	switch t.Kind() {
	case reflect.Pointer:
		nv := reflect.New(t.Elem())
		d.decode(key, n, nv.Elem(), path)
		v.Set(nv)
	case reflect.Struct:
		d.decodeStruct(n, v, path)
	case reflect.Slice:
		d.decodeSlice(n, v, path)
	case reflect.Map:
		d.decodeMap(n, v, path)
	case reflect.String:
		if s, ok := d.scalar(n, path, t); ok {
			v.SetString(s)
		}
	case reflect.Bool:
		if s, ok := d.scalar(n, path, t); ok {
			switch s {
			case "true", "True", "TRUE":
				v.SetBool(true)
			case "false", "False", "FALSE":
				v.SetBool(false)
			default:
				d.errorf(n, path, "expected true or false, got %q", s)
			}
		}
	case reflect.Int, reflect.Int64:
		if s, ok := d.scalar(n, path, t); ok {
			i, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
			if err != nil || v.OverflowInt(i) {
				d.errorf(n, path, "expected an integer, got %q", s)
				return
			}
			v.SetInt(i)
		}
	case reflect.Float64:
		if s, ok := d.scalar(n, path, t); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
			if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
				d.errorf(n, path, "expected a number, got %q", s)
				return
			}
			v.SetFloat(f)
		}
	default:
		// Only reachable if types.go gains a field kind this decoder does
		// not know; fail loudly rather than ignore the value.
		d.errorf(n, path, "internal error: cannot decode into %s", t)
	}
}

// isNull reports an absent value: `key:`, `key: ~` or `key: null`
// (unquoted). Absent values leave the field unset.
func isNull(n *yaml.Node) bool {
	return n.Kind == 0 || n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" && n.Style&(yaml.DoubleQuotedStyle|yaml.SingleQuotedStyle) == 0
}

// scalar returns the ${ENV}-expanded text of a scalar node, or reports
// that a scalar of type t was expected.
func (d *decoder) scalar(n *yaml.Node, path string, t reflect.Type) (string, bool) {
	if n.Kind != yaml.ScalarNode {
		d.errorf(n, path, "expected %s, got %s", describeType(t), describeNode(n))
		return "", false
	}
	s, err := expandEnv(n.Value, d.env)
	if err != nil {
		d.errorf(n, path, "%v", err)
		return "", false
	}
	return s, true
}

func (d *decoder) setDuration(n *yaml.Node, v reflect.Value, path, s string) {
	t := strings.TrimSpace(s)
	if t != "0" {
		if _, err := strconv.ParseFloat(t, 64); err == nil {
			d.errorf(n, path, "duration %q has no unit: use a unit such as 5s, 250ms or 1m", s)
			return
		}
	}
	dur, err := ParseDuration(t)
	if err != nil {
		d.errorf(n, path, "%v", err)
		return
	}
	v.SetInt(int64(dur))
}

func (d *decoder) setSize(n *yaml.Node, v reflect.Value, path, s string) {
	sz, err := ParseSize(s)
	if err != nil {
		d.errorf(n, path, "%v", err)
		return
	}
	v.SetInt(int64(sz))
}

// decodeUpstreamRef accepts an upstream name or a list of {name, weight}.
func (d *decoder) decodeUpstreamRef(n *yaml.Node, v reflect.Value, path string) {
	ref := v.Addr().Interface().(*UpstreamRef)
	switch n.Kind {
	case yaml.ScalarNode:
		if s, ok := d.scalar(n, path, reflect.TypeFor[string]()); ok {
			ref.Name = s
		}
	case yaml.SequenceNode:
		d.decodeSlice(n, reflect.ValueOf(&ref.Split).Elem(), path)
	default:
		d.errorf(n, path, "expected %s, got %s", describeType(upstreamRefType), describeNode(n))
	}
}

func (d *decoder) decodeSlice(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.SequenceNode {
		hint := ""
		if n.Kind == yaml.ScalarNode {
			hint = fmt.Sprintf(" (write [%s] for a list of one)", n.Value)
		}
		d.errorf(n, path, "expected a list, got %s%s", describeNode(n), hint)
		return
	}
	// An explicit empty list stays non-nil: layering tells "set to nothing"
	// from "not set".
	s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
	for i, item := range n.Content {
		d.decode(nil, item, s.Index(i), joinIndex(path, i))
	}
	v.Set(s)
}

func (d *decoder) decodeMap(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.MappingNode {
		d.errorf(n, path, "expected a mapping (key: value), got %s", describeNode(n))
		return
	}
	pairs := d.pairs(n, path, 0)
	m := reflect.MakeMapWithSize(v.Type(), len(pairs))
	et := v.Type().Elem()
	for _, p := range pairs {
		ev := reflect.New(et).Elem()
		d.decode(p.key, p.val, ev, joinKey(path, p.key.Value))
		m.SetMapIndex(reflect.ValueOf(p.key.Value), ev)
	}
	v.Set(m)
}

func (d *decoder) decodeStruct(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.MappingNode {
		d.errorf(n, path, "expected a mapping (key: value), got %s", describeNode(n))
		return
	}
	info := structInfoOf(v.Type())
	for _, p := range d.pairs(n, path, 0) {
		name := p.key.Value
		idx, ok := info.fields[name]
		if !ok {
			d.errorf(p.key, joinKey(path, name), "unknown key %q%s", name, didYouMean(name, info.names))
			continue
		}
		d.decode(p.key, p.val, v.FieldByIndex(idx), joinKey(path, name))
	}
}

type pair struct{ key, val *yaml.Node }

// pairs lists a mapping's entries, reporting non-string and duplicate keys,
// and resolving YAML merge keys (<<: *anchor), whose entries lose to the
// mapping's own.
func (d *decoder) pairs(n *yaml.Node, path string, depth int) []pair {
	out := make([]pair, 0, len(n.Content)/2)
	first := make(map[string]*yaml.Node, len(n.Content)/2)
	var merges []*yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			d.errorf(k, path, "mapping keys must be strings, got %s", describeNode(k))
			continue
		}
		if k.ShortTag() == "!!merge" {
			merges = append(merges, val)
			continue
		}
		if prev, dup := first[k.Value]; dup {
			d.errorf(k, joinKey(path, k.Value), "duplicate key %q (first at line %d)", k.Value, prev.Line)
			continue
		}
		first[k.Value] = k
		out = append(out, pair{k, val})
	}
	for _, m := range merges {
		d.steps++
		if depth > 32 || d.steps > maxDecodeSteps {
			d.errorf(m, path, "merge keys nested too deeply")
			break
		}
		if m.Kind == yaml.AliasNode && m.Alias != nil {
			m = m.Alias
		}
		sources := []*yaml.Node{m}
		if m.Kind == yaml.SequenceNode {
			sources = m.Content
		}
		for _, s := range sources {
			if s.Kind == yaml.AliasNode && s.Alias != nil {
				s = s.Alias
			}
			if s.Kind != yaml.MappingNode {
				d.errorf(s, path, "a merge key (<<) needs a mapping or a list of mappings, got %s", describeNode(s))
				continue
			}
			for _, p := range d.pairs(s, path, depth+1) {
				if _, own := first[p.key.Value]; !own {
					first[p.key.Value] = p.key
					out = append(out, p)
				}
			}
		}
	}
	return out
}

// structInfo is a struct type's YAML keys, including inlined fields.
type structInfo struct {
	fields map[string][]int
	names  []string
}

var structInfos sync.Map // reflect.Type -> *structInfo

func structInfoOf(t reflect.Type) *structInfo {
	if v, ok := structInfos.Load(t); ok {
		return v.(*structInfo)
	}
	info := &structInfo{fields: map[string][]int{}}
	var walk func(t reflect.Type, prefix []int)
	walk = func(t reflect.Type, prefix []int) {
		for i := range t.NumField() {
			f := t.Field(i)
			if !f.IsExported() {
				continue
			}
			name, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			idx := append(append([]int(nil), prefix...), i)
			if opts == "inline" && f.Type.Kind() == reflect.Struct {
				walk(f.Type, idx)
				continue
			}
			if name == "-" {
				continue
			}
			if name == "" {
				name = strings.ToLower(f.Name)
			}
			info.fields[name] = idx
			info.names = append(info.names, name)
		}
	}
	walk(t, nil)
	v, _ := structInfos.LoadOrStore(t, info)
	return v.(*structInfo)
}

func describeType(t reflect.Type) string {
	switch t {
	case durationType:
		return "a duration such as 5s"
	case sizeType:
		return "a size such as 10MiB (or a number of bytes)"
	case upstreamRefType:
		return "an upstream name or a list of {name, weight}"
	case hedgeDelayType:
		return "a duration such as 50ms or a percentile such as p95"
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int64:
		return "an integer"
	case reflect.Float64:
		return "a number"
	case reflect.Slice:
		return "a list"
	case reflect.Map, reflect.Struct:
		return "a mapping (key: value)"
	case reflect.Pointer:
		return describeType(t.Elem())
	}
	return t.String()
}

func describeNode(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		v := n.Value
		if len(v) > 40 {
			v = v[:40] + "…"
		}
		return strconv.Quote(v)
	case yaml.AliasNode:
		return "an alias"
	}
	return "nothing"
}
