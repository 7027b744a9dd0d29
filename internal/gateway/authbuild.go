package gateway

import (
	"fmt"
	"log/slog"

	"github.com/portunus-gw/portunus/internal/auth"
	"github.com/portunus-gw/portunus/internal/auth/forwardauth"
	"github.com/portunus-gw/portunus/internal/auth/introspect"
	"github.com/portunus-gw/portunus/internal/auth/jwtauth"
	"github.com/portunus-gw/portunus/internal/carry"
	"github.com/portunus-gw/portunus/internal/config"
	"github.com/portunus-gw/portunus/internal/consumers"
)

// authMethods is every auth method a snapshot's routes may name, by the
// name a route's auth list uses.
type authMethods struct {
	consumers *consumers.Directory
	byName    map[string]auth.Method
}

// buildAuthMethods makes the consumer directory and every method. Methods
// with background state (JWKS refresh, introspection and decision caches)
// are carried over by their config, so a reload keeps their caches.
func buildAuthMethods(cfg *config.Config, b *carry.Build, log *slog.Logger) (*authMethods, config.ErrorList) {
	var errs config.ErrorList
	dir, err := consumers.New(cfg.Consumers)
	if err != nil {
		errs = append(errs, cfg.ErrorAt("consumers", "%v", err))
		dir, _ = consumers.New(nil)
	}
	am := &authMethods{consumers: dir, byName: map[string]auth.Method{}}
	add := func(m auth.Method) {
		if m != nil {
			am.byName[m.Name()] = m
		}
	}
	add(auth.NewAPIKey(cfg.APIKey, dir))
	add(auth.NewBasic(dir))
	add(auth.NewMTLS(dir))
	for i, p := range cfg.JWTProviders {
		m, err := carry.Get(b, carry.Key("jwt", p.Name, p), func() (*jwtauth.Provider, error) { return jwtauth.New(p, log) })
		if err != nil {
			errs = append(errs, cfg.ErrorAt(fmt.Sprintf("jwt_providers[%d]", i), "%v", err))
			continue
		}
		add(m)
	}
	for i, p := range cfg.OAuth2Providers {
		m, err := carry.Get(b, carry.Key("oauth2", p.Name, p), func() (*introspect.Provider, error) { return introspect.New(p, log) })
		if err != nil {
			errs = append(errs, cfg.ErrorAt(fmt.Sprintf("oauth2_providers[%d]", i), "%v", err))
			continue
		}
		add(m)
	}
	for i, f := range cfg.ForwardAuth {
		m, err := carry.Get(b, carry.Key("forward", f.Name, f), func() (*forwardauth.Service, error) { return forwardauth.New(f, log) })
		if err != nil {
			errs = append(errs, cfg.ErrorAt(fmt.Sprintf("forward_auth[%d]", i), "%v", err))
			continue
		}
		add(m)
	}
	return am, errs
}

// methods resolves a route's auth list; validation has checked the names.
func (am *authMethods) methods(names []string) ([]auth.Method, error) {
	out := make([]auth.Method, 0, len(names))
	for _, n := range names {
		m := am.byName[n]
		if m == nil {
			return nil, fmt.Errorf("auth method %q is not available", n)
		}
		out = append(out, m)
	}
	return out, nil
}
