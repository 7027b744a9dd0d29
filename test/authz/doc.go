// Package authz holds end-to-end tests of authentication and
// authorization through a real gateway: the table of attacks against a
// protected route (spoofed identity headers, keys where they are not
// read, path tricks), what the upstream receives, and mTLS through a TLS
// listener with generated certificates. It has no non-test code.
package authz
