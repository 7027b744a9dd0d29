package config

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"

	"go.yaml.in/yaml/v3"
)

// Load reads, decodes, validates and completes the config file at path.
// ${ENV} references are resolved from the process environment.
//
// It returns a *FileError when the file cannot be read, and an ErrorList
// holding every problem when the file is invalid.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, &FileError{Path: path, Err: unwrapPathError(err)}
	}
	return Parse(path, data, os.LookupEnv)
}

func unwrapPathError(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// Parse is Load for a config already in memory. file names it in error
// messages and is the base of relative paths (its directory); env looks
// up ${NAME} references (nil: none is set).
//
// The steps, in order: YAML to a node tree; decode with ${ENV} expansion;
// relative paths made absolute; validation of what was written (so every
// problem points at the line that has it); policy sets layered into each
// route; built-in defaults for what is still unset.
func Parse(file string, data []byte, env func(string) (string, bool)) (*Config, error) {
	if env == nil {
		env = func(string) (string, bool) { return "", false }
	}
	src := newSource(file)
	// About one value per 16 bytes of YAML; sizing the position map up
	// front saves most of its growth on large files.
	src.at = make(map[string]pos, len(data)/16)
	c := &Config{src: src}

	root, errs := parseYAML(src, data)
	if errs != nil {
		return nil, errs.sortAndDedupe()
	}
	d := &decoder{src: src, env: env, failed: map[string]bool{}}
	if root != nil {
		src.root = pos{root.Line, root.Column}
		if root.Kind != yaml.MappingNode && !isNull(root) {
			d.errorf(root, "", "expected a mapping of config keys at the top level, got %s", describeNode(root))
		} else {
			d.decode(nil, root, reflect.ValueOf(c).Elem(), "")
		}
	}
	c.resolvePaths()
	v := newValidator(c, d.failed)
	v.errs = d.errs
	v.validate()
	c.applyPolicySets(v)
	if len(v.errs) > 0 {
		return nil, v.errs.sortAndDedupe()
	}
	c.applyDefaults()
	return c, nil
}

func newSource(file string) *source {
	abs, err := filepath.Abs(file)
	if err != nil || file == "" {
		abs = file
	}
	return &source{name: file, abs: abs, dir: filepath.Dir(abs), at: map[string]pos{}, root: pos{1, 1}}
}

// yamlLine finds the line in yaml.v3 syntax errors ("yaml: line 3: ...").
var yamlLine = regexp.MustCompile(`^yaml: line (\d+): `)

// parseYAML parses exactly one YAML document. An empty file gives a nil
// root (a valid but empty config).
func parseYAML(src *source, data []byte) (*yaml.Node, ErrorList) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, nil
		}
		return nil, ErrorList{yamlError(src, err)}
	}
	var extra yaml.Node
	switch err := dec.Decode(&extra); {
	case err == nil:
		return nil, ErrorList{{File: src.name, Line: extra.Line, Col: extra.Column, Msg: "only one YAML document is allowed per config file"}}
	case !errors.Is(err, io.EOF):
		return nil, ErrorList{yamlError(src, err)}
	}
	if doc.Kind == yaml.DocumentNode && len(doc.Content) > 0 {
		return doc.Content[0], nil
	}
	return nil, nil
}

func yamlError(src *source, err error) Error {
	msg := err.Error()
	e := Error{File: src.name, Line: 1, Col: 1}
	if m := yamlLine.FindStringSubmatch(msg); m != nil {
		e.Line, _ = strconv.Atoi(m[1])
		msg = msg[len(m[0]):]
	} else if len(msg) > 6 && msg[:6] == "yaml: " {
		msg = msg[6:]
	}
	e.Msg = "invalid YAML: " + msg
	return e
}

// SourceFile is the absolute path of the config file.
func (c *Config) SourceFile() string {
	if c.src == nil {
		return ""
	}
	return c.src.abs
}

// Dir is the absolute directory of the config file, the base of relative
// paths in it.
func (c *Config) Dir() string {
	if c.src == nil {
		return ""
	}
	return c.src.dir
}

// Files returns the config file and every file it names (certificates,
// keys, CA bundles), absolute and without repeats, for the file watcher.
// The access log is written, not read, so it is not among them.
func (c *Config) Files() []string {
	var out []string
	seen := map[string]bool{}
	add := func(p string) {
		if p != "" && !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	add(c.SourceFile())
	c.eachInputFile(func(p *string) { add(*p) })
	return out
}

// eachInputFile calls f for every field that names a file Portunus reads.
func (c *Config) eachInputFile(f func(*string)) {
	for i := range c.Listeners {
		if t := c.Listeners[i].TLS; t != nil {
			for j := range t.Certificates {
				f(&t.Certificates[j].CertFile)
				f(&t.Certificates[j].KeyFile)
			}
			f(&t.ClientCAFile)
		}
	}
	f(&c.Store.Redis.TLS.CAFile)
	for i := range c.Upstreams {
		t := &c.Upstreams[i].TLS
		f(&t.CAFile)
		f(&t.CertFile)
		f(&t.KeyFile)
	}
	for i := range c.JWTProviders {
		for j := range c.JWTProviders[i].Keys {
			f(&c.JWTProviders[i].Keys[j].PublicKeyFile)
		}
	}
}

// resolvePaths makes relative file paths absolute, relative to the config
// file's directory, so that they mean the same whatever the working
// directory of the process.
func (c *Config) resolvePaths() {
	abs := func(p *string) {
		if *p != "" && !filepath.IsAbs(*p) {
			*p = filepath.Join(c.src.dir, *p)
		}
	}
	c.eachInputFile(abs)
	if p := &c.Observability.AccessLog.Path; !isSpecialLogPath(*p) {
		abs(p)
	}
	abs(&c.Store.ConsumersFile) // written, not watched: not an input file
}

// isSpecialLogPath reports the access-log destinations that are not files.
func isSpecialLogPath(p string) bool {
	return p == "" || p == "stdout" || p == "stderr" || p == "off"
}

// Hash is the hex SHA-256 of a canonical JSON encoding of the effective
// config (after defaults and layering), so two files that mean the same
// have the same hash. It includes secrets: show it, never the config.
func (c *Config) Hash() string {
	b, err := json.Marshal(c)
	if err != nil {
		// Every field is a plain value; this cannot fail. Hash the error
		// rather than panic so a future field type shows up in tests.
		b = []byte(err.Error())
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}
