package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

const consumersUsage = `Usage: portunus consumers [--admin URL] [--token TOKEN] [--json] COMMAND ...

Manage runtime consumers through a running instance's admin API.

  list                                   every consumer (config and runtime)
  get NAME                               one consumer, without secrets
  create NAME [PROFILE FLAGS]
  update NAME [PROFILE FLAGS] [--clear FIELD]...
                                         change only the fields given; the others are kept
  delete NAME                            the consumer and every credential
  keys issue NAME [--expires-in 720h]    prints the key once; only its hash is kept
  keys list NAME
  keys rotate NAME KEY_ID [--overlap 1h] [--expires-in D]
  keys revoke NAME KEY_ID
  basic add NAME USERNAME --password-file FILE|-   (- reads standard input)
  basic add NAME USERNAME --password-hash BCRYPT
  basic remove NAME USERNAME
  certs add NAME --subject DN | --san NAME         a client certificate identity for mtls routes
  certs remove NAME ID
  audit [--limit 100] [--offset 0]       the audit trail, newest first

Profile flags (each may repeat; on update, a flag given replaces that whole field):
  --role R
  --meta KEY=VALUE
  --rate-limit [NAME=]LIMIT/WINDOW[:BY[:BURST]]   e.g. 100/1m:consumer:20, 10/1s:header:X-Tenant
  --quota LIMIT/PERIOD[:BY[:TIME_ZONE]]           e.g. 10000/month:consumer:Europe/Paris
  --clear roles|metadata|rate_limits|quotas       (update) empty a field
  BY is consumer, ip (the default), route or header:NAME; BURST defaults to LIMIT;
  PERIOD is day, week or month; TIME_ZONE is an IANA name (default UTC) and needs a BY before it.

  --admin   admin API base URL (default http://127.0.0.1:9901)
  --token   admin bearer token (default: $PORTUNUS_ADMIN_TOKEN)
  --json    print the API's JSON answer as is

update reads the consumer, changes the fields given and writes it back (the API's PUT
replaces every field): a change made by someone else between the two is overwritten.

Exit codes: 0 success; 1 the API refused or could not be reached; 2 usage error.
`

// adminTimeout bounds one admin API call.
const adminTimeout = 15 * time.Second

// multiFlag collects a repeated flag.
type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

// consumersCLI is one invocation's settings.
type consumersCLI struct {
	admin, token                string
	json                        bool
	roles, meta, limits, quotas multiFlag
	clear                       multiFlag
	expiresIn, overlap          string
	passwordFile, passwordHash  string
	subject, san                string
	auditLimit, auditOffset     int
	set                         map[string]bool // flags given
	stdout, stderr              io.Writer
}

// globalFlags apply to every command.
var globalFlags = map[string]bool{"admin": true, "token": true, "json": true}

// commandFlags are the flags each command takes besides the global ones.
var commandFlags = map[string][]string{
	"create":      {"role", "meta", "rate-limit", "quota"},
	"update":      {"role", "meta", "rate-limit", "quota", "clear"},
	"keys issue":  {"expires-in"},
	"keys rotate": {"expires-in", "overlap"},
	"basic add":   {"password-file", "password-hash"},
	"certs add":   {"subject", "san"},
	"audit":       {"limit", "offset"},
}

