package config

import (
	"fmt"
	"strconv"
	"strings"
)

func (v *validator) upstream(p string, u *Upstream) {
	if len(u.Targets) == 0 && u.Discovery.DNSSRV == "" {
		v.add(p+".targets", "an upstream needs at least one target (or discovery.dns_srv)")
	}
	for j, t := range u.Targets {
		tp := fmt.Sprintf("%s.targets[%d]", p, j)
		if t.URL == "" {
			v.add(tp, "url is required")
		} else if parsed := v.url(tp+".url", t.URL); parsed != nil {
			switch {
			case parsed.RawQuery != "" || parsed.ForceQuery || parsed.Fragment != "":
				v.add(tp+".url", "a target URL must not have a query or fragment")
			case parsed.User != nil:
				v.add(tp+".url", "a target URL must not hold credentials; use request_headers")
			}
		}
		if t.Weight < 0 || t.Weight == 0 && v.written(tp+".weight") {
			v.add(tp+".weight", "weight must be at least 1")
		}
	}
	v.discovery(p+".discovery", &u.Discovery)
	v.enum(p+".protocol", u.Protocol, "auto", "http1", "h2c")
	if u.Protocol == "h2c" {
		for j, t := range u.Targets {
			if strings.HasPrefix(strings.ToLower(t.URL), "https://") {
				v.add(fmt.Sprintf("%s.targets[%d].url", p, j), "protocol h2c needs http:// targets (h2c is HTTP/2 without TLS; https targets negotiate HTTP/2 by themselves)")
			}
		}
	}
	v.enum(p+".balancer", u.Balancer, "round_robin", "least_conn", "p2c_ewma", "consistent_hash", "random")
	if u.HashOn != "" {
		v.keyed(p+".hash_on", u.HashOn, []string{"ip", "consumer"}, "header", "cookie")
		if u.Balancer != "consistent_hash" {
			v.add(p+".hash_on", "hash_on only applies to balancer: consistent_hash")
		}
	}
	if hc := u.HealthCheck; hc != nil {
		hp := p + ".health_check"
		if hc.Path != "" && !strings.HasPrefix(hc.Path, "/") {
			v.add(hp+".path", "must start with \"/\", got %q", hc.Path)
		}
		v.positiveDuration(hp+".interval", hc.Interval)
		v.positiveDuration(hp+".timeout", hc.Timeout)
		if hc.Interval > 0 && hc.Timeout > hc.Interval {
			// Probes are sequential per target: a longer timeout would
			// silently stretch the interval.
			v.add(hp+".timeout", "must not exceed interval (%s)", hc.Interval.D())
		}
		v.positiveInt(hp+".healthy_threshold", hc.HealthyThreshold)
		v.positiveInt(hp+".unhealthy_threshold", hc.UnhealthyThreshold)
		if hc.ExpectedStatus != "" {
			if err := checkStatusRanges(hc.ExpectedStatus); err != nil {
				v.add(hp+".expected_status", "%v", err)
			}
		}
	}
	if ph := u.PassiveHealth; ph != nil {
		pp := p + ".passive_health"
		v.positiveInt(pp+".consecutive_failures", ph.ConsecutiveFailures)
		v.positiveDuration(pp+".ejection_time", ph.EjectionTime)
		v.percent(pp+".max_ejected_percent", ph.MaxEjectedPercent)
		if ph.MaxEjectedPercent == 0 && v.written(pp+".max_ejected_percent") {
			// 0 would mean the default (50), not "never eject".
			v.add(pp+".max_ejected_percent", "must be at least 1 (0 would mean the default, 50; to never eject, remove passive_health)")
		}
	}
	if cb := u.CircuitBreaker; cb != nil {
		cp := p + ".circuit_breaker"
		if cb.FailureRatio < 0 || cb.FailureRatio > 1 || cb.FailureRatio == 0 && v.written(cp+".failure_ratio") {
			v.add(cp+".failure_ratio", "must be greater than 0 and at most 1")
		}
		v.positiveInt(cp+".min_requests", cb.MinRequests)
		v.positiveDuration(cp+".open_for", cb.OpenFor)
		v.positiveInt(cp+".half_open_requests", cb.HalfOpenRequests)
	}
	for j, s := range u.FailureStatuses {
		if s < 500 || s > 599 {
			v.add(joinIndex(p+".failure_statuses", j), "failure statuses must be 5xx (client errors never count against a target), got %d", s)
		}
	}
	v.positiveDuration(p+".timeouts.connect", u.Timeouts.Connect)
	v.positiveDuration(p+".timeouts.response_header", u.Timeouts.ResponseHeader)
	v.positiveDuration(p+".timeouts.idle_connection", u.Timeouts.IdleConnection)
	if r := u.Retries; r != nil {
		rp := p + ".retries"
		v.nonNegative(rp+".attempts", r.Attempts)
		v.percent(rp+".budget_percent", r.BudgetPercent)
		if r.BudgetPercent == 0 && v.written(rp+".budget_percent") {
			// 0 would mean the default (20); min_per_second is the floor.
			v.add(rp+".budget_percent", "must be at least 1 (0 would mean the default, 20)")
		}
		v.nonNegative(rp+".min_per_second", r.MinPerSecond)
		for j, on := range r.On {
			switch on {
			case "connect_failure", "reset", "timeout":
			default:
				if n, err := strconv.Atoi(on); err != nil || n < 500 || n > 599 {
					v.add(joinIndex(rp+".on", j), "invalid retry condition %q: want connect_failure, reset, timeout or a 5xx status", on)
				}
			}
		}
	}
	v.nonNegative(p+".max_connections", u.MaxConnections)
	if (u.TLS.CertFile == "") != (u.TLS.KeyFile == "") {
		v.add(p+".tls", "cert_file and key_file go together")
	}
}

