package gateway

import (
	"encoding/json"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/portunus-gw/portunus/internal/config"
)

// TestSecretFieldsDecided walks config.Config and fails for any field
// named like a secret that secretFields (redacted) or notSecretFields
// (kept, with a reason) does not mention: adding such a field to
// config/types.go needs a decision here.
func TestSecretFieldsDecided(t *testing.T) {
	t.Parallel()
	looksSecret := regexp.MustCompile(`secret|password|passwd|token|key|credential|private`)
	decided := map[string]bool{}
	for _, p := range secretFields {
		decided[strings.TrimSuffix(p, "[]")] = true // the walker names a list, not its elements
	}
	for p := range notSecretFields {
		decided[p] = true
	}
	var found []string
	walkConfigType(reflect.TypeOf(config.Config{}), "", map[reflect.Type]bool{}, func(path, name string) {
		if looksSecret.MatchString(name) {
			found = append(found, path)
		}
	})
	sort.Strings(found)
	for _, p := range found {
		if !decided[p] {
			t.Errorf("config field %s looks like a secret: add it to secretFields or notSecretFields in adminapi_config.go", p)
		}
	}
	// And every decision names a field that exists.
	all := map[string]bool{}
	walkConfigType(reflect.TypeOf(config.Config{}), "", map[reflect.Type]bool{}, func(path, _ string) { all[path] = true })
	for p := range decided {
		if !all[p] && !all[strings.TrimSuffix(p, "[]")] {
			t.Errorf("adminapi_config.go names %s, which config.Config does not have", p)
		}
	}
}

// walkConfigType calls f with the JSON path and name of every field of t.
func walkConfigType(t reflect.Type, prefix string, seen map[reflect.Type]bool, f func(path, name string)) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct || seen[t] {
		return
	}
	seen[t] = true
	defer delete(seen, t)
	for i := 0; i < t.NumField(); i++ {
		sf := t.Field(i)
		if !sf.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(sf.Tag.Get("json"), ",")
		if name == "-" {
			continue
		}
		if name == "" && sf.Anonymous {
			walkConfigType(sf.Type, prefix, seen, f) // inlined
			continue
		}
		if name == "" {
			name = sf.Name
		}
		path := name
		if prefix != "" {
			path = prefix + "." + name
		}
		f(path, name)
		ft := sf.Type
		for {
			switch ft.Kind() {
			case reflect.Pointer:
				ft = ft.Elem()
				continue
			case reflect.Slice, reflect.Array:
				ft = ft.Elem()
				path += "[]"
				continue
			case reflect.Map:
				ft = ft.Elem()
				path += ".*"
				continue
			}
			break
		}
		if ft.Kind() == reflect.Struct && ft.PkgPath() == reflect.TypeOf(config.Config{}).PkgPath() {
			walkConfigType(ft, path, seen, f)
		}
	}
}

func TestRedactedConfig(t *testing.T) {
	t.Parallel()
	cfg := &config.Config{
		Admin: &config.Admin{Address: "127.0.0.1:9901", Token: "s-admin-token"},
		Store: config.Store{Backend: "redis", Redis: config.RedisStore{Addresses: []string{"redis://u:s-redis-url-pw@r:6379"}, Password: "s-redis-password", KeyPrefix: "portunus:"}},
		Consumers: []config.Consumer{{
			Name: "alice", APIKeys: []string{"s-key-1", "s-key-2"},
			BasicAuth: &config.BasicAuth{Username: "alice", PasswordHash: "s-password-hash"},
		}},
		JWTProviders:    []config.JWTProvider{{Name: "j", Keys: []config.JWTKey{{KID: "k1", Algorithm: "HS256", Secret: "s-jwt-secret"}}}},
		OAuth2Providers: []config.OAuth2Provider{{Name: "o", IntrospectionURL: "https://idp/introspect", ClientID: "gw", ClientSecret: "s-client-secret"}},
		Observability:   config.Observability{Tracing: config.Tracing{OTLPEndpoint: "https://user:s-otlp-pw@collector:4318"}},
		Routes: []config.Route{{
			Name:  "r",
			Match: config.Match{Path: "/x", Headers: map[string]string{"X-Internal-Token": "s-match-token", "X-Tenant": "acme"}},
			RoutePolicies: config.RoutePolicies{
				RequestHeaders: &config.HeaderRules{Set: map[string]string{"Authorization": "Bearer s-upstream-bearer", "X-Env": "prod"}},
			},
		}},
		PolicySets: map[string]config.RoutePolicies{"p": {RequestHeaders: &config.HeaderRules{Add: map[string]string{"X-Api-Key": "s-policy-key"}}}},
	}
	tree, err := redactedConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(tree)
	out := string(b)
	for _, secret := range []string{
		"s-admin-token", "s-redis-url-pw", "s-redis-password", "s-key-1", "s-key-2", "s-password-hash",
		"s-jwt-secret", "s-client-secret", "s-otlp-pw", "s-match-token", "s-upstream-bearer", "s-policy-key",
	} {
		if strings.Contains(out, secret) {
			t.Errorf("secret %s survived redaction: %s", secret, out)
		}
	}
	for _, keep := range []string{"127.0.0.1:9901", "portunus:", `"acme"`, `"prod"`, `"k1"`, `"gw"`, "https://idp/introspect", "user:redacted@collector"} {
		if !strings.Contains(out, keep) {
			t.Errorf("redaction removed %s, which is not secret: %s", keep, out)
		}
	}
	var got struct {
		Consumers []struct {
			APIKeys []string `json:"api_keys"`
		} `json:"consumers"`
	}
	_ = json.Unmarshal(b, &got)
	if len(got.Consumers) != 1 || len(got.Consumers[0].APIKeys) != 2 || got.Consumers[0].APIKeys[0] != Redacted {
		t.Errorf("api keys = %+v; want two %q", got.Consumers, Redacted)
	}
	// The config itself is untouched.
	if cfg.Admin.Token != "s-admin-token" {
		t.Errorf("redaction changed the running config")
	}
}

func TestSplitPath(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ in, want string }{
		{"admin.token", "admin token"},
		{"consumers[].api_keys[]", "consumers [] api_keys []"},
		{"policy_sets.*.x", "policy_sets * x"},
	} {
		if got := strings.Join(splitPath(tc.in), " "); got != tc.want {
			t.Errorf("splitPath(%q) = %q; want %q", tc.in, got, tc.want)
		}
	}
}
