// Package authz restricts authenticated requests by role, consumer or
// scope (a route's allow): role-based access control after authentication.
//
// The lists combine with OR: a request passes when its identity has one of
// allow.roles, or is one of allow.consumers, or holds one of allow.scopes.
// An empty list grants nothing, so `allow: {}` refuses everyone. A request
// that reaches allow without an identity (a route with allow but no auth)
// is refused too: allow never makes a route public.
//
//	allow: { roles: [admin], consumers: [ci-bot], scopes: ["orders:write"] }
package authz

import (
	"net/http"

	"github.com/portunus-gw/portunus/internal/config"
	"github.com/portunus-gw/portunus/internal/pipeline"
	"github.com/portunus-gw/portunus/internal/problem"
)

// New returns the middleware answering 403 when the authenticated
// identity matches none of a.
func New(a config.Allow) pipeline.Middleware {
	p := policy{
		roles:     set(a.Roles),
		consumers: set(a.Consumers),
		scopes:    set(a.Scopes),
	}
	return func(next pipeline.Handler) pipeline.Handler {
		return func(w http.ResponseWriter, r *http.Request, s *pipeline.State) {
			if !p.allows(s) {
				if s.Consumer == "" {
					s.AuthError = "allow: no identity"
				} else {
					s.AuthError = "allow: " + s.Consumer + " not allowed"
				}
				s.ErrorCode = string(problem.Forbidden)
				problem.Write(w, r, problem.Problem{Code: problem.Forbidden, RequestID: s.RequestID})
				return
			}
			next(w, r, s)
		}
	}
}

// policy is an allow block compiled to sets.
type policy struct {
	roles, consumers, scopes map[string]struct{}
}

func set(list []string) map[string]struct{} {
	m := make(map[string]struct{}, len(list))
	for _, x := range list {
		m[x] = struct{}{}
	}
	return m
}

func (p *policy) allows(s *pipeline.State) bool {
	if s.Consumer == "" && s.AuthMethod == "" {
		return false
	}
	if _, ok := p.consumers[s.Consumer]; ok && s.Consumer != "" {
		return true
	}
	return anyIn(s.Roles, p.roles) || anyIn(s.Scopes, p.scopes)
}

func anyIn(have []string, want map[string]struct{}) bool {
	if len(want) == 0 {
		return false
	}
	for _, h := range have {
		if _, ok := want[h]; ok {
			return true
		}
	}
	return false
}
