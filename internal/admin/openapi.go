package admin

import _ "embed"

// OpenAPI is the OpenAPI 3.0 document of the admin API, served at
// GET /api/v1/openapi.json. The gateway's conformance test checks live
// answers against it.
//
//go:embed openapi.json
var OpenAPI []byte
