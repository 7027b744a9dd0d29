package upstream

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package if any goroutine outlives the tests: a pool's
// health probes must stop with Close, including those of targets that
// SetTargets removed.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
