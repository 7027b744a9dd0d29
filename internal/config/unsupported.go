package config

import (
	"fmt"
	"strconv"
)

// Keys of the contract that this version of the gateway does not implement
// yet. Using one is a validation error, never silently ignored: an ignored
// `auth:` would publish a route that its author meant to protect. When a
// feature lands, delete its row. The schema still accepts these keys; only
// validation refuses them.
var unsupported = []struct {
	key     string // where the key lives, for readers of this table
	planned string // the work that will bring it
	what    string // how the message names it; default: the quoted key
	find    func(c *Config, found func(path string))
}{}

// unsupported reports every use of a key in the table above, where written.
func (v *validator) unsupported() {
	for _, row := range unsupported {
		row.find(v.c, func(path string) {
			what := row.what
			if what == "" {
				what = strconv.Quote(lastKey(path))
			}
			v.add(path, "%s is not supported by this version of Portunus yet (planned: %s)", what, row.planned)
		})
	}
}

// lastKey is the YAML key at the end of a path: "routes[0].cors" -> "cors".
func lastKey(path string) string {
	for p := path; p != ""; {
		parent := parentPath(p)
		if p[len(parent)] == '.' {
			return p[len(parent)+1:]
		}
		if parent == "" {
			return p
		}
		p = parent
	}
	return path
}

// policyKey finds a route policy key wherever policies are written:
// defaults, each policy set, each route.
func policyKey(key string, used func(*RoutePolicies) bool) func(*Config, func(string)) {
	return func(c *Config, found func(string)) {
		if used(&c.Defaults) {
			found("defaults." + key)
		}
		for _, name := range sortedKeys(c.PolicySets) {
			p := c.PolicySets[name]
			if used(&p) {
				found(joinKey("policy_sets", name) + "." + key)
			}
		}
		for i := range c.Routes {
			if used(&c.Routes[i].RoutePolicies) {
				found(fmt.Sprintf("routes[%d].%s", i, key))
			}
		}
	}
}

func routeKey(key string, used func(*Route) bool) func(*Config, func(string)) {
	return func(c *Config, found func(string)) {
		for i := range c.Routes {
			if used(&c.Routes[i]) {
				found(fmt.Sprintf("routes[%d].%s", i, key))
			}
		}
	}
}

func upstreamKey(key string, used func(*Upstream) bool) func(*Config, func(string)) {
	return func(c *Config, found func(string)) {
		for i := range c.Upstreams {
			if used(&c.Upstreams[i]) {
				found(fmt.Sprintf("upstreams[%d].%s", i, key))
			}
		}
	}
}
