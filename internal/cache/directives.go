package cache

import (
	"strconv"
	"strings"
)

// directives are the Cache-Control directives the cache acts on. Second
// counts are -1 when the directive is absent.
type directives struct {
	noStore, noCache, private, public bool
	mustRevalidate, proxyRevalidate   bool
	maxAge, sMaxAge, swr, sie         int64
	invalidMaxAge, invalidSMaxAge     bool
}

// parseCacheControl reads every Cache-Control field line. Names are
// case-insensitive; a directive given twice keeps the smaller value (the
// more restrictive reading, RFC 9111 §4.2.1). A malformed max-age or
// s-maxage makes the answer stale (§4.2.1), recorded as 0.
func parseCacheControl(values []string) directives {
	d := directives{maxAge: -1, sMaxAge: -1, swr: -1, sie: -1}
	for _, line := range values {
		for len(line) > 0 {
			var item string
			item, line = nextItem(line)
			name, arg, hasArg := strings.Cut(item, "=")
			name = strings.ToLower(strings.TrimSpace(name))
			arg = strings.TrimSpace(arg)
			if hasArg && len(arg) >= 2 && arg[0] == '"' && arg[len(arg)-1] == '"' {
				arg = arg[1 : len(arg)-1]
			}
			switch name {
			case "no-store":
				d.noStore = true
			case "no-cache":
				// A qualified no-cache="field" is read as plain no-cache:
				// always revalidating is the safe side.
				d.noCache = true
			case "private":
				d.private = true
			case "public":
				d.public = true
			case "must-revalidate":
				d.mustRevalidate = true
			case "proxy-revalidate":
				d.proxyRevalidate = true
			case "max-age":
				setSeconds(&d.maxAge, arg, &d.invalidMaxAge)
			case "s-maxage":
				setSeconds(&d.sMaxAge, arg, &d.invalidSMaxAge)
			case "stale-while-revalidate":
				var bad bool
				setSeconds(&d.swr, arg, &bad)
			case "stale-if-error":
				var bad bool
				setSeconds(&d.sie, arg, &bad)
			}
		}
	}
	return d
}

// nextItem splits off one comma-separated item, respecting quotes.
func nextItem(s string) (item, rest string) {
	inQuote := false
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '"':
			inQuote = !inQuote
		case '\\':
			if inQuote {
				i++
			}
		case ',':
			if !inQuote {
				return s[:i], s[i+1:]
			}
		}
	}
	return s, ""
}

// maxDeltaSeconds caps delta-seconds (RFC 9111 §1.2.2 allows 2^31).
const maxDeltaSeconds = 1 << 31

func setSeconds(dst *int64, arg string, invalid *bool) {
	n, err := strconv.ParseInt(arg, 10, 64)
	if err != nil || n < 0 {
		if len(arg) > 0 && allDigits(arg) {
			n = maxDeltaSeconds // overflow: as large as allowed
		} else {
			*invalid = true
			n = 0
		}
	}
	if n > maxDeltaSeconds {
		n = maxDeltaSeconds
	}
	if *dst < 0 || n < *dst {
		*dst = n
	}
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
