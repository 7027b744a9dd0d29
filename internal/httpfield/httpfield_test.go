package httpfield

import (
	"bufio"
	"bytes"
	"net/textproto"
	"testing"
)

// CanonicalizeName agrees with textproto on token names and refuses the
// rest, leaving them as textproto does not canonicalize them.
func TestCanonicalizeName(t *testing.T) {
	for _, name := range []string{"host", "HOST", "content-length", "X-REQUEST-ID", "x-a-b", "a", "-x", "x--y", "WWW-Authenticate", "te"} {
		b := []byte(name)
		if !CanonicalizeName(b) {
			t.Errorf("%q refused", name)
			continue
		}
		if want := textproto.CanonicalMIMEHeaderKey(name); string(b) != want {
			t.Errorf("%q: got %q, textproto %q", name, b, want)
		}
	}
	for _, name := range []string{"", "x y", "x:y", "caf\xc3\xa9", "x\ty", "(x)"} {
		if CanonicalizeName([]byte(name)) {
			t.Errorf("%q accepted", name)
		}
	}
}

func FuzzCanonicalizeName(f *testing.F) {
	f.Add("content-type")
	f.Fuzz(func(t *testing.T, name string) {
		b := []byte(name)
		if !CanonicalizeName(b) {
			return
		}
		if want := textproto.CanonicalMIMEHeaderKey(name); string(b) != want {
			t.Fatalf("%q: got %q, textproto %q", name, b, want)
		}
	})
}

// WriteLine writes the same line whether it fits the buffer's free space
// (one copy) or not (piece by piece, flushing on the way).
func TestWriteLine(t *testing.T) {
	for _, size := range []int{16, 4096} {
		var out bytes.Buffer
		bw := bufio.NewWriterSize(&out, size)
		WriteLine(bw, "Content-Type", "application/json")
		WriteLine(bw, "X-A", "")
		bw.Flush()
		if got, want := out.String(), "Content-Type: application/json\r\nX-A: \r\n"; got != want {
			t.Errorf("buffer %d: wrote %q; want %q", size, got, want)
		}
	}
}
