//go:build !unix

package sockio

import (
	"errors"
	"syscall"
	"time"
)

// ErrWouldBlock reports that ReadNow found nothing to read.
var ErrWouldBlock = errors.New("sockio: nothing to read yet")

// ReadNow is not available here; callers do not wait through raw
// descriptors on this platform.
func ReadNow(fd int, p []byte) (int, error) { return 0, errors.ErrUnsupported }

// Raw reports whether Reader and Writer work on this platform.
const Raw = false

// Reader is not available here (Raw is false).
type Reader struct{}

// Reset does nothing here.
func (r *Reader) Reset(rc syscall.RawConn) {}

// Read fails here.
func (r *Reader) Read(p []byte) (int, error) { return 0, errors.ErrUnsupported }

// Writer is not available here (Raw is false).
type Writer struct{}

// Reset does nothing here.
func (w *Writer) Reset(rc syscall.RawConn) {}

// Write fails here.
func (w *Writer) Write(p []byte) (int, error) { return 0, errors.ErrUnsupported }

// Polled does nothing here.
func Polled() {}

// PolledWithin reports true here: nothing records the poller's
// wake-ups, so callers behave as on a server whose poll is current.
func PolledWithin(now time.Time, d time.Duration) bool { return true }
