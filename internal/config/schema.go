package config

import (
	_ "embed"
	"encoding/json"
	"go/ast"
	"go/parser"
	"go/token"
	"reflect"
	"strings"
	"sync"

	"github.com/invopop/jsonschema"
)

// SchemaID is the $id of the generated JSON Schema.
const SchemaID = "https://github.com/portunus-gw/portunus/schema/portunus.schema.json"

// typesSource is types.go itself: its doc comments become the schema's
// descriptions, so editors show the same text as the Go documentation,
// without needing the source tree at run time.
//
//go:embed types.go
var typesSource string

// envRef matches a value that is, or holds, a ${NAME} reference: such a
// value is only known after expansion, so the schema lets it through for
// any scalar type.
const envRef = `\$\{[A-Za-z_][A-Za-z0-9_]*(:-[^}]*)?\}`

// required lists, per type, the keys a config must write. The Go types
// cannot say it (their yaml tags have no omitempty), so it is kept here.
var required = map[string][]string{
	"Listener":         {"address"},
	"Admin":            {"address"},
	"Certificate":      {"cert_file", "key_file"},
	"Upstream":         {"name"},
	"Target":           {"url"},
	"Consumer":         {"name"},
	"JWTProvider":      {"name"},
	"JWTKey":           {"algorithm"},
	"OAuth2Provider":   {"name", "introspection_url"},
	"ForwardAuth":      {"name", "url"},
	"RateLimit":        {"limit", "window"},
	"Quota":            {"limit", "period"},
	"Mirror":           {"upstream"},
	"AggregateBackend": {"upstream", "path"},
	"DemoUpstream":     {"address"},
}

var (
	schemaOnce  sync.Once
	schemaBytes []byte
	schemaErr   error
)

// Schema returns the JSON Schema (draft 2020-12) of the config format,
// generated from the Go types. It accepts every key of the contract,
// including those this version does not support yet (refusing them is
// validation's job), and any ${ENV} reference in a scalar.
func Schema() ([]byte, error) {
	schemaOnce.Do(func() { schemaBytes, schemaErr = buildSchema() })
	return schemaBytes, schemaErr
}

func buildSchema() ([]byte, error) {
	comments := typeComments()
	pkg := reflect.TypeFor[Config]().PkgPath()
	r := &jsonschema.Reflector{
		FieldNameTag:               "yaml",
		RequiredFromJSONSchemaTags: true,
		ExpandedStruct:             true,
		Anonymous:                  true,
		Mapper:                     schemaMapper,
		LookupComment: func(t reflect.Type, field string) string {
			if t.PkgPath() != pkg {
				return ""
			}
			if field == "" {
				return comments[t.Name()]
			}
			return comments[t.Name()+"."+field]
		},
	}
	s := r.Reflect(&Config{})
	s.ID = SchemaID
	s.Title = "Portunus configuration"
	env := &jsonschema.Schema{Type: "string", Pattern: envRef, Description: "a ${NAME} or ${NAME:-default} environment reference, resolved at load time"}
	withEnv := func(desc string, alts ...*jsonschema.Schema) *jsonschema.Schema {
		return &jsonschema.Schema{Description: desc, AnyOf: append(alts, &jsonschema.Schema{Ref: "#/$defs/Env"})}
	}
	s.Definitions["Env"] = env
	s.Definitions["Duration"] = withEnv("a Go duration: 250ms, 5s, 1m30s, 24h (0 for none where allowed)",
		&jsonschema.Schema{Type: "string", Pattern: `^\s*(0|([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+)\s*$`})
	s.Definitions["HedgeDelay"] = withEnv("a Go duration (50ms), or a percentile of the upstream's recent response-header latency from p50 to p99.9 (p95)",
		&jsonschema.Schema{Type: "string", Pattern: `^\s*(0|([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+|p(([5-8][0-9]|9[0-8])(\.[0-9]+)?|99(\.[0-9])?))\s*$`})
	s.Definitions["Size"] = withEnv("a number of bytes, or a number with KiB, MiB or GiB (64KiB, 10MiB)",
		&jsonschema.Schema{Type: "integer", Minimum: "0"},
		&jsonschema.Schema{Type: "string", Pattern: `^\s*[0-9]+\s*(KiB|MiB|GiB|KB|MB|GB|B)?\s*$`})
	s.Definitions["EnvInteger"] = withEnv("", &jsonschema.Schema{Type: "integer"})
	s.Definitions["EnvNumber"] = withEnv("", &jsonschema.Schema{Type: "number"})
	s.Definitions["EnvBoolean"] = withEnv("", &jsonschema.Schema{Type: "boolean"})
	weighted := jsonschema.NewProperties()
	weighted.Set("name", &jsonschema.Schema{Type: "string", Description: "The upstream's name."})
	weighted.Set("weight", &jsonschema.Schema{Ref: "#/$defs/EnvInteger", Description: "Its share of the traffic, relative to the others."})
	s.Definitions["UpstreamRef"] = &jsonschema.Schema{
		Description: "One upstream's name, or a weighted list of upstreams (a traffic split).",
		OneOf: []*jsonschema.Schema{
			{Type: "string"},
			{Type: "array", MinItems: ptr(uint64(1)), Items: &jsonschema.Schema{
				Type: "object", Properties: weighted, Required: []string{"name"}, AdditionalProperties: jsonschema.FalseSchema,
			}},
		},
	}
	for name, keys := range required {
		if d := s.Definitions[name]; d != nil {
			d.Required = keys
		}
	}
	allowEnvInEnums(s)
	for _, d := range s.Definitions {
		allowEnvInEnums(d)
	}
	return json.MarshalIndent(s, "", "  ")
}

