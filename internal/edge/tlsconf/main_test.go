package tlsconf

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the run if a Manager's watcher or OCSP refresher outlives
// Close.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
