//go:build !unix

package h1server

// canPeek: there is no non-blocking peek here; alive reports that it
// could not look, and its callers watch the connection with a
// background read instead.
const canPeek = false

// peekFD is never called here (canPeek is false).
func (c *conn) peekFD(fd uintptr) bool { return true }
