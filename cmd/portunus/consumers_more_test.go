package main

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
)

// cliConsumer is the part of GET /api/v1/consumers/{name} the tests read.
type cliConsumer struct {
	Roles      []string          `json:"roles"`
	Metadata   map[string]string `json:"metadata"`
	RateLimits []rateLimitSpec   `json:"rate_limits"`
	Quotas     []quotaSpec       `json:"quotas"`
	BasicAuth  []struct {
		Username string `json:"username"`
	} `json:"basic_auth"`
	Certificates []struct {
		ID      string `json:"id"`
		Subject string `json:"subject"`
		SAN     string `json:"san"`
	} `json:"certificates"`
}

// TestConsumersCLIProfile: create and update with --rate-limit and
// --quota against a real gateway; update changes only the fields given,
// --clear empties one, and config consumers are refused clearly.
func TestConsumersCLIProfile(t *testing.T) {
	t.Parallel()
	adm := startCLIGateway(t)
	base := []string{"consumers", "--admin", adm, "--token", cliToken}
	cli := func(want int, args ...string) string {
		t.Helper()
		code, out, errs := runCLI(append(append([]string{}, base...), args...)...)
		if code != want {
			t.Fatalf("%v: exit %d (stdout %q, stderr %q); want %d", args, code, out, errs, want)
		}
		return out + errs
	}
	get := func(name string) cliConsumer {
		t.Helper()
		var c cliConsumer
		if err := json.Unmarshal([]byte(cli(0, "get", name)), &c); err != nil {
			t.Fatalf("get %s: %v", name, err)
		}
		return c
	}

	cli(0, "create", "acme", "--role", "buyer", "--meta", "plan=gold",
		"--rate-limit", "100/1m:consumer:20", "--rate-limit", "search=10/1s:header:X-Tenant",
		"--quota", "10000/month:consumer:Europe/Paris", "--quota", "500/day")
	c := get("acme")
	wantRL := []rateLimitSpec{
		{Limit: 100, Window: "1m", By: "consumer", Burst: 20},
		{Name: "search", Limit: 10, Window: "1s", By: "header:X-Tenant", Burst: 10}, // burst defaults to limit
	}
	wantQ := []quotaSpec{
		{Limit: 10000, Period: "month", By: "consumer", TimeZone: "Europe/Paris"},
		{Limit: 500, Period: "day", By: "ip", TimeZone: "UTC"}, // the API's defaults
	}
	if !reflect.DeepEqual(c.RateLimits, wantRL) || !reflect.DeepEqual(c.Quotas, wantQ) {
		t.Errorf("after create: rate_limits %+v quotas %+v; want %+v %+v", c.RateLimits, c.Quotas, wantRL, wantQ)
	}
	if out := cli(0, "list"); !regexp.MustCompile(`acme\s+runtime\s+0\s+2\s+2\s+buyer`).MatchString(out) {
		t.Errorf("list: %q; want acme with 2 rate limits and 2 quotas", out)
	}

	// update --role: roles change, everything else is kept.
	if out := cli(0, "update", "acme", "--role", "seller", "--role", "auditor"); !strings.Contains(out, "updated consumer acme (roles)") {
		t.Errorf("update output: %q", out)
	}
	c = get("acme")
	if !reflect.DeepEqual(c.Roles, []string{"seller", "auditor"}) || c.Metadata["plan"] != "gold" ||
		!reflect.DeepEqual(c.RateLimits, wantRL) || !reflect.DeepEqual(c.Quotas, wantQ) {
		t.Errorf("after update --role: %+v; want new roles and the rest kept", c)
	}
	// update --quota replaces the quotas (all of them), --clear empties
	// the rate limits; roles and metadata stay.
	cli(0, "update", "acme", "--quota", "5/week:route", "--clear", "rate-limits")
	c = get("acme")
	if len(c.RateLimits) != 0 || !reflect.DeepEqual(c.Quotas, []quotaSpec{{Limit: 5, Period: "week", By: "route", TimeZone: "UTC"}}) ||
		len(c.Roles) != 2 || c.Metadata["plan"] != "gold" {
		t.Errorf("after update --quota --clear rate_limits: %+v", c)
	}
	cli(0, "update", "acme", "--meta", "plan=silver", "--meta", "team=x", "--clear", "quotas")
	c = get("acme")
	if len(c.Quotas) != 0 || !reflect.DeepEqual(c.Metadata, map[string]string{"plan": "silver", "team": "x"}) {
		t.Errorf("after update --meta --clear quotas: %+v", c)
	}

	// The API's refusals: exit 1 with its detail.
	if out := cli(1, "update", "nobody", "--role", "x"); !strings.Contains(out, "404") {
		t.Errorf("update of a missing consumer: %q", out)
	}
	if out := cli(1, "update", "from-file", "--role", "x"); !strings.Contains(out, "defined in the config file") {
		t.Errorf("update of a config consumer: %q", out)
	}
	if out := cli(1, "update", "acme", "--quota", "5/day:ip:Mars/Olympus_Mons"); !strings.Contains(out, "400") || !strings.Contains(out, "time_zone") {
		t.Errorf("bad time zone: %q; want the API's 400 naming time_zone", out)
	}

	// Usage errors: exit 2, naming the expected form.
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"create", "x", "--rate-limit", "100"}, "LIMIT/WINDOW"},
		{[]string{"create", "x", "--rate-limit", "0/1m"}, "at least 1"},
		{[]string{"create", "x", "--rate-limit", "10/soon"}, "positive duration"},
		{[]string{"create", "x", "--rate-limit", "10/1m:planet"}, "consumer, ip, route or header:NAME"},
		{[]string{"create", "x", "--rate-limit", "10/1m:header"}, "header:NAME"},
		{[]string{"create", "x", "--rate-limit", "10/1m:ip:0"}, "burst"},
		{[]string{"create", "x", "--rate-limit", "10/1m:ip:5:6"}, "too many parts"},
		{[]string{"create", "x", "--rate-limit", "bad name=10/1m"}, "name"},
		{[]string{"create", "x", "--quota", "10/year"}, "day, week or month"},
		{[]string{"create", "x", "--quota", "ten/day"}, "whole number"},
		{[]string{"create", "x", "--quota", "10/day:ip:UTC:extra"}, "too many parts"},
		{[]string{"create", "x", "--clear", "roles"}, "--clear does not apply to create"},
		{[]string{"update", "acme"}, "nothing to change"},
		{[]string{"update", "acme", "--clear", "keys"}, `--clear "keys"`},
		{[]string{"update", "acme", "--clear", "roles", "--role", "x"}, "give one"},
		{[]string{"update", "acme", "--meta", "a=1", "--meta", "a=2"}, "given twice"},
		{[]string{"keys", "issue", "acme", "--role", "x"}, "--role does not apply to keys issue"},
	} {
		code, _, errs := runCLI(append(append([]string{}, base...), tc.args...)...)
		if code != 2 || !strings.Contains(errs, tc.want) {
			t.Errorf("%v: exit %d, %q; want 2 and %q", tc.args, code, firstLine(errs), tc.want)
		}
	}
}

