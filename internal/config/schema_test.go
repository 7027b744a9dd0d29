package config

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"go.yaml.in/yaml/v3"
)

const schemaFile = "../../schema/portunus.schema.json"

func TestSchemaIsCurrent(t *testing.T) {
	t.Parallel()
	want, err := Schema()
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(schemaFile)
	if err != nil {
		t.Fatalf("%v: run go generate ./internal/config", err)
	}
	if !bytes.Equal(bytes.TrimSpace(got), bytes.TrimSpace(want)) {
		t.Fatalf("%s is out of date: run go generate ./internal/config", schemaFile)
	}
}

// compiledSchema compiles the generated schema with an independent
// validator, so a schema that is not valid draft 2020-12 fails here.
func compiledSchema(t *testing.T) *jsonschema.Schema {
	t.Helper()
	b, err := Schema()
	if err != nil {
		t.Fatal(err)
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource(SchemaID, doc); err != nil {
		t.Fatal(err)
	}
	s, err := c.Compile(SchemaID)
	if err != nil {
		t.Fatalf("compile schema: %v", err)
	}
	return s
}

// yamlToJSONValue decodes YAML into the generic values the schema
// validator takes (map[string]any, []any, float64 via JSON numbers).
func yamlToJSONValue(t *testing.T, data []byte) any {
	t.Helper()
	var v any
	if err := yaml.Unmarshal(data, &v); err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	out, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestExamplesValidate checks every shipped example and every valid test
// config against the schema and with Load. full.yaml uses keys that are
// not supported yet: Load must refuse it with "not supported" errors only.
func TestExamplesValidate(t *testing.T) {
	t.Parallel()
	s := compiledSchema(t)
	examples, _ := filepath.Glob("../../examples/*.yaml")
	valid, _ := filepath.Glob("testdata/valid/*.yaml")
	files := append(examples, valid...)
	if len(valid) < 3 {
		t.Fatalf("got %d files in testdata/valid; want at least 3", len(valid))
	}
	for _, f := range files {
		t.Run(f, func(t *testing.T) {
			t.Parallel()
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Validate(yamlToJSONValue(t, data)); err != nil {
				t.Errorf("schema: %v", err)
			}
			// Every key of the contract is implemented: the full example
			// loads like the others.
			if _, err = Load(f); err != nil {
				t.Errorf("Load: %v", err)
			}
		})
	}
}

func TestSchemaRefusesMistakes(t *testing.T) {
	t.Parallel()
	s := compiledSchema(t)
	for _, tc := range []struct{ name, doc string }{
		{"unknown top-level key", "listenres: []"},
		{"unknown nested key", "routes: [{match: {pth: /}}]"},
		{"bad duration", "defaults: {timeout: soon}"},
		{"bad size", "defaults: {max_body_bytes: 10 parsecs}"},
		{"bad enum", "store: {backend: etcd}"},
		{"string for integer", "store: {redis: {db: one}}"},
		{"missing required", "listeners: [{h2c: true}]"},
		{"upstream ref of wrong shape", "routes: [{upstream: {name: x}}]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if err := s.Validate(yamlToJSONValue(t, []byte(tc.doc))); err == nil {
				t.Errorf("schema accepted %q; want an error", tc.doc)
			}
		})
	}
}

func TestSchemaAcceptsEnvAndForms(t *testing.T) {
	t.Parallel()
	s := compiledSchema(t)
	for _, tc := range []struct{ name, doc string }{
		{"env integer", `store: {redis: {db: "${REDIS_DB}"}}`},
		{"env boolean", `observability: {pprof: "${PPROF:-false}"}`},
		{"env duration", `defaults: {timeout: "${TIMEOUT}"}`},
		{"env enum", `store: {backend: "${BACKEND:-memory}"}`},
		{"size as integer", `defaults: {max_body_bytes: 1048576}`},
		{"size with unit", `defaults: {max_body_bytes: 1MiB}`},
		{"split upstream", `routes: [{upstream: [{name: a, weight: 9}, {name: b, weight: 1}]}]`},
		{"inline policies on route", `routes: [{timeout: 5s, hide_credentials: false}]`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if err := s.Validate(yamlToJSONValue(t, []byte(tc.doc))); err != nil {
				t.Errorf("schema refused %q: %v", tc.doc, err)
			}
		})
	}
}