func cmdConsumers(args []string, stdout, stderr io.Writer) int {
	c := &consumersCLI{stdout: stdout, stderr: stderr, set: map[string]bool{}}
	fs := flag.NewFlagSet("consumers", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&c.admin, "admin", "http://127.0.0.1:9901", "")
	fs.StringVar(&c.token, "token", "", "")
	fs.BoolVar(&c.json, "json", false, "")
	fs.Var(&c.roles, "role", "")
	fs.Var(&c.meta, "meta", "")
	fs.Var(&c.limits, "rate-limit", "")
	fs.Var(&c.quotas, "quota", "")
	fs.Var(&c.clear, "clear", "")
	fs.StringVar(&c.expiresIn, "expires-in", "", "")
	fs.StringVar(&c.overlap, "overlap", "", "")
	fs.StringVar(&c.passwordFile, "password-file", "", "")
	fs.StringVar(&c.passwordHash, "password-hash", "", "")
	fs.StringVar(&c.subject, "subject", "", "")
	fs.StringVar(&c.san, "san", "", "")
	fs.IntVar(&c.auditLimit, "limit", 0, "")
	fs.IntVar(&c.auditOffset, "offset", 0, "")
	// Flags may come anywhere: before the command or among its words.
	var words []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				fmt.Fprint(stdout, consumersUsage)
				return exitOK
			}
			fmt.Fprintf(stderr, "portunus consumers: %v\n\n%s", err, consumersUsage)
			return exitUsage
		}
		if fs.NArg() == 0 {
			break
		}
		words = append(words, fs.Arg(0))
		args = fs.Args()[1:]
	}
	fs.Visit(func(f *flag.Flag) { c.set[f.Name] = true })
	if c.token == "" {
		c.token = os.Getenv("PORTUNUS_ADMIN_TOKEN")
	}
	u, err := url.Parse(c.admin)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		fmt.Fprintf(stderr, "portunus consumers: --admin %q: want http(s)://host:port\n", c.admin)
		return exitUsage
	}
	c.admin = strings.TrimRight(c.admin, "/")
	usage := func(msg string) int {
		fmt.Fprintf(stderr, "portunus consumers: %s\n\n%s", msg, consumersUsage)
		return exitUsage
	}
	if len(words) == 0 {
		return usage("no command")
	}
	// A flag the command does not take is a mistake worth saying (a
	// --role on keys issue would otherwise be silently dropped).
	cmd := words[0]
	if len(words) > 1 && (cmd == "keys" || cmd == "basic" || cmd == "certs") {
		cmd += " " + words[1]
	}
	allowed := map[string]bool{}
	for _, f := range commandFlags[cmd] {
		allowed[f] = true
	}
	for _, f := range sortedKeys(c.set) {
		if !globalFlags[f] && !allowed[f] {
			return usage(fmt.Sprintf("--%s does not apply to %s", f, cmd))
		}
	}
	n := func(want int) bool { return len(words) == want }
	esc := url.PathEscape
	switch words[0] {
	case "list":
		if !n(1) {
			return usage("list takes no argument")
		}
		return c.do("GET", "/api/v1/consumers", nil, c.printList)
	case "get":
		if !n(2) {
			return usage("get NAME")
		}
		return c.do("GET", "/api/v1/consumers/"+esc(words[1]), nil, nil)
	case "create":
		if !n(2) {
			return usage("create NAME [--role R]... [--meta K=V]... [--rate-limit SPEC]... [--quota SPEC]...")
		}
		body, err := c.profile(false)
		if err != nil {
			return usage(err.Error())
		}
		body["name"] = words[1]
		return c.do("POST", "/api/v1/consumers", body, func([]byte) { fmt.Fprintf(c.stdout, "created consumer %s\n", words[1]) })
	case "update":
		if !n(2) {
			return usage("update NAME [--role R]... [--meta K=V]... [--rate-limit SPEC]... [--quota SPEC]... [--clear FIELD]...")
		}
		return c.update(words[1], usage)
	case "delete":
		if !n(2) {
			return usage("delete NAME")
		}
		return c.do("DELETE", "/api/v1/consumers/"+esc(words[1]), nil, func([]byte) { fmt.Fprintf(c.stdout, "deleted consumer %s\n", words[1]) })
	case "keys":
		return c.keys(words[1:], usage)
	case "basic":
		return c.basic(words[1:], usage)
	case "certs":
		return c.certs(words[1:], usage)
	case "audit":
		if !n(1) {
			return usage("audit [--limit N] [--offset N]")
		}
		q := url.Values{}
		if c.set["limit"] {
			q.Set("limit", strconv.Itoa(c.auditLimit))
		}
		if c.set["offset"] {
			q.Set("offset", strconv.Itoa(c.auditOffset))
		}
		path := "/api/v1/audit"
		if len(q) > 0 {
			path += "?" + q.Encode()
		}
		return c.do("GET", path, nil, c.printAudit)
	default:
		return usage(fmt.Sprintf("unknown command %q", words[0]))
	}
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// profileFields are the fields of a consumer that create and update set,
// by their JSON names; --clear takes these (or with - for _).
var profileFields = []string{"roles", "metadata", "rate_limits", "quotas"}

