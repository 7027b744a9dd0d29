//go:build !linux

package h1server

import (
	"sync/atomic"
	"time"
)

// Without epoll, idle connections wait on their goroutine (waitIdle).
func (c *conn) park(time.Time) bool { return false }

func (c *conn) unparkToClose() bool { return false }

type parkState struct {
	parked atomic.Int32
}
