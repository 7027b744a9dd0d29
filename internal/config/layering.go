package config

import (
	"fmt"
	"reflect"
)

// applyPolicySets computes each route's effective policies: defaults:,
// then each policy set named in use:, in order, then the route's own keys.
// A later layer replaces a key only where it sets it (a non-nil pointer,
// slice or map), and replaces it whole: rate_limits from a route replace
// those of a set, they are not appended. The result is written back into
// Route.RoutePolicies so consumers of Config just read the route; Use is
// kept as written. Unknown set names are reported on v.
func (c *Config) applyPolicySets(v *validator) {
	for i := range c.Routes {
		r := &c.Routes[i]
		eff := c.Defaults
		for j, name := range r.Use {
			set, ok := c.PolicySets[name]
			if !ok {
				v.add(fmt.Sprintf("routes[%d].use[%d]", i, j), "unknown policy set %q%s", name, didYouMean(name, sortedKeys(c.PolicySets)))
				continue
			}
			overlay(&eff, &set)
		}
		overlay(&eff, &r.RoutePolicies)
		r.RoutePolicies = eff
	}
}

// overlay copies every key set in top over dst. Pointers are copied as
// pointers: layers share the values they point to, which is safe because
// a Config is never mutated after loading.
func overlay(dst, top *RoutePolicies) {
	d := reflect.ValueOf(dst).Elem()
	t := reflect.ValueOf(top).Elem()
	for i := range t.NumField() {
		f := t.Field(i)
		switch f.Kind() {
		case reflect.Pointer, reflect.Slice, reflect.Map:
			if !f.IsNil() {
				d.Field(i).Set(f)
			}
		default:
			// Every RoutePolicies field must be nilable, or layering could
			// not tell "unset" from "zero"; TestRoutePoliciesFieldsAreNilable
			// guards this.
			panic("config: RoutePolicies field " + t.Type().Field(i).Name + " is not a pointer, slice or map")
		}
	}
}
