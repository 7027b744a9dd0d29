//go:build !linux

package h1

// alive cannot probe a socket without blocking here; a connection the
// upstream closed while idle fails on use and is redialled when the
// request is replayable.
func (cn *conn) alive() bool { return true }

// bindRaw: there are no RawConn callbacks here.
func (cn *conn) bindRaw() {}

// awaitAnswer leaves the wait to the buffered read here.
func (cn *conn) awaitAnswer() error { return nil }

// rawOnce: no raw socket access is used here.
func (cn *conn) rawOnce() bool { return false }
