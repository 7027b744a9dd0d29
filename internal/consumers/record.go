package consumers

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/portunus-gw/portunus/internal/config"
	"golang.org/x/crypto/bcrypt"
)

// Record is a runtime consumer as stored (bbolt or Redis): what the admin
// API created. It holds hashes only, never a key or a password.
type Record struct {
	Name         string            `json:"name"`
	Roles        []string          `json:"roles"`
	RateLimits   []RateLimit       `json:"rate_limits,omitempty"`
	Quotas       []Quota           `json:"quotas,omitempty"`
	Metadata     map[string]string `json:"metadata,omitempty"`
	Keys         []KeyRecord       `json:"keys,omitempty"`
	BasicAuth    []BasicRecord     `json:"basic_auth,omitempty"`
	Certificates []CertRecord      `json:"certificates,omitempty"`
	CreatedAt    time.Time         `json:"created_at"`
	UpdatedAt    time.Time         `json:"updated_at"`
}

// RateLimit is consumers[].rate_limits[] in JSON: the window is a Go
// duration string ("1m"), as in the config file.
type RateLimit struct {
	Name   string `json:"name,omitempty"`
	Limit  int    `json:"limit"`
	Window string `json:"window"`
	By     string `json:"by,omitempty"`
	Burst  int    `json:"burst,omitempty"`
}

// Quota is consumers[].quotas[] in JSON, as in the config file.
type Quota struct {
	Limit    int    `json:"limit"`
	Period   string `json:"period"`
	By       string `json:"by,omitempty"`
	TimeZone string `json:"time_zone,omitempty"`
}

// KeyRecord is one API key: its id and SHA-256 (hex), never the key.
type KeyRecord struct {
	ID        string     `json:"id"`
	Hash      string     `json:"sha256"`
	CreatedAt time.Time  `json:"created_at"`
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
}

// BasicRecord is one basic-auth login: the bcrypt hash, never the password.
type BasicRecord struct {
	Username  string    `json:"username"`
	Hash      string    `json:"password_hash"`
	CreatedAt time.Time `json:"created_at"`
}

// CertRecord is one certificate identity: a subject DN or a SAN.
type CertRecord struct {
	ID        string    `json:"id"`
	Subject   string    `json:"subject,omitempty"`
	SAN       string    `json:"san,omitempty"`
	CreatedAt time.Time `json:"created_at"`
}

// Bounds on what one runtime consumer may hold: records are loaded into
// every instance's memory, so each is kept small.
const (
	MaxNameLen      = 128
	MaxRoles        = 64
	MaxRoleLen      = 128
	MaxMetadata     = 64
	MaxMetaKeyLen   = 128
	MaxMetaValueLen = 1024
	MaxRateLimits   = 16
	MaxQuotas       = 16
	MaxTimeZoneLen  = 64
	MaxKeys         = 32
	MaxBasicUsers   = 8
	MaxCertificates = 32
	MaxUsernameLen  = 256
	MaxIdentityLen  = 1024
)

// KeyPrefix starts every issued API key, so a leaked one is recognisable
// (secret scanners, logs) as a Portunus key.
const KeyPrefix = "pk_"

// Kind sorts a Manager error into the admin API's answer.
type Kind int

const (
	KindInvalid     Kind = iota // 400
	KindNotFound                // 404
	KindConflict                // 409
	KindUnavailable             // 503: the backend cannot be reached
)

// Error is a Manager error with its kind; Msg is safe to show the client
// (it never holds a secret).
type Error struct {
	Kind Kind
	Msg  string
}

func (e *Error) Error() string { return e.Msg }

func errf(k Kind, format string, args ...any) error {
	return &Error{Kind: k, Msg: fmt.Sprintf(format, args...)}
}

// KindOf is err's kind; errors that are not *Error are KindUnavailable
// (a backend failure).
func KindOf(err error) Kind {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return KindUnavailable
}

// ValidName reports whether s may name a runtime consumer: letters,
// digits and -._@ , starting with a letter or digit. It appears in logs,
// rate-limit keys and URLs, so nothing there needs escaping.
func ValidName(s string) bool {
	if s == "" || len(s) > MaxNameLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		alnum := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
		if alnum || i > 0 && strings.IndexByte("-._@", c) >= 0 {
			continue
		}
		return false
	}
	return true
}

