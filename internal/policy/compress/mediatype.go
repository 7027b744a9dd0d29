package compress

import (
	"fmt"
	"strings"
)

// typeRule matches media types: an exact type ("application/json"), a
// family ("text/*") or a structured-syntax suffix ("application/*+json").
type typeRule struct {
	top    string // "text"
	sub    string // exact subtype, or "" for any
	suffix string // "+json" for "*+json"
}

func parseTypeRule(s string) (typeRule, error) {
	s = strings.ToLower(strings.TrimSpace(s))
	top, sub, ok := strings.Cut(s, "/")
	if !ok || top == "" || sub == "" || strings.ContainsAny(s, " ;,") {
		return typeRule{}, fmt.Errorf("compress: invalid media type %q", s)
	}
	switch {
	case sub == "*":
		return typeRule{top: top}, nil
	case strings.HasPrefix(sub, "*+") && len(sub) > 2:
		return typeRule{top: top, suffix: sub[1:]}, nil
	case strings.Contains(sub, "*"):
		return typeRule{}, fmt.Errorf("compress: invalid media type %q: a wildcard is * or *+suffix", s)
	}
	return typeRule{top: top, sub: sub}, nil
}

// compressible reports whether the Content-Type value ct matches a rule.
// It does not allocate.
func compressible(rules []typeRule, ct string) bool {
	if i := indexByte(ct, ';'); i >= 0 {
		ct = ct[:i]
	}
	ct = trimOWS(ct)
	slash := indexByte(ct, '/')
	if slash <= 0 || slash == len(ct)-1 {
		return false
	}
	top, sub := ct[:slash], ct[slash+1:]
	for i := range rules {
		r := &rules[i]
		if !equalFold(top, r.top) {
			continue
		}
		switch {
		case r.suffix != "":
			if len(sub) > len(r.suffix) && equalFold(sub[len(sub)-len(r.suffix):], r.suffix) {
				return true
			}
		case r.sub == "":
			return true
		case equalFold(sub, r.sub):
			return true
		}
	}
	return false
}

// hasToken reports whether a comma-separated header (all its values)
// names token, case-insensitively; token is lower case.
func hasToken(values []string, token string) bool {
	for _, v := range values {
		for len(v) > 0 {
			var t string
			if i := indexByte(v, ','); i >= 0 {
				t, v = v[:i], v[i+1:]
			} else {
				t, v = v, ""
			}
			t = trimOWS(t)
			if i := indexByte(t, '='); i >= 0 {
				t = t[:i] // a directive with an argument: max-age=0
			}
			if equalFold(t, token) {
				return true
			}
		}
	}
	return false
}