// profile turns the profile flags into JSON fields: on create every
// field (empty when not given), on update only the fields given or
// cleared.
func (c *consumersCLI) profile(update bool) (map[string]any, error) {
	body := map[string]any{}
	cleared := map[string]bool{}
	for _, v := range c.clear {
		f := strings.ReplaceAll(v, "-", "_")
		if !slices.Contains(profileFields, f) {
			return nil, fmt.Errorf("--clear %q: want one of %s", v, strings.Join(profileFields, ", "))
		}
		cleared[f] = true
	}
	for _, p := range []struct{ field, flag string }{{"roles", "role"}, {"metadata", "meta"}, {"rate_limits", "rate-limit"}, {"quotas", "quota"}} {
		if cleared[p.field] && c.set[p.flag] {
			return nil, fmt.Errorf("--clear %s and --%s together: give one", p.field, p.flag)
		}
	}
	given := func(field, flag string) bool { return !update || c.set[flag] || cleared[field] }
	if given("roles", "role") {
		body["roles"] = append([]string{}, c.roles...)
	}
	if given("metadata", "meta") {
		meta := map[string]string{}
		for _, kv := range c.meta {
			k, v, ok := strings.Cut(kv, "=")
			if !ok || k == "" {
				return nil, fmt.Errorf("--meta %q: want KEY=VALUE", kv)
			}
			if _, dup := meta[k]; dup {
				return nil, fmt.Errorf("--meta %q: key %q given twice", kv, k)
			}
			meta[k] = v
		}
		body["metadata"] = meta
	}
	if given("rate_limits", "rate-limit") {
		rls := []rateLimitSpec{}
		for _, s := range c.limits {
			rl, err := parseRateLimit(s)
			if err != nil {
				return nil, err
			}
			rls = append(rls, rl)
		}
		body["rate_limits"] = rls
	}
	if given("quotas", "quota") {
		qs := []quotaSpec{}
		for _, s := range c.quotas {
			q, err := parseQuota(s)
			if err != nil {
				return nil, err
			}
			qs = append(qs, q)
		}
		body["quotas"] = qs
	}
	return body, nil
}

// update is a read-modify-write over the API's PUT, which replaces every
// field: the fields not given are sent back as they were read.
func (c *consumersCLI) update(name string, usage func(string) int) int {
	changes, err := c.profile(true)
	if err != nil {
		return usage(err.Error())
	}
	if len(changes) == 0 {
		return usage("update: nothing to change; give --role, --meta, --rate-limit, --quota or --clear")
	}
	path := "/api/v1/consumers/" + url.PathEscape(name)
	b, code := c.fetch("GET", path, nil)
	if code != exitOK {
		return code
	}
	var cur map[string]json.RawMessage
	if err := json.Unmarshal(b, &cur); err != nil {
		fmt.Fprintf(c.stderr, "portunus consumers: GET %s: unreadable answer: %v\n", path, err)
		return exitInvalid
	}
	if ro := cur["read_only"]; string(ro) == "true" {
		fmt.Fprintf(c.stderr, "portunus consumers: consumer %q is defined in the config file (read-only): change it there\n", name)
		return exitInvalid
	}
	body := map[string]any{}
	for _, f := range profileFields {
		if v, ok := changes[f]; ok {
			body[f] = v
		} else if raw, ok := cur[f]; ok {
			body[f] = raw
		}
	}
	fields := slices.Sorted(maps.Keys(changes))
	return c.do("PUT", path, body, func([]byte) {
		fmt.Fprintf(c.stdout, "updated consumer %s (%s)\n", name, strings.Join(fields, ", "))
	})
}

