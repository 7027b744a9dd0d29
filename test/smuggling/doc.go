// Package smuggling is the raw-socket evidence for the gateway's request
// framing rules: each row sends exact bytes to a gateway started
// in-process and asserts the answer the client read, whether the
// connection stayed open, and exactly what a raw upstream received.
// The package has no non-test code; docs/protocol-hygiene.md explains the
// rules for users.
package smuggling
