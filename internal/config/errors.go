package config

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// Error is one problem in a config file, with where it was written.
type Error struct {
	// File is the config file's name as given to Load or Parse.
	File string
	// Line and Col are 1-based; they point at the offending value (or key,
	// for unknown and duplicate keys).
	Line, Col int
	// Path is the field path, e.g. routes[2].match.path_prefix; empty for
	// problems with the document as a whole.
	Path string
	// Msg says what is wrong, lower-case, without the position.
	Msg string
}

// Error formats e as FILE:LINE:COL: PATH: message.
func (e Error) Error() string {
	var b strings.Builder
	b.Grow(len(e.File) + len(e.Path) + len(e.Msg) + 16)
	b.WriteString(e.File)
	b.WriteByte(':')
	b.WriteString(strconv.Itoa(e.Line))
	b.WriteByte(':')
	b.WriteString(strconv.Itoa(e.Col))
	b.WriteString(": ")
	if e.Path != "" {
		b.WriteString(e.Path)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// ErrorList is every problem found in a config, sorted by position.
type ErrorList []Error

// Error joins the errors, one per line.
func (l ErrorList) Error() string {
	lines := make([]string, len(l))
	for i, e := range l {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// sortAndDedupe orders the list by line, then column (stable, so problems
// at one position keep the order they were found in) and drops exact
// repeats.
func (l ErrorList) sortAndDedupe() ErrorList {
	sort.SliceStable(l, func(i, j int) bool {
		if l[i].Line != l[j].Line {
			return l[i].Line < l[j].Line
		}
		return l[i].Col < l[j].Col
	})
	out := l[:0]
	seen := make(map[Error]bool, len(l))
	for _, e := range l {
		if seen[e] {
			continue
		}
		seen[e] = true
		out = append(out, e)
	}
	return out
}

// FileError reports a config file that could not be read at all (missing,
// unreadable). The CLI exits 2 for it, and 1 for an ErrorList.
type FileError struct {
	Path string
	Err  error
}

func (e *FileError) Error() string { return "config: cannot read " + e.Path + ": " + e.Err.Error() }

// Unwrap returns the underlying I/O error, so errors.Is(err, fs.ErrNotExist) works.
func (e *FileError) Unwrap() error { return e.Err }

// pos is a 1-based line and column.
type pos struct{ line, col int }

// source is what a Config remembers about its origin.
type source struct {
	name string         // as given to Load/Parse, used in messages
	abs  string         // absolute path of the file
	dir  string         // absolute directory, base of relative paths
	at   map[string]pos // field path -> where its value was written
	root pos
}

// ErrorAt builds an Error for the field at path, positioned where the
// longest known prefix of path was written, so that a problem found after
// decoding (by validation or by the gateway's compiler) points at the
// field that caused it. Works on a Config without a source too (line 0).
func (c *Config) ErrorAt(path, format string, args ...any) Error {
	e := Error{Path: path, Msg: fmt.Sprintf(format, args...)}
	if c == nil || c.src == nil {
		return e
	}
	e.File = c.src.name
	p := c.src.lookup(path)
	e.Line, e.Col = p.line, p.col
	return e
}

// has reports whether a value was written at exactly path.
func (s *source) has(path string) bool {
	if s == nil {
		return false
	}
	_, ok := s.at[path]
	return ok
}

// lookup returns the position of path or of its longest known prefix.
func (s *source) lookup(path string) pos {
	for {
		if p, ok := s.at[path]; ok {
			return p
		}
		if path == "" {
			return s.root
		}
		path = parentPath(path)
	}
}

// parentPath drops the last element of a field path: "a.b[2]" -> "a.b",
// "a.b" -> "a", `a["x.y"]` -> "a". Quoted map keys may hold '.' and '['.
func parentPath(p string) string {
	cut, inQuote := 0, false
	for i := 0; i < len(p); i++ {
		switch c := p[i]; {
		case inQuote && c == '\\':
			i++
		case c == '"':
			inQuote = !inQuote
		case !inQuote && (c == '.' || c == '['):
			cut = i
		}
	}
	return p[:cut]
}

// joinKey appends a map key or field name to a path. Keys that are not
// plain words are quoted so that the path stays unambiguous.
func joinKey(path, key string) string {
	plain := key != ""
	for i := 0; i < len(key) && plain; i++ {
		c := key[i]
		plain = c == '_' || c == '-' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
	}
	switch {
	case !plain:
		return path + "[" + strconv.Quote(key) + "]"
	case path == "":
		return key
	}
	return path + "." + key
}

// joinIndex appends a list index to a path.
func joinIndex(path string, i int) string {
	return path + "[" + strconv.Itoa(i) + "]"
}