func (c *consumersCLI) basic(words []string, usage func(string) int) int {
	esc := url.PathEscape
	switch {
	case len(words) == 3 && words[0] == "add":
		body := map[string]string{"username": words[2]}
		switch {
		case c.passwordFile != "" && c.passwordHash != "":
			return usage("basic add: give --password-file or --password-hash, not both")
		case c.passwordHash != "":
			body["password_hash"] = c.passwordHash
		case c.passwordFile != "":
			pw, err := readPassword(c.passwordFile)
			if err != nil {
				fmt.Fprintf(c.stderr, "portunus consumers: --password-file: %v\n", err)
				return exitUsage
			}
			body["password"] = pw
		default:
			return usage("basic add NAME USERNAME needs --password-file FILE (- for standard input) or --password-hash BCRYPT")
		}
		return c.do("POST", "/api/v1/consumers/"+esc(words[1])+"/basic_auth", body, func([]byte) {
			fmt.Fprintf(c.stdout, "added basic-auth user %s to %s\n", words[2], words[1])
		})
	case len(words) == 3 && words[0] == "remove":
		return c.do("DELETE", "/api/v1/consumers/"+esc(words[1])+"/basic_auth/"+esc(words[2]), nil, func([]byte) {
			fmt.Fprintf(c.stdout, "removed basic-auth user %s from %s\n", words[2], words[1])
		})
	}
	return usage("basic add NAME USERNAME (--password-file FILE | --password-hash BCRYPT) | basic remove NAME USERNAME")
}

// readPassword reads a password from a file ("-": standard input),
// without its final line break. Never from the command line, where
// other users of the machine can read it (ps).
func readPassword(path string) (string, error) {
	var b []byte
	var err error
	if path == "-" {
		b, err = io.ReadAll(io.LimitReader(os.Stdin, 4096))
	} else {
		b, err = os.ReadFile(path)
	}
	if err != nil {
		return "", err
	}
	s := strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r")
	if s == "" {
		return "", errors.New("the password is empty")
	}
	return s, nil
}

func (c *consumersCLI) certs(words []string, usage func(string) int) int {
	esc := url.PathEscape
	switch {
	case len(words) == 2 && words[0] == "add":
		if (c.subject == "") == (c.san == "") {
			return usage("certs add NAME needs one of --subject DN (e.g. \"CN=laptop,O=Acme\") and --san NAME")
		}
		body := map[string]string{}
		if c.subject != "" {
			body["subject"] = c.subject
		} else {
			body["san"] = c.san
		}
		return c.do("POST", "/api/v1/consumers/"+esc(words[1])+"/certificates", body, func(b []byte) {
			var a struct {
				ID      string `json:"id"`
				Subject string `json:"subject"`
				SAN     string `json:"san"`
			}
			_ = json.Unmarshal(b, &a)
			what := "subject " + a.Subject
			if a.SAN != "" {
				what = "san " + a.SAN
			}
			fmt.Fprintf(c.stdout, "added certificate identity %s (%s) to %s\n", a.ID, what, words[1])
		})
	case len(words) == 3 && words[0] == "remove":
		return c.do("DELETE", "/api/v1/consumers/"+esc(words[1])+"/certificates/"+esc(words[2]), nil, func([]byte) {
			fmt.Fprintf(c.stdout, "removed certificate identity %s from %s\n", words[2], words[1])
		})
	}
	return usage("certs add NAME (--subject DN | --san NAME) | certs remove NAME ID")
}

