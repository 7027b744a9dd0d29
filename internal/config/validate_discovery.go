package config

import (
	"net"
	"strconv"
	"strings"
)

// discovery checks an upstream's discovery block.
func (v *validator) discovery(p string, d *Discovery) {
	if d.DNSSRV != "" && !validDNSName(d.DNSSRV) {
		v.add(p+".dns_srv", "invalid SRV name %q: want e.g. _http._tcp.users.service.consul", d.DNSSRV)
	}
	if d.Resolver != "" {
		host, port, err := net.SplitHostPort(d.Resolver)
		if n, perr := strconv.Atoi(port); err != nil || host == "" || perr != nil || n < 1 || n > 65535 {
			v.add(p+".resolver", "invalid resolver %q: want host:port, e.g. 127.0.0.1:53", d.Resolver)
		}
	}
	v.positiveDuration(p+".min_ttl", d.MinTTL)
	v.positiveDuration(p+".max_ttl", d.MaxTTL)
	if d.MinTTL > 0 && d.MaxTTL > 0 && d.MinTTL > d.MaxTTL {
		v.add(p+".min_ttl", "min_ttl %s is greater than max_ttl %s", d.MinTTL, d.MaxTTL)
	}
}

// validDNSName reports whether s is a DNS name: dot-separated labels of
// 1-63 letters, digits, '-' or '_' (SRV service labels start with '_').
func validDNSName(s string) bool {
	s = strings.TrimSuffix(s, ".")
	if s == "" || len(s) > 253 {
		return false
	}
	for _, l := range strings.Split(s, ".") {
		if l == "" || len(l) > 63 {
			return false
		}
		for _, c := range l {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}
