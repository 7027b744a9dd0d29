// Package ratelimit holds end-to-end tests of rate limiting with a real
// redis-server (internal/store/redistest): several gateway instances
// sharing one Redis enforce exactly one limit under concurrent load, and
// both on_error modes behave while Redis is stopped and recover by
// themselves when it returns. It has no non-test code. Without
// redis-server the tests skip, except under CI=true, where they fail.
package ratelimit
