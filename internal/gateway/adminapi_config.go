package gateway

import (
	"encoding/json"
	"net/url"
	"strings"

	"github.com/portunus-gw/portunus/internal/config"
)

// Redacted replaces a secret value in GET /api/v1/config.
const Redacted = "[redacted]"

// secretFields is every config field that holds a secret, by JSON path:
// "[]" steps into each array element, "*" into each map value. Each is
// replaced by Redacted when set (array elements one by one, so counts
// stay visible). adminapi_config_test.go fails when config/types.go gains
// a field named like a secret that is in neither this list nor
// notSecretFields.
var secretFields = []string{
	"admin.token",
	"store.redis.password",
	"consumers[].api_keys[]",
	"consumers[].basic_auth.password_hash",
	"jwt_providers[].keys[].secret",
	"oauth2_providers[].client_secret",
}

// notSecretFields are fields named like secrets that are not, with why.
var notSecretFields = map[string]string{
	"listeners[].tls.certificates[].key_file": "a file path; the key stays in the file",
	"upstreams[].tls.key_file":                "a file path; the key stays in the file",
	"store.redis.key_prefix":                  "a namespace for store keys",
	"api_key":                                 "where API keys are read from (header and query names)",
	"jwt_providers[].keys":                    "the list itself; its secret field is redacted",
	"jwt_providers[].keys[].public_key_file":  "a file path to a public key",
	// Route policies appear in three places; both are booleans.
	"routes[].hide_credentials":      "a boolean",
	"defaults.hide_credentials":      "a boolean",
	"policy_sets.*.hide_credentials": "a boolean",
	"routes[].cors.credentials":      "a boolean",
	"defaults.cors.credentials":      "a boolean",
	"policy_sets.*.cors.credentials": "a boolean",
}

// Besides the fields above, two rules catch secrets written into places
// that are not secret by type: a header value (match, set or add) whose
// header name looks like a credential, and a password in a URL's userinfo.
var sensitiveHeaderWords = []string{"authorization", "cookie", "token", "secret", "password", "api-key", "apikey", "key"}

// redactedConfig returns cfg as a generic JSON tree with every secret
// replaced.
func redactedConfig(cfg *config.Config) (any, error) {
	b, err := json.Marshal(cfg)
	if err != nil {
		return nil, err
	}
	var tree any
	if err := json.Unmarshal(b, &tree); err != nil {
		return nil, err
	}
	for _, p := range secretFields {
		tree = redactPath(tree, splitPath(p))
	}
	return redactLoose(tree, ""), nil
}

// splitPath turns "a[].b" into ["a", "[]", "b"].
func splitPath(p string) []string {
	var out []string
	for _, part := range strings.Split(p, ".") {
		name, arrays := part, 0
		for strings.HasSuffix(name, "[]") {
			name = strings.TrimSuffix(name, "[]")
			arrays++
		}
		if name != "" {
			out = append(out, name)
		}
		for ; arrays > 0; arrays-- {
			out = append(out, "[]")
		}
	}
	return out
}

func redactPath(node any, path []string) any {
	if len(path) == 0 {
		switch v := node.(type) {
		case nil:
			return nil
		case string:
			if v == "" {
				return v
			}
		}
		return Redacted
	}
	switch v := node.(type) {
	case map[string]any:
		if path[0] == "*" {
			for k, c := range v {
				v[k] = redactPath(c, path[1:])
			}
		} else if c, ok := v[path[0]]; ok {
			v[path[0]] = redactPath(c, path[1:])
		}
	case []any:
		if path[0] == "[]" {
			for i, c := range v {
				v[i] = redactPath(c, path[1:])
			}
		}
	}
	return node
}

// redactLoose applies the header-name and URL-userinfo rules anywhere in
// the tree. key is the name node is held under.
func redactLoose(node any, key string) any {
	switch v := node.(type) {
	case map[string]any:
		headerMap := key == "set" || key == "add" || key == "headers"
		for k, c := range v {
			if s, ok := c.(string); ok && headerMap && s != "" && sensitiveHeader(k) {
				v[k] = Redacted
				continue
			}
			v[k] = redactLoose(c, k)
		}
	case []any:
		for i, c := range v {
			v[i] = redactLoose(c, key)
		}
	case string:
		return redactURLPassword(v)
	}
	return node
}

func sensitiveHeader(name string) bool {
	n := strings.ToLower(name)
	for _, w := range sensitiveHeaderWords {
		if strings.Contains(n, w) {
			return true
		}
	}
	return false
}

// redactURLPassword hides the password of scheme://user:password@host.
func redactURLPassword(s string) string {
	if !strings.Contains(s, "://") || !strings.Contains(s, "@") {
		return s
	}
	u, err := url.Parse(s)
	if err != nil || u.User == nil {
		return s
	}
	if _, has := u.User.Password(); !has {
		return s
	}
	u.User = url.UserPassword(u.User.Username(), "redacted")
	return u.String()
}
