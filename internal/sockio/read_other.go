//go:build !unix

package sockio

import "errors"

// ErrWouldBlock reports that ReadNow found nothing to read.
var ErrWouldBlock = errors.New("sockio: nothing to read yet")

// ReadNow is not available here; callers do not wait through raw
// descriptors on this platform.
func ReadNow(fd int, p []byte) (int, error) { return 0, errors.ErrUnsupported }