func ptr[T any](v T) *T { return &v }

// schemaMapper gives the config's own scalar types, and every non-string
// scalar, a schema that also accepts a ${ENV} reference.
func schemaMapper(t reflect.Type) *jsonschema.Schema {
	switch t {
	case durationType:
		return &jsonschema.Schema{Ref: "#/$defs/Duration"}
	case sizeType:
		return &jsonschema.Schema{Ref: "#/$defs/Size"}
	case upstreamRefType:
		return &jsonschema.Schema{Ref: "#/$defs/UpstreamRef"}
	case hedgeDelayType:
		return &jsonschema.Schema{Ref: "#/$defs/HedgeDelay"}
	}
	switch t.Kind() {
	case reflect.Int, reflect.Int64:
		return &jsonschema.Schema{Ref: "#/$defs/EnvInteger"}
	case reflect.Float64:
		return &jsonschema.Schema{Ref: "#/$defs/EnvNumber"}
	case reflect.Bool:
		return &jsonschema.Schema{Ref: "#/$defs/EnvBoolean"}
	}
	return nil
}

// allowEnvInEnums lets an enum-valued string property also be a ${ENV}
// reference.
func allowEnvInEnums(s *jsonschema.Schema) {
	if s.Properties == nil {
		return
	}
	for pair := s.Properties.Oldest(); pair != nil; pair = pair.Next() {
		p := pair.Value
		if p.Enum == nil {
			continue
		}
		pair.Value = &jsonschema.Schema{
			Description: p.Description,
			AnyOf:       []*jsonschema.Schema{{Type: p.Type, Enum: p.Enum}, {Ref: "#/$defs/Env"}},
		}
	}
}

// typeComments maps "Type" and "Type.Field" to their doc comments in
// types.go, as one line of text each.
func typeComments() map[string]string {
	out := map[string]string{}
	f, err := parser.ParseFile(token.NewFileSet(), "types.go", typesSource, parser.ParseComments)
	if err != nil {
		return out
	}
	clean := func(g *ast.CommentGroup) string {
		return strings.Join(strings.Fields(g.Text()), " ")
	}
	for _, decl := range f.Decls {
		gd, ok := decl.(*ast.GenDecl)
		if !ok {
			continue
		}
		for _, spec := range gd.Specs {
			ts, ok := spec.(*ast.TypeSpec)
			if !ok {
				continue
			}
			doc := ts.Doc
			if doc == nil && len(gd.Specs) == 1 {
				doc = gd.Doc
			}
			if doc != nil {
				out[ts.Name.Name] = clean(doc)
			}
			st, ok := ts.Type.(*ast.StructType)
			if !ok {
				continue
			}
			for _, field := range st.Fields.List {
				doc := field.Doc
				if doc == nil {
					doc = field.Comment
				}
				if doc == nil {
					continue
				}
				for _, n := range field.Names {
					out[ts.Name.Name+"."+n.Name] = clean(doc)
				}
			}
		}
	}
	return out
}
