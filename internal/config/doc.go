// Package config loads Portunus configuration files: YAML (or JSON) with
// ${ENV} references, decoded by a small reflective decoder that reports
// every problem at once as FILE:LINE:COL: PATH: message; it then validates
// the whole file, layers defaults and policy sets into each route, and
// fills the built-in defaults. Schema generates the JSON Schema of the
// format from the same Go types.
//
// The contract is docs/config.md; the types are in types.go.
package config

//go:generate go run ./gen-schema -o ../../schema/portunus.schema.json