// checkStatusRanges checks "200-399", "200", or a comma-separated list of them.
func checkStatusRanges(s string) error {
	for part := range strings.SplitSeq(s, ",") {
		lo, hi, isRange := strings.Cut(strings.TrimSpace(part), "-")
		a, err1 := strconv.Atoi(strings.TrimSpace(lo))
		b := a
		var err2 error
		if isRange {
			b, err2 = strconv.Atoi(strings.TrimSpace(hi))
		}
		if err1 != nil || err2 != nil || a < 100 || b > 599 || a > b {
			return fmt.Errorf("invalid status list %q: want e.g. \"200-399\" or \"200,204\"", s)
		}
	}
	return nil
}

func (v *validator) consumers() {
	keys := map[string]string{}
	users := map[string]bool{}
	for i := range v.c.Consumers {
		c := &v.c.Consumers[i]
		p := fmt.Sprintf("consumers[%d]", i)
		for j, k := range c.APIKeys {
			kp := joinIndex(p+".api_keys", j)
			switch hexPart, hashed := strings.CutPrefix(k, "sha256:"); {
			case k == "":
				v.add(kp, "empty API key")
				continue
			case hashed && !isHex64(hexPart):
				v.add(kp, "a hashed key is sha256: followed by 64 hex digits (see portunus hash-key)")
				continue
			}
			if prev, dup := keys[k]; dup {
				v.add(kp, "this API key is also %s's: keys must identify one consumer", prev)
			}
			keys[k] = c.Name
		}
		if b := c.BasicAuth; b != nil {
			bp := p + ".basic_auth"
			switch {
			case b.Username == "":
				v.add(bp+".username", "username is required")
			case users[b.Username]:
				v.add(bp+".username", "duplicate basic-auth username %q", b.Username)
			}
			users[b.Username] = true
			if !isBcrypt(b.PasswordHash) {
				v.add(bp+".password_hash", "password_hash must be a bcrypt hash ($2a$, $2b$ or $2y$...), never the password")
			}
		}
		for j, cm := range c.Certificates {
			if (cm.Subject == "") == (cm.SAN == "") {
				v.add(joinIndex(p+".certificates", j), "set exactly one of subject, san")
			}
		}
		v.rateLimits(p+".rate_limits", c.RateLimits)
		v.quotas(p+".quotas", c.Quotas)
	}
}

func isHex64(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
			return false
		}
	}
	return true
}

func isBcrypt(s string) bool {
	return len(s) == 60 && (strings.HasPrefix(s, "$2a$") || strings.HasPrefix(s, "$2b$") || strings.HasPrefix(s, "$2y$"))
}

var jwtAlgorithms = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA", "HS256", "HS384", "HS512"}

func (v *validator) providers() {
	for i := range v.c.JWTProviders {
		j := &v.c.JWTProviders[i]
		p := fmt.Sprintf("jwt_providers[%d]", i)
		if j.JWKSURL == "" && len(j.Keys) == 0 {
			v.add(p, "a JWT provider needs jwks_url or keys")
		}
		if j.JWKSURL != "" {
			v.url(p+".jwks_url", j.JWKSURL)
		}
		for a, alg := range j.Algorithms {
			v.enum(joinIndex(p+".algorithms", a), alg, jwtAlgorithms...)
		}
		for k, key := range j.Keys {
			kp := joinIndex(p+".keys", k)
			if key.Algorithm == "" {
				v.add(kp+".algorithm", "algorithm is required")
				continue
			}
			v.enum(kp+".algorithm", key.Algorithm, jwtAlgorithms...)
			hmac := strings.HasPrefix(key.Algorithm, "HS")
			switch {
			case hmac && key.Secret == "":
				v.add(kp, "%s needs secret", key.Algorithm)
			case hmac && key.PublicKeyFile != "":
				v.add(kp+".public_key_file", "%s is an HMAC algorithm: use secret, not public_key_file", key.Algorithm)
			case !hmac && key.PublicKeyFile == "":
				v.add(kp, "%s needs public_key_file", key.Algorithm)
			case !hmac && key.Secret != "":
				v.add(kp+".secret", "%s is a public-key algorithm: use public_key_file, not secret", key.Algorithm)
			}
		}
		v.headerMap(p+".claims_to_headers", j.ClaimsToHeaders)
	}
	for i := range v.c.OAuth2Providers {
		o := &v.c.OAuth2Providers[i]
		v.url(fmt.Sprintf("oauth2_providers[%d].introspection_url", i), o.IntrospectionURL)
	}
	for i := range v.c.ForwardAuth {
		f := &v.c.ForwardAuth[i]
		p := fmt.Sprintf("forward_auth[%d]", i)
		v.url(p+".url", f.URL)
		for j, h := range f.CopyHeaders {
			v.header(joinIndex(p+".copy_headers", j), h)
		}
	}
}
