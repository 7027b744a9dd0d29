package telemetry

import (
	"io"
	"sync/atomic"
)

// BodyCounter wraps a request body and counts the bytes read through it,
// for portunus_request_size_bytes_total: what the gateway actually read,
// whatever Content-Length claimed. Wrap only bodies that exist (not
// http.NoBody), so body-less requests cost nothing.
//
// The count is atomic because the upstream transport reads the body on
// its own goroutine, possibly until after the handler returned; bytes read
// after the request was recorded are not counted.
type BodyCounter struct {
	rc io.ReadCloser
	n  atomic.Int64
}

// NewBodyCounter returns rc wrapped.
func NewBodyCounter(rc io.ReadCloser) *BodyCounter { return &BodyCounter{rc: rc} }

// Read reads from the body, counting what it returns.
func (b *BodyCounter) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	if n > 0 {
		b.n.Add(int64(n))
	}
	return n, err
}

// Close closes the body.
func (b *BodyCounter) Close() error { return b.rc.Close() }

// N is the number of bytes read so far; 0 on a nil *BodyCounter.
func (b *BodyCounter) N() int64 {
	if b == nil {
		return 0
	}
	return b.n.Load()
}
