package auth

import (
	"errors"
	"net/http"

	"github.com/portunus-gw/portunus/internal/consumers"
	"github.com/portunus-gw/portunus/internal/pipeline"
	"github.com/portunus-gw/portunus/internal/problem"
)

// Options configure one route's authentication.
type Options struct {
	// Methods are the route's auth list, in order; any one suffices.
	Methods []Method
	// Consumers adds configured roles to identities named like a consumer.
	// Nil adds none.
	Consumers *consumers.Directory
	// HideCredentials removes the credential used before forwarding.
	HideCredentials bool
}

// New returns the authentication middleware. Methods are tried in order on
// the credentials the request carries: a method finding none of its kind
// passes to the next; the first that finds one decides. A credential that
// is present but invalid is answered 401 at once, even if a later method
// would accept another credential, so a bad key can never be "rescued" by
// something else in the request. No credential at all is 401 too. Both
// carry one WWW-Authenticate challenge per method that has one.
func New(o Options) pipeline.Middleware {
	methods := append([]Method(nil), o.Methods...)
	names := make([]string, len(methods))
	var challenges []string
	for i, m := range methods {
		names[i] = m.Name()
		if c := m.Challenge(); c != "" {
			challenges = append(challenges, c)
		}
	}
	dir, hide := o.Consumers, o.HideCredentials
	return func(next pipeline.Handler) pipeline.Handler {
		return func(w http.ResponseWriter, r *http.Request, s *pipeline.State) {
			for i, m := range methods {
				id, err := m.Authenticate(r, s)
				if err == ErrNoCredentials {
					continue
				}
				if err != nil {
					var d *Denied
					if errors.As(err, &d) {
						s.AuthError = names[i] + ": denied"
						relay(w, d)
						return
					}
					var u *Unavailable
					if errors.As(err, &u) {
						s.AuthError = names[i] + ": service unavailable"
						s.ErrorCode = string(problem.UpstreamUnavailable)
						w.Header().Set("Retry-After", unavailableRetryAfter)
						problem.Write(w, r, problem.Problem{Code: problem.UpstreamUnavailable, Status: http.StatusServiceUnavailable, Detail: u.Reason, RequestID: s.RequestID})
						return
					}
					s.AuthError = names[i] + ": " + err.Error()
					unauthorized(w, r, s, challenges)
					return
				}
				s.Consumer = id.Consumer
				s.Roles = mergeRoles(id, dir)
				s.Scopes = id.Scopes[:len(id.Scopes):len(id.Scopes)]
				s.AuthMethod = names[i]
				s.AuthError = ""
				for k, vs := range id.Header {
					r.Header.Del(k)
					for _, v := range vs {
						r.Header.Add(k, v)
					}
				}
				if hide {
					m.Hide(r)
				}
				next(w, r, s)
				return
			}
			s.AuthError = "no credentials"
			unauthorized(w, r, s, challenges)
		}
	}
}

// mergeRoles is the identity's roles plus those of the configured consumer
// of the same name. It allocates only when there is something to add; the
// slice returned is capped, so appending to it never writes into an
// identity's or a consumer's array.
func mergeRoles(id *Identity, dir *consumers.Directory) []string {
	roles := id.Roles[:len(id.Roles):len(id.Roles)]
	if dir == nil || id.Consumer == "" || id.rolesOf == dir {
		return roles
	}
	c := dir.ByName(id.Consumer)
	if c == nil {
		return roles
	}
	var out []string
	for _, cr := range c.Roles {
		if contains(roles, cr) || contains(out, cr) {
			continue
		}
		if out == nil {
			out = make([]string, len(roles), len(roles)+len(c.Roles))
			copy(out, roles)
		}
		out = append(out, cr)
	}
	if out == nil {
		return roles
	}
	return out[:len(out):len(out)]
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// unauthorized answers 401 with every challenge.
func unauthorized(w http.ResponseWriter, r *http.Request, s *pipeline.State, challenges []string) {
	if len(challenges) > 0 {
		w.Header()["Www-Authenticate"] = append([]string(nil), challenges...)
	}
	s.ErrorCode = string(problem.Unauthorized)
	problem.Write(w, r, problem.Problem{Code: problem.Unauthorized, RequestID: s.RequestID})
}

// unavailableRetryAfter is the Retry-After, in seconds, of the 503 answered
// when an auth service cannot decide.
const unavailableRetryAfter = "5"

// relay writes a method's deny answer as it is.
func relay(w http.ResponseWriter, d *Denied) {
	h := w.Header()
	for k, vs := range d.Header {
		h[k] = append([]string(nil), vs...)
	}
	// 3xx passes through so a forward-auth service can send the client
	// to its login page; a 2xx or an invalid status is never "allowed"
	// by accident: it becomes 401.
	status := d.Status
	if status < 300 || status > 599 {
		status = http.StatusUnauthorized
	}
	w.WriteHeader(status)
	_, _ = w.Write(d.Body)
}
