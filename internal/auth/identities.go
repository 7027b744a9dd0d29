package auth

import "github.com/portunus-gw/portunus/internal/consumers"

// identities holds one prebuilt Identity per configured consumer, so the
// config-backed methods answer without allocating. They are shared: the
// middleware reads them and never modifies them.
type identities map[*consumers.Consumer]*Identity

func newIdentities(dir *consumers.Directory) identities {
	ids := identities{}
	for _, c := range dir.All() {
		ids[c] = &Identity{Consumer: c.Name, Roles: c.Roles[:len(c.Roles):len(c.Roles)]}
	}
	return ids
}
