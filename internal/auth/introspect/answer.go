package introspect

import (
	"encoding/json"
	"errors"
	"math"
	"strings"
	"time"

	"github.com/portunus-gw/portunus/internal/auth"
)

// maxListItems bounds the roles and scopes taken from one answer.
const maxListItems = 256

// result is a parsed introspection answer.
type result struct {
	active bool
	id     *auth.Identity
	exp    time.Time
	hasExp bool
}

// parseAnswer reads an RFC 7662 answer. A JSON object without
// "active": true is inactive; so is one whose exp has passed or whose nbf
// is still ahead (the endpoint's clock may be behind ours). Anything that
// is not a JSON object is an error: the endpoint did not answer.
func parseAnswer(body []byte, consumerClaim, rolesClaim string, now time.Time) (result, error) {
	var claims map[string]any
	if err := json.Unmarshal(body, &claims); err != nil || claims == nil {
		return result{}, errors.New("introspection answer is not a JSON object")
	}
	if active, _ := claims["active"].(bool); !active {
		return result{}, nil
	}
	var res result
	if exp, ok := numericDate(claims["exp"]); ok {
		if !now.Before(exp) {
			return result{}, nil
		}
		res.exp, res.hasExp = exp, true
	}
	if nbf, ok := numericDate(claims["nbf"]); ok && now.Before(nbf) {
		return result{}, nil
	}
	res.active = true
	res.id = &auth.Identity{
		Consumer: claimString(lookup(claims, consumerClaim)),
		Roles:    claimList(lookup(claims, rolesClaim)),
		Scopes:   claimList(claims["scope"]),
	}
	return res, nil
}

// lookup finds a claim by name, or by dotted path into nested objects
// when no claim has the whole name ("realm_access.roles").
func lookup(claims map[string]any, name string) any {
	if v, ok := claims[name]; ok {
		return v
	}
	var cur any = claims
	for part := range strings.SplitSeq(name, ".") {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		cur = m[part]
	}
	return cur
}

// numericDate reads a JSON number of seconds since the epoch.
func numericDate(v any) (time.Time, bool) {
	f, ok := v.(float64)
	if !ok || math.IsNaN(f) || math.IsInf(f, 0) || f < 0 || f > 1e11 {
		return time.Time{}, false
	}
	sec, frac := math.Modf(f)
	return time.Unix(int64(sec), int64(frac*1e9)), true
}

// claimString is a string claim; numbers and other types give "" (a
// consumer name must be written as a string).
func claimString(v any) string {
	s, _ := v.(string)
	return s
}

// claimList reads a space-separated string or an array of strings.
func claimList(v any) []string {
	var out []string
	switch t := v.(type) {
	case string:
		for f := range strings.FieldsSeq(t) {
			if len(out) == maxListItems {
				break
			}
			out = append(out, f)
		}
	case []any:
		for _, x := range t {
			if len(out) == maxListItems {
				break
			}
			if s, ok := x.(string); ok && s != "" {
				out = append(out, s)
			}
		}
	}
	return out
}
