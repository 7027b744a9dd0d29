package grpcweb

import (
	"encoding/base64"
	"errors"
	"io"
)

// errBadBase64 is returned for a grpc-web-text body that is not base64.
var errBadBase64 = errors.New("grpcweb: request body is not valid base64")

// textReader decodes a grpc-web-text request body as it streams. Clients
// may pad each chunk they send, so the input is decoded in independent
// 4-character groups (padding allowed in any group), not as one base64
// string; whitespace (line breaks) is skipped.
type textReader struct {
	rc   io.ReadCloser
	in   [4096]byte
	grp  [4]byte
	ngrp int
	out  []byte // decoded, not yet returned
	obuf [3 * 1024]byte
	err  error
}

func newTextReader(rc io.ReadCloser) *textReader { return &textReader{rc: rc} }

func (t *textReader) Read(p []byte) (int, error) {
	for len(t.out) == 0 {
		if t.err != nil {
			return 0, t.err
		}
		t.fill()
	}
	n := copy(p, t.out)
	t.out = t.out[n:]
	return n, nil
}

// fill reads one chunk of input and decodes its complete groups.
func (t *textReader) fill() {
	max := len(t.obuf) / 3 * 4
	n, err := t.rc.Read(t.in[:max])
	out := t.obuf[:0]
	for _, c := range t.in[:n] {
		switch c {
		case '\r', '\n', ' ', '\t':
			continue
		}
		t.grp[t.ngrp] = c
		t.ngrp++
		if t.ngrp < 4 {
			continue
		}
		t.ngrp = 0
		var dec [3]byte
		m, derr := base64.StdEncoding.Decode(dec[:], t.grp[:])
		if derr != nil {
			t.err = errBadBase64
			t.out = out
			return
		}
		out = append(out, dec[:m]...)
	}
	t.out = out
	switch {
	case err == io.EOF && t.ngrp != 0:
		t.err = errBadBase64
	case err != nil:
		t.err = err
	}
}

func (t *textReader) Close() error { return t.rc.Close() }
