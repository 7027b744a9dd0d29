package config

import (
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
)

// validator checks a decoded config and collects every problem. It runs
// on the values as written (before layering and defaults), so that a
// problem in a policy set is reported in the policy set, once.
type validator struct {
	c    *Config
	errs ErrorList
	// failed holds the paths the decoder could not decode; problems at
	// those paths, inside them or around them are consequences, not news.
	failed      map[string]bool
	failedAbove map[string]bool

	upstreams map[string]bool
	jwt       map[string]bool
	oauth2    map[string]bool
	forward   map[string]bool
}

func newValidator(c *Config, failed map[string]bool) *validator {
	v := &validator{c: c, failed: failed, failedAbove: map[string]bool{}}
	for p := range failed {
		for p != "" {
			p = parentPath(p)
			v.failedAbove[p] = true
		}
	}
	return v
}

func (v *validator) add(path, format string, args ...any) {
	if v.failedAbove[path] {
		return
	}
	for p := path; ; p = parentPath(p) {
		if v.failed[p] {
			return
		}
		if p == "" {
			break
		}
	}
	v.errs = append(v.errs, v.c.ErrorAt(path, format, args...))
}

// written reports whether the user wrote a value at path (as opposed to
// leaving it out), to tell an explicit 0 from an absent key.
func (v *validator) written(path string) bool { return v.c.src.has(path) }

func (v *validator) validate() {
	c := v.c
	v.upstreams = v.uniqueNames("upstreams", len(c.Upstreams), func(i int) string { return c.Upstreams[i].Name })
	v.jwt = v.uniqueNames("jwt_providers", len(c.JWTProviders), func(i int) string { return c.JWTProviders[i].Name })
	v.oauth2 = v.uniqueNames("oauth2_providers", len(c.OAuth2Providers), func(i int) string { return c.OAuth2Providers[i].Name })
	v.forward = v.uniqueNames("forward_auth", len(c.ForwardAuth), func(i int) string { return c.ForwardAuth[i].Name })
	v.uniqueNames("consumers", len(c.Consumers), func(i int) string { return c.Consumers[i].Name })

	v.listeners()
	v.cidrs("trusted_proxies", c.TrustedProxies)
	v.admin()
	v.store()
	v.observability()
	v.header("api_key.header", c.APIKey.Header)
	for i := range c.Upstreams {
		v.upstream(fmt.Sprintf("upstreams[%d]", i), &c.Upstreams[i])
	}
	v.consumers()
	v.providers()
	v.policies("defaults", &c.Defaults)
	for _, name := range sortedKeys(c.PolicySets) {
		p := c.PolicySets[name]
		v.policies(joinKey("policy_sets", name), &p)
		c.PolicySets[name] = p // CIDRs are normalized in place
	}
	v.routes()
	v.demoUpstreams()
	v.unsupported()
}

// uniqueNames checks that every item of a list has a distinct, non-empty
// name, and returns the set of names.
func (v *validator) uniqueNames(list string, n int, name func(int) string) map[string]bool {
	seen := make(map[string]bool, n)
	for i := range n {
		p := fmt.Sprintf("%s[%d]", list, i)
		switch s := name(i); {
		case s == "":
			v.add(p, "name is required")
		case seen[s]:
			v.add(p+".name", "duplicate name %q", s)
		default:
			seen[s] = true
		}
	}
	return seen
}

func (v *validator) listeners() {
	c := v.c
	if len(c.Listeners) == 0 {
		v.add("listeners", "no listeners: at least one is needed, e.g. listeners: [{address: \"127.0.0.1:8080\"}]")
	}
	addrs := map[string]string{}
	for i := range c.Listeners {
		l := &c.Listeners[i]
		p := fmt.Sprintf("listeners[%d]", i)
		v.address(p+".address", l.Address, addrs)
		if l.TLS != nil {
			v.listenerTLS(p+".tls", l.TLS)
		}
		if rd := l.RedirectHTTPS; rd != nil {
			if l.TLS != nil {
				v.add(p+".redirect_https", "a TLS listener cannot redirect to HTTPS; put redirect_https on a plain listener")
			}
			// 0 means "not written": the default (443, 308) fills it.
			if rd.Port < 0 || rd.Port > 65535 || rd.Port == 0 && v.written(p+".redirect_https.port") {
				v.add(p+".redirect_https.port", "port must be between 1 and 65535")
			}
			if rd.Status != 0 && rd.Status != 301 && rd.Status != 302 && rd.Status != 307 && rd.Status != 308 || rd.Status == 0 && v.written(p+".redirect_https.status") {
				v.add(p+".redirect_https.status", "invalid value %d: want one of 301, 302, 307, 308", rd.Status)
			}
		}
		if m := l.Limits; m != nil {
			lp := p + ".limits"
			v.positiveDuration(lp+".read_header_timeout", m.ReadHeaderTimeout)
			v.positiveDuration(lp+".body_read_timeout", m.BodyReadTimeout)
			v.positiveDuration(lp+".idle_timeout", m.IdleTimeout)
			v.positiveSize(lp+".max_header_bytes", m.MaxHeaderBytes)
			v.positiveSize(lp+".max_uri_bytes", m.MaxURIBytes)
			v.positiveInt(lp+".max_headers", m.MaxHeaders)
			v.positiveInt(lp+".max_concurrent_streams", m.MaxConcurrentStreams)
			v.nonNegative(lp+".max_connections", m.MaxConnections)
		}
	}
	if a := c.Admin; a != nil {
		v.address("admin.address", a.Address, addrs)
	}
}

