package gateway

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
)

// consumersConfig: /k needs an API key, /b basic auth; the config file
// has consumer cfg-user (read-only for the API). extra is more consumers.
func consumersConfig(store, extra string) string {
	return fmt.Sprintf(`
listeners: [{ address: "127.0.0.1:0" }]
observability: { access_log: { path: "off" } }
admin: { address: "127.0.0.1:0", token: %q }
%s
consumers:
  - name: cfg-user
    api_keys: ["cfg-key-0123456789"]
    basic_auth: { username: cfg-login, password_hash: "$2a$04$9iD7nSMhVzuaIGFKrJvtreie3HonlvItGJ7aureMD4sTHDwBUjVVa" }
%s
routes:
  - name: k
    match: { path: /k }
    auth: [api_key]
    respond: { status: 200, body: "ok" }
  - name: b
    match: { path: /b }
    auth: [basic]
    respond: { status: 200, body: "ok" }
`, apiToken, store, extra)
}

// TestConsumersAPI calls every runtime-consumer endpoint, good and bad,
// checking each answer against openapi.json, the gateway's behaviour
// after each change, and that no answer ever holds a secret.
func TestConsumersAPI(t *testing.T) {
	t.Parallel()
	db := filepath.Join(t.TempDir(), "consumers.db")
	store := fmt.Sprintf("store: { consumers_file: %q }", db)
	g := startGateway(t, consumersConfig(store, ""))
	c := newAPIClient(t, g.rt.AdminAddr())
	var secrets []string
	var bodies []string
	call := func(method, path, body string, want int) apiAnswer {
		t.Helper()
		a := c.call(method, path, body, apiToken)
		if a.status != want {
			t.Errorf("%s %s %s: %d %s; want %d", method, path, body, a.status, a.body, want)
		}
		bodies = append(bodies, string(a.body))
		return a
	}
	status := func(path string, hdr map[string]string) int {
		resp := g.do("GET", path, hdr, "")
		resp.Body.Close()
		return resp.StatusCode
	}

	// Create: good, clash, config name, invalid, too large, malformed.
	call("POST", "/api/v1/consumers", `{"name":"acme","roles":["buyer"],"metadata":{"plan":"gold"},"rate_limits":[{"limit":10,"window":"1m"}]}`, 201)
	call("POST", "/api/v1/consumers", `{"name":"acme"}`, 409)
	if a := call("POST", "/api/v1/consumers", `{"name":"cfg-user"}`, 409); !strings.Contains(string(a.body), "defined in the config file") {
		t.Errorf("config name clash detail: %s", a.body)
	}
	call("POST", "/api/v1/consumers", `{"name":"bad name"}`, 400)
	call("POST", "/api/v1/consumers", `{"name":"x","colour":"red"}`, 400)
	call("POST", "/api/v1/consumers", `{"name":"x","roles":["a b"]}`, 400)
	call("POST", "/api/v1/consumers", `{"name":"x","rate_limits":[{"limit":0,"window":"1m"}]}`, 400)
	call("POST", "/api/v1/consumers", `{"name":"x","metadata":{"k":"`+strings.Repeat("v", 70<<10)+`"}}`, 413)
	call("POST", "/api/v1/consumers", `{"name":`, 400)
	call("POST", "/api/v1/consumers", `{"name":"x"} {}`, 400)

	// Read.
	var list ConsumersAnswer
	call("GET", "/api/v1/consumers", "", 200).decode(t, &list)
	if len(list.Consumers) != 2 || list.Consumers[0].Source != "config" || list.Consumers[1].Source != "runtime" || list.Consumers[1].Name != "acme" {
		t.Errorf("list = %+v", list.Consumers)
	}
	var rv RuntimeConsumerView
	call("GET", "/api/v1/consumers/acme", "", 200).decode(t, &rv)
	if rv.Source != "runtime" || rv.Metadata["plan"] != "gold" || rv.RateLimits[0].By != "ip" {
		t.Errorf("get runtime = %+v", rv)
	}
	var cv ConfigConsumerView
	call("GET", "/api/v1/consumers/cfg-user", "", 200).decode(t, &cv)
	if !cv.ReadOnly || cv.Source != "config" || cv.APIKeys != 1 {
		t.Errorf("get config = %+v", cv)
	}
	call("GET", "/api/v1/consumers/nobody", "", 404)

	// Update.
	call("PUT", "/api/v1/consumers/acme", `{"roles":["seller"]}`, 200)
	call("PUT", "/api/v1/consumers/acme", `{"name":"other"}`, 400)
	call("PUT", "/api/v1/consumers/cfg-user", `{"roles":[]}`, 409)
	call("PUT", "/api/v1/consumers/nobody", `{}`, 404)

	// Keys: issue, list, rotate, revoke.
	var k1 IssuedKeyAnswer
	call("POST", "/api/v1/consumers/acme/keys", "", 201).decode(t, &k1)
	secrets = append(secrets, k1.Key)
	if !strings.HasPrefix(k1.Key, "pk_") || k1.ID == "" {
		t.Fatalf("issued %+v", k1)
	}
	if st := status("/k", map[string]string{"X-API-Key": k1.Key}); st != 200 {
		t.Errorf("new key: %d; want 200", st)
	}
	var k2 IssuedKeyAnswer
	call("POST", "/api/v1/consumers/acme/keys/"+k1.ID+"/rotate", `{"overlap":"1h","expires_in":"720h"}`, 201).decode(t, &k2)
	secrets = append(secrets, k2.Key)
	if k2.Replaces == nil || k2.Replaces.ID != k1.ID || k2.Replaces.ExpiresAt == nil || k2.ExpiresAt == nil {
		t.Errorf("rotate answer %+v", k2)
	}
	for _, k := range []string{k1.Key, k2.Key} {
		if st := status("/k", map[string]string{"X-API-Key": k}); st != 200 {
			t.Errorf("during the overlap: %d; want 200", st)
		}
	}
	var keys KeysAnswer
	call("GET", "/api/v1/consumers/acme/keys", "", 200).decode(t, &keys)
	if len(keys.Keys) != 2 || !keys.Keys[0].Active {
		t.Errorf("keys = %+v", keys)
	}
	call("POST", "/api/v1/consumers/acme/keys", `{"expires_in":"soon"}`, 400)
	call("POST", "/api/v1/consumers/acme/keys", `{"overlap":"1h"}`, 400)
	call("POST", "/api/v1/consumers/acme/keys/key_nope/rotate", "", 404)
	call("POST", "/api/v1/consumers/nobody/keys", "", 404)
	call("POST", "/api/v1/consumers/cfg-user/keys", "", 409)
	call("GET", "/api/v1/consumers/cfg-user/keys", "", 409)
	call("GET", "/api/v1/consumers/nobody/keys", "", 404)
	call("DELETE", "/api/v1/consumers/acme/keys/"+k1.ID, "", 204)
	call("DELETE", "/api/v1/consumers/acme/keys/"+k1.ID, "", 404)
	if st := status("/k", map[string]string{"X-API-Key": k1.Key}); st != 401 {
		t.Errorf("revoked key: %d; want 401", st)
	}

	// Basic auth.
	basic := func(u, p string) map[string]string {
		return map[string]string{"Authorization": "Basic " + base64.StdEncoding.EncodeToString([]byte(u+":"+p))}
	}
	// A password is hashed by the gateway (bcrypt cost 10: logging in
	// with it is left to the consumers package's tests, at cost 4, as
	// the race detector makes cost 10 take seconds); a hash is kept.
	secrets = append(secrets, "hunter2-rt")
	call("POST", "/api/v1/consumers/acme/basic_auth", `{"username":"acme-clear","password":"hunter2-rt"}`, 201)
	call("POST", "/api/v1/consumers/acme/basic_auth", `{"username":"acme-login","password_hash":"$2a$04$9iD7nSMhVzuaIGFKrJvtreie3HonlvItGJ7aureMD4sTHDwBUjVVa"}`, 201)
	if st := status("/b", basic("acme-login", "cfg-pass")); st != 200 {
		t.Errorf("runtime basic login: %d; want 200", st)
	}
	if st := status("/b", basic("acme-login", "wrong")); st != 401 {
		t.Errorf("runtime basic login, wrong password: %d; want 401", st)
	}
	call("POST", "/api/v1/consumers/acme/basic_auth", `{"username":"cfg-login","password":"x"}`, 409)
	call("POST", "/api/v1/consumers/acme/basic_auth", `{"username":"acme-login","password":"x"}`, 409)
	call("POST", "/api/v1/consumers/acme/basic_auth", `{"username":"u2"}`, 400)
	call("POST", "/api/v1/consumers/acme/basic_auth", `{"username":"u:2","password":"x"}`, 400)
	call("DELETE", "/api/v1/consumers/acme/basic_auth/acme-login", "", 204)
	call("DELETE", "/api/v1/consumers/acme/basic_auth/acme-login", "", 404)
	if st := status("/b", basic("acme-login", "cfg-pass")); st != 401 {
		t.Errorf("removed basic login: %d; want 401", st)
	}

	// Certificate identities.
	var cert struct{ ID string }
	call("POST", "/api/v1/consumers/acme/certificates", `{"subject":"CN=acme-box,O=Acme"}`, 201).decode(t, &cert)
	call("POST", "/api/v1/consumers/acme/certificates", `{"subject":"CN=a","san":"b"}`, 400)
	call("POST", "/api/v1/consumers/acme/certificates", `{}`, 400)
	call("DELETE", "/api/v1/consumers/acme/certificates/"+cert.ID, "", 204)
	call("DELETE", "/api/v1/consumers/acme/certificates/"+cert.ID, "", 404)

	// Audit trail.
	var audit AuditAnswer
	call("GET", "/api/v1/audit?limit=3", "", 200).decode(t, &audit)
	if len(audit.Entries) != 3 || audit.Total != 10 || audit.Entries[0].Action != "certificate.remove" || audit.Entries[0].Actor != "token" {
		t.Errorf("audit = %+v", audit)
	}
	call("GET", "/api/v1/audit?limit=0", "", 400)
	call("GET", "/api/v1/audit?offset=x", "", 400)

	// A runtime consumer whose name the config file takes later.
	call("POST", "/api/v1/consumers", `{"name":"late"}`, 201)
	var late IssuedKeyAnswer
	call("POST", "/api/v1/consumers/late/keys", "", 201).decode(t, &late)
	secrets = append(secrets, late.Key)
	g.rewrite(consumersConfig(store, `  - name: late
    roles: [cfg]`))
	if err := g.rt.Reload("test"); err != nil {
		t.Fatal(err)
	}
	call("GET", "/api/v1/consumers", "", 200).decode(t, &list)
	found := false
	for _, v := range list.Consumers {
		if v.Name == "late" && v.Source == "runtime" {
			found = v.ShadowedByConfig
		}
	}
	if !found {
		t.Errorf("list does not mark the runtime consumer shadowed: %+v", list.Consumers)
	}
	call("GET", "/api/v1/consumers/late", "", 200).decode(t, &cv)
	if !cv.ShadowsRuntime || cv.Source != "config" {
		t.Errorf("get late = %+v; want the config consumer, shadowing a runtime one", cv)
	}
	if st := status("/k", map[string]string{"X-API-Key": late.Key}); st != 401 {
		t.Errorf("shadowed runtime consumer's key: %d; want 401", st)
	}
	call("POST", "/api/v1/consumers/late/keys", "", 409)
	call("DELETE", "/api/v1/consumers/late", "", 204) // cleanup of the shadowed one is allowed

	// Delete.
	call("DELETE", "/api/v1/consumers/acme", "", 204)
	call("DELETE", "/api/v1/consumers/acme", "", 404)
	call("DELETE", "/api/v1/consumers/cfg-user", "", 409)
	if st := status("/k", map[string]string{"X-API-Key": k2.Key}); st != 401 {
		t.Errorf("key of a deleted consumer: %d; want 401", st)
	}

	// No answer ever held a key, a password, or any hash.
	for _, b := range bodies {
		for _, s := range secrets {
			if strings.Contains(b, s) && !strings.Contains(b, `"key": "`+s+`"`) {
				t.Errorf("an answer holds a secret: %s", b)
			}
		}
		if strings.Contains(b, "$2a$04$9iD7") || strings.Contains(b, `"sha256"`) || strings.Contains(b, `"password_hash":`) {
			t.Errorf("an answer holds a hash: %s", b)
		}
		for _, s := range secrets {
			sum := sha256.Sum256([]byte(s))
			if strings.Contains(b, hex.EncodeToString(sum[:])) {
				t.Errorf("an answer holds a key hash: %s", b)
			}
		}
	}
	// And each key appeared in exactly one answer: the one issuing it.
	for _, s := range secrets[:2] {
		n := 0
		for _, b := range bodies {
			n += strings.Count(b, s)
		}
		if n != 1 {
			t.Errorf("key appeared in %d answers; want exactly 1", n)
		}
	}
	raw, _ := json.Marshal(list)
	if strings.Contains(string(raw), "cfg-key") {
		t.Errorf("list holds a config key: %s", raw)
	}
}

