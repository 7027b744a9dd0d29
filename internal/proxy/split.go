package proxy

import (
	"errors"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"

	"github.com/portunus-gw/portunus/internal/pipeline"
)

// SplitSide is one side of a traffic split: an upstream, its share, and
// the proxy action that serves the side.
type SplitSide struct {
	Name    string
	Weight  int
	Handler pipeline.Handler
}

// Split sends each request to one side of a weighted list of upstreams
// (a canary). Without stickiness each request draws a side at random in
// proportion to the weights; with sticky_by a hash of the request's
// consumer, client IP or header value chooses the side, so the same
// value always lands on the same side while the weights stay unchanged.
type Split struct {
	sides  []SplitSide
	cum    []uint64 // cumulative weights: side i takes [cum[i-1], cum[i])
	total  uint64
	sticky stickyKind
	header string // canonical header name for sticky_by header:NAME
	// StickyBy is the sticky_by setting as given ("" = not sticky).
	StickyBy string
}

type stickyKind uint8

const (
	stickyNone stickyKind = iota
	stickyConsumer
	stickyIP
	stickyHeader
)

// NewSplit builds the split over sides (weights > 0 are taken; a side of
// weight 0 is never chosen). stickyBy is "", consumer, ip or header:NAME.
func NewSplit(sides []SplitSide, stickyBy string) (*Split, error) {
	sp := &Split{sides: sides, StickyBy: stickyBy}
	for _, sd := range sides {
		if sd.Weight < 0 {
			return nil, errors.New("split: weight of " + sd.Name + " is negative")
		}
		if sd.Handler == nil {
			return nil, errors.New("split: side " + sd.Name + " has no handler")
		}
		sp.total += uint64(sd.Weight)
		sp.cum = append(sp.cum, sp.total)
	}
	if sp.total == 0 {
		return nil, errors.New("split: the weights add up to 0")
	}
	switch {
	case stickyBy == "":
	case stickyBy == "consumer":
		sp.sticky = stickyConsumer
	case stickyBy == "ip":
		sp.sticky = stickyIP
	case strings.HasPrefix(stickyBy, "header:") && len(stickyBy) > len("header:"):
		sp.sticky = stickyHeader
		sp.header = http.CanonicalHeaderKey(stickyBy[len("header:"):])
	default:
		return nil, errors.New("split: sticky_by " + strconv.Quote(stickyBy) + " is not consumer, ip or header:NAME")
	}
	return sp, nil
}

// Sides returns the split's sides (read-only).
func (sp *Split) Sides() []SplitSide { return sp.sides }

// Serve is the split's pipeline.Handler.
func (sp *Split) Serve(w http.ResponseWriter, r *http.Request, s *pipeline.State) {
	sp.sides[sp.Choose(r, s)].Handler(w, r, s)
}

// Choose returns the index of the side for this request.
func (sp *Split) Choose(r *http.Request, s *pipeline.State) int {
	var x uint64
	switch sp.sticky {
	case stickyNone:
		x = rand.Uint64N(sp.total)
		return sp.side(x)
	case stickyConsumer:
		if s.Consumer != "" {
			x = hashString(s.Consumer)
			break
		}
		x = hashIP(s)
	case stickyHeader:
		if v := r.Header[sp.header]; len(v) > 0 && v[0] != "" {
			x = hashString(v[0])
			break
		}
		x = hashIP(s)
	case stickyIP:
		x = hashIP(s)
	}
	return sp.side(mix(x) % sp.total)
}

func (sp *Split) side(x uint64) int {
	for i, c := range sp.cum {
		if x < c {
			return i
		}
	}
	return len(sp.cum) - 1
}

// FNV-1a, 64 bit: cheap, allocation-free, and stable across processes
// and restarts (a client stays on its side when the gateway restarts or
// another instance serves it).
const (
	fnvOffset = 14695981039346656037
	fnvPrime  = 1099511628211
)

func hashString(v string) uint64 {
	h := uint64(fnvOffset)
	for i := 0; i < len(v); i++ {
		h ^= uint64(v[i])
		h *= fnvPrime
	}
	return h
}

// hashIP hashes the client IP: the fallback for an absent value, so a
// client without an identity is still sticky by its address.
func hashIP(s *pipeline.State) uint64 {
	b := s.ClientIP.As16()
	h := uint64(fnvOffset)
	for _, c := range b {
		h ^= uint64(c)
		h *= fnvPrime
	}
	return h
}

// mix spreads FNV's low bits (a finalizer from SplitMix64) so that
// values differing in one character land on sides in the weights'
// proportion even for small totals.
func mix(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}
