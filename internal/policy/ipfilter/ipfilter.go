// Package ipfilter is the ip policy: it allows or denies requests by the
// real client address (pipeline.State.ClientIP, which the gateway has
// already taken from the peer or, behind trusted_proxies, from the
// right-most untrusted X-Forwarded-For hop).
//
//	ip: { allow: [10.0.0.0/8, 2001:db8::/32], deny: [10.9.0.0/16] }
//
// Rules: deny wins over allow; with a non-empty allow list an address in
// none of its CIDRs is denied; with only a deny list everything else is
// allowed. IPv4 and IPv6 are separate families: an IPv4-mapped IPv6
// address (::ffff:10.1.2.3) is the IPv4 address it carries and matches IPv4
// CIDRs, and a CIDR written in mapped form (::ffff:10.0.0.0/104) is the
// IPv4 CIDR 10.0.0.0/8. An IPv6 CIDR such as ::/0 never matches an IPv4
// client. A request whose client address is unknown is denied: a filter
// that cannot tell must not let it through. A denied request is answered
// 403 problem+json "forbidden" and never reaches later policies.
//
// Each list is compiled into sorted, merged, non-overlapping address ranges
// per family, so a check is a binary search over integers: no allocation
// and no lock per request.
package ipfilter

import (
	"fmt"
	"net/http"
	"net/netip"

	"github.com/portunus-gw/portunus/internal/config"
	"github.com/portunus-gw/portunus/internal/pipeline"
	"github.com/portunus-gw/portunus/internal/problem"
)

// New returns the middleware for f (CIDRs already normalized by config;
// New still parses them itself and reports any it cannot read).
func New(f config.IPFilter) (pipeline.Middleware, error) {
	flt, err := compile(f)
	if err != nil {
		return nil, err
	}
	return func(next pipeline.Handler) pipeline.Handler {
		return func(w http.ResponseWriter, r *http.Request, s *pipeline.State) {
			if !flt.allowed(s.ClientIP) {
				s.ErrorCode = string(problem.Forbidden)
				problem.Write(w, r, problem.Problem{Code: problem.Forbidden, Detail: "the client address is not allowed on this route", RequestID: s.RequestID})
				return
			}
			next(w, r, s)
		}
	}, nil
}

// filter is a compiled IPFilter.
type filter struct {
	allow, deny set
	// hasAllow: an allow list was written, so what it does not hold is
	// denied (even when it is empty for one family).
	hasAllow bool
}

func compile(f config.IPFilter) (*filter, error) {
	allow, err := newSet(f.Allow)
	if err != nil {
		return nil, fmt.Errorf("ip.allow: %w", err)
	}
	deny, err := newSet(f.Deny)
	if err != nil {
		return nil, fmt.Errorf("ip.deny: %w", err)
	}
	return &filter{allow: allow, deny: deny, hasAllow: len(f.Allow) > 0}, nil
}

// allowed applies the rules to a, which may be IPv4-mapped or zoned.
func (f *filter) allowed(a netip.Addr) bool {
	if !a.IsValid() {
		return false
	}
	a = a.Unmap()
	if f.deny.contains(a) {
		return false
	}
	return !f.hasAllow || f.allow.contains(a)
}

// set is a list of CIDRs as sorted, disjoint, non-adjacent ranges.
type set struct {
	v4 []range4
	v6 []range6
}

type range4 struct{ lo, hi uint32 }

// u128 is an IPv6 address as a number: hi holds the first 8 bytes.
type u128 struct{ hi, lo uint64 }

type range6 struct{ lo, hi u128 }

func newSet(cidrs []string) (set, error) {
	var s set
	for _, c := range cidrs {
		p, err := parsePrefix(c)
		if err != nil {
			return set{}, err
		}
		if p.Addr().Is4() {
			lo := v4num(p.Addr())
			hi := lo | uint32(uint64(1)<<(32-p.Bits())-1)
			s.v4 = append(s.v4, range4{lo, hi})
			continue
		}
		lo := v6num(p.Addr())
		s.v6 = append(s.v6, range6{lo, lo.or(hostMask(p.Bits()))})
	}
	s.v4 = merge4(s.v4)
	s.v6 = merge6(s.v6)
	return s, nil
}

// parsePrefix reads a CIDR or a bare address (a host prefix), masks it and
// turns IPv4-mapped IPv6 prefixes of /96 or longer into IPv4 ones.
func parsePrefix(s string) (netip.Prefix, error) {
	p, err := netip.ParsePrefix(s)
	if err != nil {
		a, aerr := netip.ParseAddr(s)
		if aerr != nil {
			return netip.Prefix{}, fmt.Errorf("invalid CIDR %q", s)
		}
		p = netip.PrefixFrom(a, a.BitLen())
	}
	a := p.Addr().WithZone("")
	bits := p.Bits()
	if a.Is4In6() && bits >= 96 {
		a, bits = a.Unmap(), bits-96
	}
	return netip.PrefixFrom(a, bits).Masked(), nil
}

func (s *set) contains(a netip.Addr) bool {
	if a.Is4() {
		return contains4(s.v4, v4num(a))
	}
	return contains6(s.v6, v6num(a))
}

func contains4(rs []range4, x uint32) bool {
	// The first range whose hi >= x is the only candidate.
	lo, hi := 0, len(rs)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if rs[m].hi < x {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo < len(rs) && rs[lo].lo <= x
}

func contains6(rs []range6, x u128) bool {
	lo, hi := 0, len(rs)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if rs[m].hi.less(x) {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo < len(rs) && !x.less(rs[lo].lo)
}

func v4num(a netip.Addr) uint32 {
	b := a.As4()
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}

func v6num(a netip.Addr) u128 {
	b := a.As16()
	var n u128
	for i := 0; i < 8; i++ {
		n.hi = n.hi<<8 | uint64(b[i])
		n.lo = n.lo<<8 | uint64(b[8+i])
	}
	return n
}

// hostMask has the low 128-bits bits set.
func hostMask(bits int) u128 {
	host := 128 - bits
	switch {
	case host <= 0:
		return u128{}
	case host < 64:
		return u128{0, 1<<host - 1}
	case host == 64:
		return u128{0, ^uint64(0)}
	case host < 128:
		return u128{1<<(host-64) - 1, ^uint64(0)}
	default:
		return u128{^uint64(0), ^uint64(0)}
	}
}

func (a u128) or(b u128) u128 { return u128{a.hi | b.hi, a.lo | b.lo} }

func (a u128) less(b u128) bool { return a.hi < b.hi || (a.hi == b.hi && a.lo < b.lo) }

// next is a+1 and whether it did not overflow.
func (a u128) next() (u128, bool) {
	lo := a.lo + 1
	hi := a.hi
	if lo == 0 {
		hi++
		if hi == 0 {
			return u128{}, false
		}
	}
	return u128{hi, lo}, true
}