// TestConsumersCLICredentials: basic add/remove and certs add/remove
// through the CLI, checked against the gateway's behaviour and the
// audit trail read back with audit.
func TestConsumersCLICredentials(t *testing.T) {
	t.Parallel()
	rt := startCLIRuntime(t)
	adm := "http://" + rt.AdminAddr()
	var pub string
	for _, a := range rt.ListenerAddrs() {
		pub = "http://" + a
	}
	base := []string{"consumers", "--admin", adm, "--token", cliToken}
	cli := func(want int, args ...string) string {
		t.Helper()
		code, out, errs := runCLI(append(append([]string{}, base...), args...)...)
		if code != want {
			t.Fatalf("%v: exit %d (stdout %q, stderr %q); want %d", args, code, out, errs, want)
		}
		return out + errs
	}
	basicStatus := func(user, pw string) int {
		t.Helper()
		req, _ := http.NewRequest("GET", pub+"/b", nil)
		req.SetBasicAuth(user, pw)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	cli(0, "create", "acme")

	// basic add from a password file (its final line break is not part
	// of the password); the password never appears in any output.
	pwFile := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(pwFile, []byte("s3cret-Passw0rd\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if out := cli(0, "basic", "add", "acme", "acme-login", "--password-file", pwFile); !strings.Contains(out, "added basic-auth user acme-login to acme") || strings.Contains(out, "s3cret") {
		t.Errorf("basic add output: %q", out)
	}
	if st := basicStatus("acme-login", "s3cret-Passw0rd"); st != 200 {
		t.Errorf("basic login after add: %d; want 200", st)
	}
	cli(1, "basic", "add", "acme", "acme-login", "--password-file", pwFile) // taken: 409
	const hash = "$2a$04$9iD7nSMhVzuaIGFKrJvtreie3HonlvItGJ7aureMD4sTHDwBUjVVa"
	cli(0, "basic", "add", "acme", "second", "--password-hash", hash)
	if out := cli(1, "basic", "add", "acme", "third", "--password-hash", "plain"); !strings.Contains(out, "bcrypt") {
		t.Errorf("bad hash: %q", out)
	}
	cli(0, "basic", "remove", "acme", "acme-login")
	if st := basicStatus("acme-login", "s3cret-Passw0rd"); st != 401 {
		t.Errorf("basic login after remove: %d; want 401", st)
	}
	cli(1, "basic", "remove", "acme", "acme-login")

	// certs add by subject and by SAN; remove by the printed id.
	out := cli(0, "certs", "add", "acme", "--subject", "CN=laptop,O=Acme")
	m := regexp.MustCompile(`added certificate identity (\S+) \(subject CN=laptop,O=Acme\) to acme`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("certs add output: %q", out)
	}
	cli(0, "certs", "add", "acme", "--san", "device-1.example.com")
	var c cliConsumer
	if err := json.Unmarshal([]byte(cli(0, "get", "acme")), &c); err != nil {
		t.Fatal(err)
	}
	if len(c.Certificates) != 2 || len(c.BasicAuth) != 1 || c.BasicAuth[0].Username != "second" {
		t.Errorf("get after credential changes: %+v", c)
	}
	cli(0, "certs", "remove", "acme", m[1])
	cli(1, "certs", "remove", "acme", m[1])
	if out := cli(1, "certs", "add", "acme", "--san", "device-1.example.com"); !strings.Contains(out, "409") {
		t.Errorf("duplicate identity: %q", out)
	}

	// The audit trail, newest first, with paging.
	out = cli(0, "audit")
	for _, want := range []string{"certificate.remove", "certificate.add", "basic.remove", "basic.add", "consumer.create", "token"} {
		if !strings.Contains(out, want) {
			t.Errorf("audit lacks %q: %q", want, out)
		}
	}
	if strings.Contains(out, "s3cret") || strings.Contains(out, hash) {
		t.Errorf("audit shows a secret: %q", out)
	}
	if i, j := strings.Index(out, "certificate.remove"), strings.Index(out, "consumer.create"); i > j {
		t.Errorf("audit not newest first: %q", out)
	}
	out = cli(0, "audit", "--limit", "2")
	if lines := strings.Split(strings.TrimSpace(out), "\n"); len(lines) != 4 || !strings.Contains(out, "entries 1 to 2 of 7") {
		t.Errorf("audit --limit 2: %q; want a header, 2 entries and the paging line", out)
	}
	if out := cli(0, "audit", "--offset", "6", "--limit", "5"); !strings.Contains(out, "consumer.create") || strings.Contains(out, "basic.add") {
		t.Errorf("audit --offset 6: %q; want the oldest entry only", out)
	}
	if out := cli(1, "audit", "--limit", "0"); !strings.Contains(out, "400") {
		t.Errorf("audit --limit 0: %q; want the API's 400", out)
	}
	if out := cli(0, "--json", "audit", "--limit", "1"); !strings.Contains(out, `"total"`) {
		t.Errorf("audit --json: %q", out)
	}

	// Usage errors.
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"basic", "add", "acme", "u"}, "--password-file"},
		{[]string{"basic", "add", "acme", "u", "--password-file", pwFile, "--password-hash", hash}, "not both"},
		{[]string{"basic", "add", "acme", "u", "--password-file", filepath.Join(t.TempDir(), "missing")}, "no such file"},
		{[]string{"basic", "remove", "acme"}, "basic remove NAME USERNAME"},
		{[]string{"certs", "add", "acme"}, "--subject"},
		{[]string{"certs", "add", "acme", "--subject", "CN=a", "--san", "b"}, "--subject"},
		{[]string{"certs", "remove", "acme"}, "certs remove NAME ID"},
		{[]string{"certs", "add", "acme", "--password-hash", hash, "--san", "b"}, "--password-hash does not apply to certs add"},
		{[]string{"audit", "extra"}, "audit [--limit N]"},
	} {
		code, _, errs := runCLI(append(append([]string{}, base...), tc.args...)...)
		if code != 2 || !strings.Contains(errs, tc.want) {
			t.Errorf("%v: exit %d, %q; want 2 and %q", tc.args, code, firstLine(errs), tc.want)
		}
	}
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}

