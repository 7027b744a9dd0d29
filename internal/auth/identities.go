package auth

import "github.com/portunus-gw/portunus/internal/consumers"

// identities holds one prebuilt Identity per configured consumer, so the
// config-backed methods answer without allocating. They are shared: the
// middleware reads them and never modifies them.
type identities map[*consumers.Consumer]*Identity

func newIdentities(dir *consumers.Directory) identities {
	ids := identities{}
	for _, c := range dir.All() {
		id := identityOf(c).(*Identity)
		id.rolesOf = dir // dir.ByName(c.Name) is c: its roles are Roles
		ids[c] = id
	}
	return ids
}

// of is c's identity: prebuilt for a config consumer; for a runtime one
// (admin API) built once and kept on the consumer, which is replaced
// whenever it changes.
func (ids identities) of(c *consumers.Consumer) *Identity {
	if id := ids[c]; id != nil {
		return id
	}
	return c.Derived(identityOf).(*Identity)
}

func identityOf(c *consumers.Consumer) any {
	return &Identity{Consumer: c.Name, Roles: c.Roles[:len(c.Roles):len(c.Roles)]}
}