func (c *consumersCLI) keys(words []string, usage func(string) int) int {
	if len(words) == 0 {
		return usage("keys issue|list|rotate|revoke ...")
	}
	esc := url.PathEscape
	body := map[string]string{}
	if c.expiresIn != "" {
		body["expires_in"] = c.expiresIn
	}
	switch {
	case words[0] == "issue" && len(words) == 2:
		return c.do("POST", "/api/v1/consumers/"+esc(words[1])+"/keys", body, c.printIssued)
	case words[0] == "list" && len(words) == 2:
		return c.do("GET", "/api/v1/consumers/"+esc(words[1])+"/keys", nil, c.printKeys)
	case words[0] == "rotate" && len(words) == 3:
		if c.overlap != "" {
			body["overlap"] = c.overlap
		}
		return c.do("POST", "/api/v1/consumers/"+esc(words[1])+"/keys/"+esc(words[2])+"/rotate", body, c.printIssued)
	case words[0] == "revoke" && len(words) == 3:
		return c.do("DELETE", "/api/v1/consumers/"+esc(words[1])+"/keys/"+esc(words[2]), nil, func([]byte) {
			fmt.Fprintf(c.stdout, "revoked key %s of %s\n", words[2], words[1])
		})
	}
	return usage("keys issue NAME | keys list NAME | keys rotate NAME KEY_ID | keys revoke NAME KEY_ID")
}

// do calls the admin API. A 2xx answer goes to show (or is printed as is
// with --json or without show); anything else is reported with the
// problem's detail and exit 1.
func (c *consumersCLI) do(method, path string, body any, show func([]byte)) int {
	b, code := c.fetch(method, path, body)
	if code != exitOK {
		return code
	}
	switch {
	case c.json || show == nil:
		if len(b) > 0 {
			_, _ = c.stdout.Write(b)
		} else {
			fmt.Fprintln(c.stdout, "ok")
		}
	default:
		show(b)
	}
	return exitOK
}

// fetch calls the admin API and returns a 2xx answer's body with exitOK;
// anything else is reported on stderr and returns its exit code.
func (c *consumersCLI) fetch(method, path string, body any) ([]byte, int) {
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, c.admin+path, rd)
	if err != nil {
		fmt.Fprintf(c.stderr, "portunus consumers: %v\n", err)
		return nil, exitUsage
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := (&http.Client{Timeout: adminTimeout}).Do(req)
	if err != nil {
		fmt.Fprintf(c.stderr, "portunus consumers: cannot reach the admin API at %s: %v\n", c.admin, err)
		return nil, exitInvalid
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		fmt.Fprintf(c.stderr, "portunus consumers: reading the answer: %v\n", err)
		return nil, exitInvalid
	}
	if resp.StatusCode/100 != 2 {
		var p struct{ Title, Detail string }
		_ = json.Unmarshal(b, &p)
		msg := p.Detail
		if msg == "" {
			msg = p.Title
		}
		if msg == "" {
			msg = strings.TrimSpace(string(b))
		}
		fmt.Fprintf(c.stderr, "portunus consumers: %s %s: %d %s: %s\n", method, path, resp.StatusCode, http.StatusText(resp.StatusCode), msg)
		return nil, exitInvalid
	}
	return b, exitOK
}

func (c *consumersCLI) printList(b []byte) {
	var a struct {
		Consumers []struct {
			Name             string   `json:"name"`
			Source           string   `json:"source"`
			Roles            []string `json:"roles"`
			APIKeys          int      `json:"api_keys"`
			RateLimits       int      `json:"rate_limits"`
			Quotas           int      `json:"quotas"`
			ShadowedByConfig bool     `json:"shadowed_by_config"`
		} `json:"consumers"`
	}
	if err := json.Unmarshal(b, &a); err != nil {
		_, _ = c.stdout.Write(b)
		return
	}
	fmt.Fprintf(c.stdout, "%-32s %-8s %-5s %-6s %-6s %s\n", "NAME", "SOURCE", "KEYS", "LIMITS", "QUOTAS", "ROLES")
	for _, x := range a.Consumers {
		src := x.Source
		if x.ShadowedByConfig {
			src += " (shadowed by config)"
		}
		fmt.Fprintf(c.stdout, "%-32s %-8s %-5d %-6d %-6d %s\n", x.Name, src, x.APIKeys, x.RateLimits, x.Quotas, strings.Join(x.Roles, ","))
	}
}