// TestLimitSpecs: the compact forms, good and bad, without a gateway.
func TestLimitSpecs(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]rateLimitSpec{
		"100/1m":                       {Limit: 100, Window: "1m"},
		"100/1m:consumer":              {Limit: 100, Window: "1m", By: "consumer"},
		"100/1m:ip:7":                  {Limit: 100, Window: "1m", By: "ip", Burst: 7},
		"5/1h30m:header:X-Team:2":      {Limit: 5, Window: "1h30m", By: "header:X-Team", Burst: 2},
		"api.v2=1/1s:route":            {Name: "api.v2", Limit: 1, Window: "1s", By: "route"},
		"search=10/250ms:header:X-Key": {Name: "search", Limit: 10, Window: "250ms", By: "header:X-Key"},
	} {
		got, err := parseRateLimit(in)
		if err != nil || got != want {
			t.Errorf("parseRateLimit(%q) = %+v, %v; want %+v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "100", "/1m", "-1/1m", "1/0s", "1/-1m", "1/1m:", "1/1m:header:", "1/1m:header:a b", "1/1m:ip:x", "=1/1m", "-a=1/1m"} {
		if _, err := parseRateLimit(in); err == nil || !strings.Contains(err.Error(), rateLimitForm) {
			t.Errorf("parseRateLimit(%q): %v; want an error with the form", in, err)
		}
	}
	for in, want := range map[string]quotaSpec{
		"10000/month":    {Limit: 10000, Period: "month"},
		"1/day:consumer": {Limit: 1, Period: "day", By: "consumer"},
		"7/week:header:X-Tenant:America/New_York": {Limit: 7, Period: "week", By: "header:X-Tenant", TimeZone: "America/New_York"},
		"10000/month:consumer:Europe/Paris":       {Limit: 10000, Period: "month", By: "consumer", TimeZone: "Europe/Paris"},
	} {
		got, err := parseQuota(in)
		if err != nil || got != want {
			t.Errorf("parseQuota(%q) = %+v, %v; want %+v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "10", "10/1d", "10/Month", "0/day", "10/day:", "10/day::UTC", "10/day:ip:", "10/day:ip:UTC:x", "10/day:header"} {
		if _, err := parseQuota(in); err == nil || !strings.Contains(err.Error(), quotaForm) {
			t.Errorf("parseQuota(%q): %v; want an error with the form", in, err)
		}
	}
}
