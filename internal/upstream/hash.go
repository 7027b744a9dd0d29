package upstream

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/textproto"
	"slices"
	"strconv"
	"strings"

	"github.com/portunus-gw/portunus/internal/pipeline"
)

// What consistent_hash hashes (hash_on).
const (
	hashIP uint8 = iota
	hashConsumer
	hashHeader
	hashCookie
)

// hashKey is a parsed hash_on: ip, consumer, header:NAME or cookie:NAME.
type hashKey struct {
	kind uint8
	name string // canonical header name, or cookie name
}

func parseHashOn(s string) (hashKey, error) {
	switch s {
	case "", "ip":
		return hashKey{kind: hashIP}, nil
	case "consumer":
		return hashKey{kind: hashConsumer}, nil
	}
	if name, ok := strings.CutPrefix(s, "header:"); ok && name != "" {
		return hashKey{kind: hashHeader, name: textproto.CanonicalMIMEHeaderKey(name)}, nil
	}
	if name, ok := strings.CutPrefix(s, "cookie:"); ok && name != "" {
		return hashKey{kind: hashCookie, name: name}, nil
	}
	return hashKey{}, fmt.Errorf("hash_on %q: want ip, consumer, header:NAME or cookie:NAME", s)
}

// FNV-1a, then a 64-bit finalizer (splitmix64) so that near-identical
// inputs ("t#1", "t#2") land far apart on the ring. The hash is fixed, not
// seeded per process, so every gateway instance maps a key to the same
// target.
const (
	fnvOffset = 14695981039346656037
	fnvPrime  = 1099511628211
)

func hashString(h uint64, s string) uint64 {
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= fnvPrime
	}
	return h
}

func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

// keyHash hashes the request's key; ok is false when the request has
// none (no client IP at all), and the pick is then random.
func (k hashKey) keyHash(r *http.Request, s *pipeline.State) (uint64, bool) {
	switch k.kind {
	case hashConsumer:
		if s != nil && s.Consumer != "" {
			return mix64(hashString(hashString(fnvOffset, "c:"), s.Consumer)), true
		}
	case hashHeader:
		if r != nil {
			if v := r.Header[k.name]; len(v) > 0 && v[0] != "" {
				return mix64(hashString(hashString(fnvOffset, "h:"), v[0])), true
			}
		}
	case hashCookie:
		if r != nil {
			if v, ok := cookieValue(r.Header["Cookie"], k.name); ok {
				return mix64(hashString(hashString(fnvOffset, "k:"), v)), true
			}
		}
	}
	// ip, and the fallback of every other kind: the same client keeps
	// its target.
	if s == nil || !s.ClientIP.IsValid() {
		return 0, false
	}
	b := s.ClientIP.Unmap().As16()
	h := uint64(fnvOffset)
	for _, c := range b {
		h ^= uint64(c)
		h *= fnvPrime
	}
	return mix64(h), true
}

// cookieValue finds a cookie in Cookie header lines without allocating
// (http.Request.Cookie parses and copies every cookie).
func cookieValue(lines []string, name string) (string, bool) {
	for _, line := range lines {
		for line != "" {
			var part string
			part, line, _ = strings.Cut(line, ";")
			part = strings.TrimSpace(part)
			n, v, ok := strings.Cut(part, "=")
			if !ok || n != name {
				continue
			}
			if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
				v = v[1 : len(v)-1]
			}
			if v == "" {
				return "", false
			}
			return v, true
		}
	}
	return "", false
}

// Ring size: about ringPointsPerTarget points per target (split by
// weight), which keeps each target's share within a few percent of its
// weight; capped so a huge pool's ring stays small.
const (
	ringPointsPerTarget = 1000
	maxRingPoints       = 1 << 18
)

// hashRing is consistent hashing with weighted virtual nodes: each target
// owns points on a 64-bit ring derived from its URL, and a key goes to the
// owner of the first point at or after its hash. A target that joins or
// leaves takes or gives only the keys next to its own points (about 1/n of
// them); the others keep their target. An ineligible owner passes the key
// to the next point's owner, so the key's second choice is as stable as
// its first.
type hashRing struct {
	targets []*Target
	key     hashKey
	points  []uint64
	owners  []uint32
}

func newHashRing(targets []*Target, key hashKey) *hashRing {
	g, sum := 0, 0
	for _, t := range targets {
		g = gcd(g, t.Weight)
	}
	for _, t := range targets {
		sum += t.Weight / g
	}
	per := float64(ringPointsPerTarget*len(targets)) / float64(sum)
	if total := per * float64(sum); total > maxRingPoints {
		per = maxRingPoints / float64(sum)
	}
	type point struct {
		h     uint64
		owner uint32
	}
	var pts []point
	for i, t := range targets {
		n := max(1, int(per*float64(t.Weight/g)+0.5))
		base := hashString(fnvOffset, t.str)
		for j := range n {
			h := mix64(hashString(hashString(base, "#"), strconv.Itoa(j)))
			pts = append(pts, point{h, uint32(i)})
		}
	}
	slices.SortFunc(pts, func(a, b point) int {
		switch {
		case a.h < b.h:
			return -1
		case a.h > b.h:
			return 1
		}
		// Equal hashes (vanishingly rare): order by URL so every
		// gateway builds the same ring.
		return strings.Compare(targets[a.owner].str, targets[b.owner].str)
	})
	r := &hashRing{targets: targets, key: key, points: make([]uint64, len(pts)), owners: make([]uint32, len(pts))}
	for i, p := range pts {
		r.points[i], r.owners[i] = p.h, p.owner
	}
	return r
}

// search is the index of the first point >= h, wrapping to 0.
func (r *hashRing) search(h uint64) int {
	lo, hi := 0, len(r.points)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if r.points[m] < h {
			lo = m + 1
		} else {
			hi = m
		}
	}
	if lo == len(r.points) {
		return 0
	}
	return lo
}

func (r *hashRing) pick(req *http.Request, s *pipeline.State, tried []*Target) *Target {
	h, ok := r.key.keyHash(req, s)
	if !ok {
		h = rand.Uint64()
	}
	start := r.search(h)
	// seen bounds the walk when targets are down: once every target
	// (of the first 64) was found ineligible, stop.
	var seen uint64
	n := len(r.targets)
	for i := range r.points {
		o := r.owners[(start+i)%len(r.points)]
		if o < 64 && seen&(1<<o) != 0 {
			continue
		}
		if t := r.targets[o]; eligible(t, tried) {
			return t
		}
		if o < 64 {
			seen |= 1 << o
			if n <= 64 && seen == 1<<n-1 {
				return nil
			}
		}
	}
	return nil
}
