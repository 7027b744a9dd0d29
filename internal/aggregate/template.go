package aggregate

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/portunus-gw/portunus/internal/pipeline"
)

// partKind says what one piece of a backend path template renders.
type partKind uint8

const (
	pLiteral  partKind = iota
	pParam             // {id} or {param.id}: a route path parameter
	pQuery             // {query.x}: the first value of a client query parameter
	pConsumer          // {consumer}: the authenticated consumer ("" when anonymous)
	pResult            // {user.org_id}: a field of the answer of the backend this one runs after
)

type part struct {
	kind partKind
	// text is the literal (pLiteral), the parameter or query name, or
	// the field name of the earlier answer (pResult).
	text string
	// inQuery: the piece lies after the first '?', so values are
	// escaped as a query component rather than a path segment.
	inQuery bool
}

// pathTemplate is a backend's path and query with placeholders, parsed
// once at compile time.
type pathTemplate struct {
	src   string
	parts []part
}

// compileTemplate parses a backend path. after is the `as` of the backend
// this one runs after ("" = none): only its fields may be referenced.
func compileTemplate(src string, params []string, after string) (*pathTemplate, error) {
	t := &pathTemplate{src: src}
	inQuery := false
	lit := func(s string) {
		if s == "" {
			return
		}
		if !inQuery {
			if i := strings.IndexByte(s, '?'); i >= 0 {
				t.parts = append(t.parts, part{kind: pLiteral, text: s[:i+1]})
				inQuery = true
				if s[i+1:] != "" {
					t.parts = append(t.parts, part{kind: pLiteral, text: s[i+1:], inQuery: true})
				}
				return
			}
		}
		t.parts = append(t.parts, part{kind: pLiteral, text: s, inQuery: inQuery})
	}
	rest := src
	for rest != "" {
		open := strings.IndexByte(rest, '{')
		if open < 0 {
			lit(rest)
			break
		}
		lit(rest[:open])
		end := strings.IndexByte(rest[open:], '}')
		if end < 0 {
			return nil, fmt.Errorf("unclosed { in %q", src)
		}
		name := rest[open+1 : open+end]
		rest = rest[open+end+1:]
		p, err := placeholder(name, params, after)
		if err != nil {
			return nil, err
		}
		p.inQuery = inQuery
		t.parts = append(t.parts, p)
	}
	return t, nil
}

func placeholder(name string, params []string, after string) (part, error) {
	head, field, dotted := strings.Cut(name, ".")
	switch {
	case !dotted && name == "consumer":
		return part{kind: pConsumer}, nil
	case !dotted && contains(params, name):
		return part{kind: pParam, text: name}, nil
	case dotted && head == "param" && contains(params, field):
		return part{kind: pParam, text: field}, nil
	case dotted && head == "query" && field != "":
		return part{kind: pQuery, text: field}, nil
	case dotted && after != "" && head == after && field != "":
		return part{kind: pResult, text: field}, nil
	}
	return part{}, fmt.Errorf("unknown placeholder {%s}", name)
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// render builds the escaped path?query for one call. parent is the answer
// of the backend this one runs after (nil when none). Every value is
// percent-escaped for where it lands, so a value can add no '/', '?', '&'
// or '#' of its own.
func (t *pathTemplate) render(r *http.Request, s *pipeline.State, parent any) (string, error) {
	var b strings.Builder
	b.Grow(len(t.src) + 32)
	for i := range t.parts {
		p := &t.parts[i]
		var v string
		switch p.kind {
		case pLiteral:
			b.WriteString(p.text)
			continue
		case pParam:
			// Router params are in escaped path form; decode so the
			// escaping below is the only one.
			raw, _ := s.Params.Get(p.text)
			if u, err := url.PathUnescape(raw); err == nil {
				v = u
			} else {
				v = raw
			}
		case pQuery:
			v = r.URL.Query().Get(p.text)
		case pConsumer:
			v = s.Consumer
		case pResult:
			fv, ok := fieldString(parent, p.text)
			if !ok {
				return "", fmt.Errorf("the answer it runs after has no usable value for {%s}", p.text)
			}
			v = fv
		}
		if p.inQuery {
			b.WriteString(url.QueryEscape(v))
		} else {
			b.WriteString(url.PathEscape(v))
		}
	}
	return b.String(), nil
}

// fieldString reads a dotted field of a decoded JSON object as text:
// strings as they are, numbers as written, booleans as true/false. Objects,
// arrays, null and absent fields have no text.
func fieldString(v any, dotted string) (string, bool) {
	for name := range strings.SplitSeq(dotted, ".") {
		obj, ok := v.(map[string]any)
		if !ok {
			return "", false
		}
		if v, ok = obj[name]; !ok {
			return "", false
		}
	}
	switch x := v.(type) {
	case string:
		return x, true
	case jsonNumber:
		return x.String(), true
	case bool:
		return strconv.FormatBool(x), true
	}
	return "", false
}