func (c *consumersCLI) printAudit(b []byte) {
	var a struct {
		Total   int `json:"total"`
		Offset  int `json:"offset"`
		Entries []struct {
			Seq      uint64    `json:"seq"`
			Time     time.Time `json:"time"`
			Actor    string    `json:"actor"`
			Action   string    `json:"action"`
			Consumer string    `json:"consumer"`
			KeyID    string    `json:"key_id"`
			Detail   string    `json:"detail"`
		} `json:"entries"`
	}
	if err := json.Unmarshal(b, &a); err != nil {
		_, _ = c.stdout.Write(b)
		return
	}
	fmt.Fprintf(c.stdout, "%-6s %-20s %-9s %-18s %-24s %s\n", "SEQ", "TIME", "ACTOR", "ACTION", "CONSUMER", "DETAIL")
	for _, e := range a.Entries {
		detail := e.Detail
		if e.KeyID != "" {
			detail = strings.TrimSpace("key " + e.KeyID + " " + detail)
		}
		fmt.Fprintf(c.stdout, "%-6d %-20s %-9s %-18s %-24s %s\n", e.Seq, e.Time.UTC().Format(time.DateTime), e.Actor, e.Action, e.Consumer, detail)
	}
	if n := len(a.Entries); a.Offset > 0 || a.Offset+n < a.Total {
		fmt.Fprintf(c.stdout, "(entries %d to %d of %d, newest first; --offset and --limit page)\n", min(a.Offset+1, a.Offset+n), a.Offset+n, a.Total)
	}
}

func (c *consumersCLI) printIssued(b []byte) {
	var a struct {
		Consumer  string     `json:"consumer"`
		ID        string     `json:"id"`
		Key       string     `json:"key"`
		ExpiresAt *time.Time `json:"expires_at"`
		Replaces  *struct {
			ID        string     `json:"id"`
			ExpiresAt *time.Time `json:"expires_at"`
		} `json:"replaces"`
	}
	if err := json.Unmarshal(b, &a); err != nil {
		_, _ = c.stdout.Write(b)
		return
	}
	fmt.Fprintf(c.stdout, "consumer: %s\nkey id:   %s\nexpires:  %s\nkey:      %s\n", a.Consumer, a.ID, when(a.ExpiresAt), a.Key)
	if a.Replaces != nil {
		fmt.Fprintf(c.stdout, "replaces: %s (works until %s)\n", a.Replaces.ID, when(a.Replaces.ExpiresAt))
	}
	fmt.Fprintln(c.stdout, "The key is shown this once: store it now.")
}

func (c *consumersCLI) printKeys(b []byte) {
	var a struct {
		Keys []struct {
			ID        string     `json:"id"`
			CreatedAt time.Time  `json:"created_at"`
			ExpiresAt *time.Time `json:"expires_at"`
			Active    bool       `json:"active"`
		} `json:"keys"`
	}
	if err := json.Unmarshal(b, &a); err != nil {
		_, _ = c.stdout.Write(b)
		return
	}
	fmt.Fprintf(c.stdout, "%-24s %-20s %-20s %s\n", "ID", "CREATED", "EXPIRES", "ACTIVE")
	for _, k := range a.Keys {
		fmt.Fprintf(c.stdout, "%-24s %-20s %-20s %v\n", k.ID, k.CreatedAt.UTC().Format(time.DateTime), when(k.ExpiresAt), k.Active)
	}
}

func when(t *time.Time) string {
	if t == nil {
		return "never"
	}
	return t.UTC().Format(time.DateTime)
}