// checkProfile validates the mutable fields of a record (roles, limits,
// quotas, metadata) and fills rate-limit and quota defaults the way the
// config loader does.
func checkProfile(r *Record) error {
	if len(r.Roles) > MaxRoles {
		return errf(KindInvalid, "roles: at most %d", MaxRoles)
	}
	seen := map[string]bool{}
	for i, role := range r.Roles {
		if role == "" || len(role) > MaxRoleLen || strings.ContainsFunc(role, isCtlOrSpace) {
			return errf(KindInvalid, "roles[%d]: a role is 1 to %d characters without blanks or control characters", i, MaxRoleLen)
		}
		if seen[role] {
			return errf(KindInvalid, "roles[%d]: duplicate role %q", i, role)
		}
		seen[role] = true
	}
	if len(r.Metadata) > MaxMetadata {
		return errf(KindInvalid, "metadata: at most %d entries", MaxMetadata)
	}
	for k, v := range r.Metadata {
		if k == "" || len(k) > MaxMetaKeyLen || len(v) > MaxMetaValueLen {
			return errf(KindInvalid, "metadata: keys are 1 to %d bytes, values at most %d bytes", MaxMetaKeyLen, MaxMetaValueLen)
		}
	}
	if len(r.RateLimits) > MaxRateLimits {
		return errf(KindInvalid, "rate_limits: at most %d", MaxRateLimits)
	}
	names := map[string]bool{}
	for i := range r.RateLimits {
		rl := &r.RateLimits[i]
		if rl.Limit < 1 {
			return errf(KindInvalid, "rate_limits[%d].limit: must be at least 1", i)
		}
		d, err := time.ParseDuration(rl.Window)
		if err != nil || d <= 0 {
			return errf(KindInvalid, "rate_limits[%d].window: want a positive duration such as 1m", i)
		}
		if rl.Burst < 0 {
			return errf(KindInvalid, "rate_limits[%d].burst: must not be negative", i)
		}
		switch {
		case rl.By == "":
			rl.By = "ip"
		case rl.By == "consumer", rl.By == "ip", rl.By == "route":
		case strings.HasPrefix(rl.By, "header:") && len(rl.By) > len("header:") && !strings.ContainsFunc(rl.By[len("header:"):], isCtlOrSpace):
		default:
			return errf(KindInvalid, "rate_limits[%d].by: want consumer, ip, route or header:NAME", i)
		}
		if rl.Burst == 0 {
			rl.Burst = rl.Limit
		}
		if rl.Name != "" {
			if !ValidName(rl.Name) {
				return errf(KindInvalid, "rate_limits[%d].name: letters, digits and -._ only", i)
			}
			if names[rl.Name] {
				return errf(KindInvalid, "rate_limits[%d].name: duplicate name %q", i, rl.Name)
			}
			names[rl.Name] = true
		}
	}
	return checkQuotas(r.Quotas)
}

// checkQuotas validates quotas as the config loader does route quotas,
// and fills the same defaults (by ip, time_zone UTC).
func checkQuotas(qs []Quota) error {
	if len(qs) > MaxQuotas {
		return errf(KindInvalid, "quotas: at most %d", MaxQuotas)
	}
	for i := range qs {
		q := &qs[i]
		if q.Limit < 1 {
			return errf(KindInvalid, "quotas[%d].limit: must be at least 1", i)
		}
		switch q.Period {
		case "day", "week", "month":
		case "":
			return errf(KindInvalid, "quotas[%d].period: required: day, week or month", i)
		default:
			return errf(KindInvalid, "quotas[%d].period: want day, week or month", i)
		}
		switch {
		case q.By == "":
			q.By = "ip"
		case q.By == "consumer", q.By == "ip", q.By == "route":
		case strings.HasPrefix(q.By, "header:") && len(q.By) > len("header:") && !strings.ContainsFunc(q.By[len("header:"):], isCtlOrSpace):
		default:
			return errf(KindInvalid, "quotas[%d].by: want consumer, ip, route or header:NAME", i)
		}
		if q.TimeZone == "" {
			q.TimeZone = "UTC"
		}
		if len(q.TimeZone) > MaxTimeZoneLen {
			return errf(KindInvalid, "quotas[%d].time_zone: at most %d bytes", i, MaxTimeZoneLen)
		}
		if _, err := time.LoadLocation(q.TimeZone); err != nil {
			return errf(KindInvalid, "quotas[%d].time_zone: want an IANA name such as UTC or Europe/Paris", i)
		}
	}
	return nil
}

