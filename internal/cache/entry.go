package cache

import (
	"encoding/binary"
	"errors"
	"net/http"
	"time"
)

// Entry is one stored answer, or (Status 0) a marker saying which request
// headers the answers stored at this key vary by.
type Entry struct {
	Status int
	Header http.Header
	Body   []byte
	// ResponseTime is when the answer (or its last revalidation) arrived.
	ResponseTime time.Time
	// InitialAge is the corrected initial age (RFC 9111 §4.2.3).
	InitialAge time.Duration
	// Lifetime is the freshness lifetime (§4.2.1).
	Lifetime time.Duration
	// SWR and SIE are the stale-while-revalidate and stale-if-error
	// windows (0 = none).
	SWR, SIE time.Duration
	// MustRevalidate forbids serving the entry stale without a
	// successful revalidation (must-revalidate, proxy-revalidate, s-maxage).
	MustRevalidate bool
	// Shared says the answer may be served to any consumer (public or
	// s-maxage), so it is stored under the consumer-less key.
	Shared bool
	// Vary holds the request header names of a marker entry.
	Vary []string

	// ttl is how long the store keeps the entry; set by Set.
	ttl time.Duration
	// memo, set by the memory backend's Set, keeps the fields of recent
	// hits; nil means each hit formats its own.
	memo *hitMemo
}

// Age is the entry's current age at now (§4.2.3).
func (e *Entry) Age(now time.Time) time.Duration {
	resident := now.Sub(e.ResponseTime)
	if resident < 0 {
		resident = 0
	}
	return e.InitialAge + resident
}

// isMarker says e only lists Vary header names.
func (e *Entry) isMarker() bool { return e.Status == 0 }

// entryOverhead is the fixed memory cost of one stored entry besides its
// fields' contents: the Entry, its header map, otter's node and the URL
// index slot (measured by BenchmarkMemoryPerObject).
const entryOverhead = 760

// hitFieldsOverhead is what an entry's hitMemo holds once the entry is
// hit: its Age and Cache-Status values of the last second (~100 bytes).
const hitFieldsOverhead = 112

// size approximates the bytes e holds in memory, for the byte budget.
func (e *Entry) size() int {
	n := entryOverhead + hitFieldsOverhead + len(e.Body)
	for k, vs := range e.Header {
		n += len(k) + 16
		for _, v := range vs {
			n += len(v) + 16
		}
	}
	for _, v := range e.Vary {
		n += len(v) + 16
	}
	return n
}

const entryVersion = 1

var errBadEntry = errors.New("cache: malformed stored entry")

// encode serializes e compactly: a version byte, varints, then
// length-prefixed strings and the body.
func (e *Entry) encode() []byte {
	b := make([]byte, 0, e.size())
	b = append(b, entryVersion)
	b = binary.AppendUvarint(b, uint64(e.Status))
	b = binary.AppendVarint(b, e.ResponseTime.UnixNano())
	b = binary.AppendVarint(b, int64(e.InitialAge))
	b = binary.AppendVarint(b, int64(e.Lifetime))
	b = binary.AppendVarint(b, int64(e.SWR))
	b = binary.AppendVarint(b, int64(e.SIE))
	var flags byte
	if e.MustRevalidate {
		flags |= 1
	}
	if e.Shared {
		flags |= 2
	}
	b = append(b, flags)
	b = binary.AppendUvarint(b, uint64(len(e.Vary)))
	for _, v := range e.Vary {
		b = appendString(b, v)
	}
	b = binary.AppendUvarint(b, uint64(len(e.Header)))
	for k, vs := range e.Header {
		b = appendString(b, k)
		b = binary.AppendUvarint(b, uint64(len(vs)))
		for _, v := range vs {
			b = appendString(b, v)
		}
	}
	b = binary.AppendUvarint(b, uint64(len(e.Body)))
	return append(b, e.Body...)
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// decodeEntry is the inverse of encode; it refuses anything malformed
// rather than serving a damaged answer.
func decodeEntry(b []byte) (*Entry, error) {
	d := decoder{b: b}
	if d.byte() != entryVersion {
		return nil, errBadEntry
	}
	e := &Entry{}
	e.Status = int(d.uvarint())
	e.ResponseTime = time.Unix(0, d.varint())
	e.InitialAge = time.Duration(d.varint())
	e.Lifetime = time.Duration(d.varint())
	e.SWR = time.Duration(d.varint())
	e.SIE = time.Duration(d.varint())
	flags := d.byte()
	e.MustRevalidate = flags&1 != 0
	e.Shared = flags&2 != 0
	if n := d.count(); n > 0 {
		e.Vary = make([]string, n)
		for i := range e.Vary {
			e.Vary[i] = d.string()
		}
	}
	nh := d.count()
	e.Header = make(http.Header, nh)
	for i := 0; i < nh && d.err == nil; i++ {
		k := d.string()
		vs := make([]string, d.count())
		for j := range vs {
			vs[j] = d.string()
		}
		e.Header[k] = vs
	}
	n := d.count()
	e.Body = d.bytes(n)
	if d.err != nil || len(d.b) != 0 {
		return nil, errBadEntry
	}
	return e, nil
}

type decoder struct {
	b   []byte
	err error
}

func (d *decoder) fail() { d.err = errBadEntry; d.b = nil }

func (d *decoder) byte() byte {
	if len(d.b) < 1 {
		d.fail()
		return 0
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c
}

func (d *decoder) uvarint() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail()
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) varint() int64 {
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail()
		return 0
	}
	d.b = d.b[n:]
	return v
}

// count reads a length that must fit in what is left.
func (d *decoder) count() int {
	v := d.uvarint()
	if v > uint64(len(d.b)) {
		d.fail()
		return 0
	}
	return int(v)
}

func (d *decoder) bytes(n int) []byte {
	if n > len(d.b) {
		d.fail()
		return nil
	}
	out := d.b[:n:n]
	d.b = d.b[n:]
	return out
}

func (d *decoder) string() string { return string(d.bytes(d.count())) }