// TestConsumersAPIOff: without consumers_file (memory store), writes are
// refused saying how to enable them; reads work.
func TestConsumersAPIOff(t *testing.T) {
	t.Parallel()
	g := startGateway(t, consumersConfig("", ""))
	c := newAPIClient(t, g.rt.AdminAddr())
	a := c.call("POST", "/api/v1/consumers", `{"name":"acme"}`, apiToken)
	if a.status != 409 || !strings.Contains(string(a.body), "store.consumers_file") {
		t.Errorf("create while off: %d %s", a.status, a.body)
	}
	if a := c.call("GET", "/api/v1/consumers", "", apiToken); a.status != 200 {
		t.Errorf("list while off: %d", a.status)
	}
	if a := c.call("GET", "/api/v1/audit", "", apiToken); a.status != 200 {
		t.Errorf("audit while off: %d", a.status)
	}
	if a := c.call("DELETE", "/api/v1/consumers/acme/keys/k", "", apiToken); a.status != 409 {
		t.Errorf("revoke while off: %d %s", a.status, a.body)
	}
}

// TestConsumerListQuotaCounts: the consumer list counts each consumer's
// own quotas beside its rate limits, config and runtime alike, and GET
// of a config consumer says the same; the answers conform to openapi.json
// (where quotas is a required count).
func TestConsumerListQuotaCounts(t *testing.T) {
	t.Parallel()
	db := filepath.Join(t.TempDir(), "consumers.db")
	extra := `  - name: cfg-metered
    api_keys: ["cfg-metered-key-0123"]
    rate_limits: [{ limit: 5, window: 1m }]
    quotas: [{ limit: 100, period: day, by: consumer }, { limit: 1000, period: month, by: consumer }]`
	g := startGateway(t, consumersConfig(fmt.Sprintf("store: { consumers_file: %q }", db), extra))
	c := newAPIClient(t, g.rt.AdminAddr())
	call := func(method, path, body string, want int) apiAnswer {
		t.Helper()
		a := c.call(method, path, body, apiToken)
		if a.status != want {
			t.Fatalf("%s %s %s: %d %s; want %d", method, path, body, a.status, a.body, want)
		}
		return a
	}
	call("POST", "/api/v1/consumers", `{"name":"rt-metered","quotas":[{"limit":10,"period":"week","by":"consumer","time_zone":"Europe/Paris"}]}`, 201)
	call("POST", "/api/v1/consumers", `{"name":"rt-plain"}`, 201)

	counts := func() map[string][2]int {
		t.Helper()
		var list ConsumersAnswer
		call("GET", "/api/v1/consumers", "", 200).decode(t, &list)
		out := map[string][2]int{}
		for _, v := range list.Consumers {
			out[v.Name] = [2]int{v.RateLimits, v.Quotas}
		}
		return out
	}
	want := map[string][2]int{"cfg-user": {0, 0}, "cfg-metered": {1, 2}, "rt-metered": {0, 1}, "rt-plain": {0, 0}}
	if got := counts(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("[rate_limits quotas] per consumer = %v; want %v", got, want)
	}
	var raw []map[string]any
	var list struct {
		Consumers *[]map[string]any `json:"consumers"`
	}
	list.Consumers = &raw
	call("GET", "/api/v1/consumers", "", 200).decode(t, &list)
	for _, v := range raw {
		if _, ok := v["quotas"]; !ok {
			t.Errorf("consumer %v: no quotas count in the answer", v["name"])
		}
	}
	var cv ConfigConsumerView
	call("GET", "/api/v1/consumers/cfg-metered", "", 200).decode(t, &cv)
	if cv.Quotas != 2 || cv.RateLimits != 1 || !cv.ReadOnly {
		t.Errorf("GET of the config consumer = %+v; want 2 quotas, 1 rate limit, read-only", cv)
	}

	// A PUT that changes the quotas changes the count.
	call("PUT", "/api/v1/consumers/rt-plain", `{"quotas":[{"limit":1,"period":"day"},{"limit":2,"period":"week"},{"limit":3,"period":"month"}]}`, 200)
	call("PUT", "/api/v1/consumers/rt-metered", `{}`, 200)
	want["rt-plain"], want["rt-metered"] = [2]int{0, 3}, [2]int{0, 0}
	if got := counts(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("after the PUTs: %v; want %v", got, want)
	}
}
