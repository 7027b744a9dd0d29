package aggregate

import (
	"strings"
	"testing"

	"github.com/portunus-gw/portunus/internal/config"
	"github.com/portunus-gw/portunus/internal/upstream"
)

// A {AS.FIELD} must name a field the earlier backend's `fields` keep, under
// its kept name: otherwise every call would fail at run time.
func TestAfterFieldMustBeKept(t *testing.T) {
	t.Parallel()
	a := backend(t, "a", jsonAnswer(`{}`))
	pools := map[string]*upstream.Pool{"a": a}
	two := func(fields []string, path string) config.Aggregate {
		return config.Aggregate{Backends: []config.AggregateBackend{
			{Upstream: "a", Path: "/users/1", As: "user", Fields: fields},
			{Upstream: "a", Path: path, As: "org", After: "user"},
		}}
	}
	valid := []struct {
		desc string
		c    config.Aggregate
	}{
		{"no fields: anything goes", two(nil, "/orgs/{user.org_id}")},
		{"kept field", two([]string{"id", "org_id"}, "/orgs/{user.org_id}")},
		{"renamed field under its new name", two([]string{"id", "org_id:org"}, "/orgs/{user.org}")},
		{"nested field of a kept object", two([]string{"address"}, "/cities/{user.address.city}?q={user.address.zip}")},
	}
	for _, tc := range valid {
		if _, err := Compile(&tc.c, Options{Pools: pools}); err != nil {
			t.Errorf("%s: %v; want it to compile", tc.desc, err)
		}
	}
	invalid := []struct {
		desc string
		c    config.Aggregate
		want string
	}{
		{"dropped field", two([]string{"id", "name"}, "/orgs/{user.org_id}"),
			"backends[1].path: {user.org_id} names a field that user's fields drop (kept: id, name) (backends[0].fields)"},
		{"renamed away", two([]string{"id", "org_id:org"}, "/orgs/{user.org_id}"),
			"backends[1].path: {user.org_id} names a field that user's fields rename to org: use {user.org}"},
		{"nested under a dropped field", two([]string{"id"}, "/cities?c={user.address.city}"),
			"{user.address.city} names a field that user's fields drop (kept: id)"},
		{"nested under a renamed field", two([]string{"address:addr"}, "/cities/{user.address.city}"),
			"use {user.addr.city}"},
	}
	for _, tc := range invalid {
		_, err := Compile(&tc.c, Options{Pools: pools})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v; want an error containing %q", tc.desc, err, tc.want)
		}
	}
}
