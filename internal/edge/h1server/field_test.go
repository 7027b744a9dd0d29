package h1server

import (
	"bufio"
	"bytes"
	"strings"
	"testing"
)

// writeFieldReference is writeField as net/http's rule reads, one write per
// piece: the fast path must write exactly what it writes.
func writeFieldReference(bw *bufio.Writer, k string, vv []string) {
	if strings.ContainsAny(k, " :\r\n\t") || k == "" {
		return
	}
	for _, v := range vv {
		v = strings.NewReplacer("\r\n", " ", "\r", " ", "\n", " ").Replace(v)
		bw.WriteString(k + ": " + strings.TrimSpace(v) + "\r\n")
	}
}

func TestWriteFieldValues(t *testing.T) {
	values := []string{
		"", "a", "application/json", " padded ", "\tTab\t", "x\r\nInjected: yes", "x\nInjected: yes",
		"x\rInjected", "\r\n", "trailing\n", "\u00a0nbsp\u00a0", "next\u0085", "é", "ends-é",
		"\x7fdel", "del\x7f", "\xff\xfe", "a b", strings.Repeat("long value ", 500),
	}
	for _, size := range []int{16, 64, 4096} { // the slow path when the buffer is short
		for _, v := range values {
			var got, want bytes.Buffer
			gw, ww := bufio.NewWriterSize(&got, size), bufio.NewWriterSize(&want, size)
			writeField(gw, "X-Test", []string{v, v})
			writeFieldReference(ww, "X-Test", []string{v, v})
			gw.Flush()
			ww.Flush()
			if got.String() != want.String() {
				t.Errorf("buffer %d, value %q: wrote %q; want %q", size, v, got.String(), want.String())
			}
			if n := strings.Count(got.String(), "\r\n"); n != 2 {
				t.Errorf("buffer %d, value %q: %d lines; want 2", size, v, n)
			}
		}
	}
	var out bytes.Buffer
	bw := bufio.NewWriter(&out)
	writeField(bw, "Bad Name", []string{"v"})
	writeField(bw, "Bad:Name", []string{"v"})
	bw.Flush()
	if out.Len() != 0 {
		t.Errorf("fields with invalid names written: %q", out.String())
	}
}