// address checks a host:port to listen on and that no two listeners share
// it. Port 0 (any free port) may repeat.
func (v *validator) address(path, addr string, seen map[string]string) {
	if addr == "" {
		v.add(path, "address is required (host:port, e.g. \"127.0.0.1:8080\")")
		return
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		v.add(path, "invalid address %q: want host:port, e.g. \"127.0.0.1:8080\" or \":8080\"", addr)
		return
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		v.add(path, "invalid port %q in address %q", port, addr)
		return
	}
	if port == "0" {
		return
	}
	key := net.JoinHostPort(strings.ToLower(host), port)
	if prev, dup := seen[key]; dup {
		v.add(path, "address %q is already used by %s", addr, prev)
		return
	}
	seen[key] = path
}

func (v *validator) listenerTLS(p string, t *ListenerTLS) {
	if len(t.Certificates) == 0 {
		v.add(p+".certificates", "a TLS listener needs at least one certificate")
	}
	for j, cert := range t.Certificates {
		cp := fmt.Sprintf("%s.certificates[%d]", p, j)
		if cert.CertFile == "" {
			v.add(cp, "cert_file is required")
		}
		if cert.KeyFile == "" {
			v.add(cp, "key_file is required")
		}
	}
	v.enum(p+".client_auth", t.ClientAuth, "none", "request", "require")
	v.enum(p+".min_version", t.MinVersion, "1.2", "1.3")
	if (t.ClientAuth == "request" || t.ClientAuth == "require") && t.ClientCAFile == "" {
		v.add(p+".client_ca_file", "client_auth %q needs client_ca_file", t.ClientAuth)
	}
}

func (v *validator) admin() {
	a := v.c.Admin
	if a == nil {
		return
	}
	if a.Token != "" && len(a.Token) < 16 {
		v.add("admin.token", "token is too short (%d characters): use at least 16 random characters, since it guards the whole admin API", len(a.Token))
	}
	host, _, err := net.SplitHostPort(a.Address)
	if err == nil && a.Token == "" && !isLoopbackHost(host) {
		v.add("admin.token", "admin address %q is reachable from other machines: set a token, or listen on 127.0.0.1", a.Address)
	}
}

