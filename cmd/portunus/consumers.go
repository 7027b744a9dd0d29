package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"
)

const consumersUsage = `Usage: portunus consumers [--admin URL] [--token TOKEN] [--json] COMMAND ...

Manage runtime consumers through a running instance's admin API.

  list                                   every consumer (config and runtime)
  get NAME                               one consumer, without secrets
  create NAME [--role R]... [--meta K=V]...
  delete NAME
  keys issue NAME [--expires-in 720h]    prints the key once; only its hash is kept
  keys list NAME
  keys rotate NAME KEY_ID [--overlap 1h] [--expires-in D]
  keys revoke NAME KEY_ID

  --admin   admin API base URL (default http://127.0.0.1:9901)
  --token   admin bearer token (default: $PORTUNUS_ADMIN_TOKEN)
  --json    print the API's JSON answer as is

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
	admin, token       string
	json               bool
	roles, meta        multiFlag
	expiresIn, overlap string
	stdout, stderr     io.Writer
}

func cmdConsumers(args []string, stdout, stderr io.Writer) int {
	c := &consumersCLI{stdout: stdout, stderr: stderr}
	fs := flag.NewFlagSet("consumers", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&c.admin, "admin", "http://127.0.0.1:9901", "")
	fs.StringVar(&c.token, "token", "", "")
	fs.BoolVar(&c.json, "json", false, "")
	fs.Var(&c.roles, "role", "")
	fs.Var(&c.meta, "meta", "")
	fs.StringVar(&c.expiresIn, "expires-in", "", "")
	fs.StringVar(&c.overlap, "overlap", "", "")
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
			return usage("create NAME [--role R]... [--meta K=V]...")
		}
		meta := map[string]string{}
		for _, kv := range c.meta {
			k, v, ok := strings.Cut(kv, "=")
			if !ok || k == "" {
				return usage(fmt.Sprintf("--meta %q: want KEY=VALUE", kv))
			}
			meta[k] = v
		}
		body := map[string]any{"name": words[1], "roles": append([]string{}, c.roles...), "metadata": meta}
		return c.do("POST", "/api/v1/consumers", body, func(b []byte) { fmt.Fprintf(c.stdout, "created consumer %s\n", words[1]) })
	case "delete":
		if !n(2) {
			return usage("delete NAME")
		}
		return c.do("DELETE", "/api/v1/consumers/"+esc(words[1]), nil, func([]byte) { fmt.Fprintf(c.stdout, "deleted consumer %s\n", words[1]) })
	case "keys":
		return c.keys(words[1:], usage)
	default:
		return usage(fmt.Sprintf("unknown command %q", words[0]))
	}
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
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, c.admin+path, rd)
	if err != nil {
		fmt.Fprintf(c.stderr, "portunus consumers: %v\n", err)
		return exitUsage
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
		return exitInvalid
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		fmt.Fprintf(c.stderr, "portunus consumers: reading the answer: %v\n", err)
		return exitInvalid
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
		return exitInvalid
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

func (c *consumersCLI) printList(b []byte) {
	var a struct {
		Consumers []struct {
			Name             string   `json:"name"`
			Source           string   `json:"source"`
			Roles            []string `json:"roles"`
			APIKeys          int      `json:"api_keys"`
			ShadowedByConfig bool     `json:"shadowed_by_config"`
		} `json:"consumers"`
	}
	if err := json.Unmarshal(b, &a); err != nil {
		_, _ = c.stdout.Write(b)
		return
	}
	fmt.Fprintf(c.stdout, "%-32s %-8s %-5s %s\n", "NAME", "SOURCE", "KEYS", "ROLES")
	for _, x := range a.Consumers {
		src := x.Source
		if x.ShadowedByConfig {
			src += " (shadowed by config)"
		}
		fmt.Fprintf(c.stdout, "%-32s %-8s %-5d %s\n", x.Name, src, x.APIKeys, strings.Join(x.Roles, ","))
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
