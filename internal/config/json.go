package config

import "encoding/json"

// MarshalJSON writes an UpstreamRef as it is written in YAML: a name, or a
// list of {name, weight}. Used by Hash and by the admin API's config view.
func (r UpstreamRef) MarshalJSON() ([]byte, error) {
	if r.Split != nil {
		return json.Marshal(r.Split)
	}
	return json.Marshal(r.Name)
}
