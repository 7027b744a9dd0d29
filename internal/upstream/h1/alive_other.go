//go:build !linux

package h1

// alive cannot probe a socket without blocking here; a connection the
// upstream closed while idle fails on use and is redialled when the
// request is replayable.
func (cn *conn) alive() bool { return true }

func (cn *conn) peekFD(fd uintptr) bool { return true }

// awaitAnswer leaves the wait to the buffered read here.
func (cn *conn) awaitAnswer() error { return nil }

func (cn *conn) readableFD(fd uintptr) bool { return true }

// rawOnce: no raw socket access is used here.
func (cn *conn) rawOnce() bool { return false }