func isLoopbackHost(h string) bool {
	if strings.EqualFold(h, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(h)
	return err == nil && ip.IsLoopback()
}

func (v *validator) store() {
	s := &v.c.Store
	v.enum("store.backend", s.Backend, "memory", "redis")
	v.enum("store.on_error", s.OnError, "fail_open", "fail_closed")
	r := &s.Redis
	if s.Backend == "redis" && len(r.Addresses) == 0 {
		v.add("store.redis.addresses", "store backend redis needs at least one address (host:port)")
	}
	for i, a := range r.Addresses {
		if _, _, err := net.SplitHostPort(a); err != nil {
			v.add(fmt.Sprintf("store.redis.addresses[%d]", i), "invalid address %q: want host:port", a)
		}
	}
	if r.Cluster && r.SentinelMaster != "" {
		v.add("store.redis.cluster", "cluster and sentinel_master cannot be combined")
	}
	if r.DB < 0 {
		v.add("store.redis.db", "db must not be negative")
	}
	if r.Cluster && r.DB != 0 {
		v.add("store.redis.db", "redis cluster has only db 0")
	}
	if s.Backend == "redis" && s.ConsumersFile != "" {
		v.add("store.consumers_file", "consumers_file is for the memory backend; with redis, runtime consumers live in Redis")
	}
}

func (v *validator) observability() {
	o := &v.c.Observability
	v.enum("observability.access_log.format", o.AccessLog.Format, "json", "combined")
	v.ratio("observability.access_log.sample_success", o.AccessLog.SampleSuccess)
	v.enum("observability.tracing.protocol", o.Tracing.Protocol, "http", "grpc")
	v.ratio("observability.tracing.sample_ratio", o.Tracing.SampleRatio)
	if e := o.Tracing.OTLPEndpoint; e != "" {
		v.url("observability.tracing.otlp_endpoint", e)
	}
}

func (v *validator) demoUpstreams() {
	seen := map[string]string{}
	for i, d := range v.c.DemoUpstreams {
		p := fmt.Sprintf("demo_upstreams[%d].address", i)
		v.address(p, d.Address, seen)
		if host, _, err := net.SplitHostPort(d.Address); err == nil && !isLoopbackHost(host) {
			v.add(p, "demo upstreams listen on loopback only (use 127.0.0.1:PORT)")
		}
	}
}

// ---- small checks shared by the sections ----

func (v *validator) enum(path, val string, allowed ...string) {
	if val == "" {
		return // the default
	}
	for _, a := range allowed {
		if val == a {
			return
		}
	}
	v.add(path, "invalid value %q: want one of %s%s", val, strings.Join(allowed, ", "), didYouMean(val, allowed))
}

func (v *validator) ratio(path string, f *float64) {
	if f != nil && (*f < 0 || *f > 1) {
		v.add(path, "must be between 0 and 1, got %v", *f)
	}
}

// positiveDuration refuses an explicit 0 where 0 has no meaning (an absent
// key takes the default instead).
func (v *validator) positiveDuration(path string, d Duration) {
	if d == 0 && v.written(path) {
		v.add(path, "must be greater than 0")
	}
}

func (v *validator) positiveSize(path string, s Size) {
	if s == 0 && v.written(path) {
		v.add(path, "must be greater than 0")
	}
}

func (v *validator) positiveInt(path string, n int) {
	if n < 0 || n == 0 && v.written(path) {
		v.add(path, "must be at least 1")
	}
}

func (v *validator) nonNegative(path string, n int) {
	if n < 0 {
		v.add(path, "must not be negative")
	}
}

func (v *validator) percent(path string, n int) {
	if n < 0 || n > 100 {
		v.add(path, "must be a percentage between 0 and 100, got %d", n)
	}
}

// cidrs checks a list of CIDRs in place, accepting a bare address as a
// single-host prefix and normalizing each to its canonical masked form.
func (v *validator) cidrs(path string, list []string) {
	for i, s := range list {
		p, err := parsePrefix(s)
		if err != nil {
			v.add(joinIndex(path, i), "%v", err)
			continue
		}
		list[i] = p.String()
	}
}

func parsePrefix(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("invalid CIDR %q: want e.g. 10.0.0.0/8 or 2001:db8::/32", s)
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("invalid CIDR or IP address %q: want e.g. 10.0.0.0/8 or 192.0.2.7", s)
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// url checks an http or https URL with a host.
func (v *validator) url(path, s string) *url.URL {
	if s == "" {
		v.add(path, "a URL is required")
		return nil
	}
	u, err := url.Parse(s)
	switch {
	case err != nil:
		v.add(path, "invalid URL %q", s)
		return nil
	case u.Scheme != "http" && u.Scheme != "https":
		v.add(path, "URL %q must start with http:// or https://", s)
		return nil
	case u.Host == "":
		v.add(path, "URL %q has no host", s)
		return nil
	}
	return u
}

// header checks an HTTP field name (RFC 9110 token).
func (v *validator) header(path, name string) {
	if name != "" && !isToken(name) {
		v.add(path, "invalid header name %q", name)
	}
}

func (v *validator) headerMap(path string, m map[string]string) {
	for _, k := range sortedKeys(m) {
		if !isToken(k) {
			v.add(joinKey(path, k), "invalid header name %q", k)
		}
		if strings.ContainsAny(m[k], "\r\n\x00") {
			v.add(joinKey(path, k), "header value must not contain CR, LF or NUL")
		}
	}
}

func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0 {
			continue
		}
		return false
	}
	return true
}

// keyed checks values like "header:NAME" or "cookie:NAME" against the
// plain values and prefixed forms allowed.
func (v *validator) keyed(path, val string, plain []string, prefixes ...string) {
	if val == "" {
		return
	}
	for _, p := range plain {
		if val == p {
			return
		}
	}
	for _, pre := range prefixes {
		if name, ok := strings.CutPrefix(val, pre+":"); ok {
			if !isToken(name) {
				v.add(path, "invalid %s name %q in %q", pre, name, val)
			}
			return
		}
	}
	forms := append([]string(nil), plain...)
	for _, pre := range prefixes {
		forms = append(forms, pre+":NAME")
	}
	v.add(path, "invalid value %q: want one of %s", val, strings.Join(forms, ", "))
}