func isCtlOrSpace(r rune) bool { return r <= ' ' || r == 0x7f }

// configLimits converts checked limits to the config form the rate-limit
// policy compiles.
func configLimits(rls []RateLimit) []config.RateLimit {
	if len(rls) == 0 {
		return nil
	}
	out := make([]config.RateLimit, len(rls))
	for i, rl := range rls {
		d, _ := time.ParseDuration(rl.Window) // checked by checkProfile
		out[i] = config.RateLimit{Name: rl.Name, Limit: rl.Limit, Window: config.Duration(d), By: rl.By, Burst: rl.Burst}
	}
	return out
}

// configQuotas converts checked quotas to the config form the quota
// policy compiles.
func configQuotas(qs []Quota) []config.Quota {
	if len(qs) == 0 {
		return nil
	}
	out := make([]config.Quota, len(qs))
	for i, q := range qs {
		out[i] = config.Quota{Limit: q.Limit, Period: q.Period, By: q.By, TimeZone: q.TimeZone}
	}
	return out
}

// NewKey makes a fresh API key: the prefix and 32 random bytes in
// base64url. It returns the key (shown once) and its SHA-256 in hex.
func NewKey() (key, hashHex string) {
	var b [32]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	key = KeyPrefix + base64.RawURLEncoding.EncodeToString(b[:])
	sum := hashKey(key)
	return key, hex.EncodeToString(sum[:])
}

// newID is a short random identifier for a key or a certificate identity.
func newID(prefix string) string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return prefix + hex.EncodeToString(b[:])
}

// BasicHash turns what the admin API was given into a bcrypt hash: a
// bcrypt hash is checked and kept; a password is hashed at cost.
func BasicHash(password, hash string, cost int) (string, error) {
	switch {
	case password != "" && hash != "":
		return "", errf(KindInvalid, "give password or password_hash, not both")
	case hash != "":
		if _, err := bcrypt.Cost([]byte(hash)); err != nil {
			return "", errf(KindInvalid, "password_hash: not a bcrypt hash")
		}
		return hash, nil
	case password != "":
		if len(password) > 72 {
			return "", errf(KindInvalid, "password: at most 72 bytes (bcrypt reads no more)")
		}
		h, err := bcrypt.GenerateFromPassword([]byte(password), cost)
		if err != nil {
			return "", errf(KindInvalid, "password: %v", err)
		}
		return string(h), nil
	}
	return "", errf(KindInvalid, "password or password_hash is required")
}

// claims are the unique names a record takes: basic usernames and
// certificate identities (normalized), which no other consumer may hold.
func (r *Record) claims() []string {
	if r == nil {
		return nil
	}
	var out []string
	for _, b := range r.BasicAuth {
		out = append(out, "user:"+b.Username)
	}
	for _, c := range r.Certificates {
		if c.SAN != "" {
			out = append(out, "san:"+normalizeSAN(c.SAN))
		} else {
			out = append(out, "subject:"+normalizeDN(c.Subject))
		}
	}
	return out
}

// clone is a deep copy, so a mutation never touches a record an index
// (shared by requests) holds.
func (r *Record) clone() *Record {
	c := *r
	c.Roles = append([]string(nil), r.Roles...)
	c.RateLimits = append([]RateLimit(nil), r.RateLimits...)
	c.Quotas = append([]Quota(nil), r.Quotas...)
	if r.Metadata != nil {
		c.Metadata = make(map[string]string, len(r.Metadata))
		for k, v := range r.Metadata {
			c.Metadata[k] = v
		}
	}
	c.Keys = append([]KeyRecord(nil), r.Keys...)
	c.BasicAuth = append([]BasicRecord(nil), r.BasicAuth...)
	c.Certificates = append([]CertRecord(nil), r.Certificates...)
	return &c
}
