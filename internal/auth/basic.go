package auth

import (
	"encoding/base64"
	"errors"
	"net/http"
	"strings"

	"github.com/portunus-gw/portunus/internal/consumers"
	"github.com/portunus-gw/portunus/internal/pipeline"
)

// maxBasicLen bounds the base64 credentials of a Basic header; bcrypt
// reads at most 72 bytes of a password anyway.
const maxBasicLen = 1024

// strictBase64 refuses stray padding bits: one credential, one encoding.
var strictBase64 = base64.StdEncoding.Strict()

var (
	errBadBasic    = errors.New("malformed basic credentials")
	errBadPassword = errors.New("unknown user or wrong password")
)

// basic is the basic method.
type basic struct {
	dir *consumers.Directory
	ids identities
}

// NewBasic is the basic method (bcrypt password hashes of dir).
func NewBasic(dir *consumers.Directory) Method {
	if dir == nil {
		return nil
	}
	return &basic{dir: dir, ids: newIdentities(dir)}
}

func (m *basic) Name() string      { return "basic" }
func (m *basic) Challenge() string { return `Basic realm="portunus"` }

func (m *basic) Authenticate(r *http.Request, _ *pipeline.State) (*Identity, error) {
	vs := r.Header["Authorization"]
	if len(vs) == 0 {
		return nil, ErrNoCredentials
	}
	if len(vs) > 1 {
		return nil, errors.New("more than one Authorization header")
	}
	user, pass, ok, err := parseBasic(vs[0])
	if !ok {
		return nil, ErrNoCredentials // another scheme: Bearer is someone else's
	}
	if err != nil {
		return nil, err
	}
	c := m.dir.ByBasic(user, pass)
	if c == nil {
		return nil, errBadPassword
	}
	return m.ids.of(c), nil
}

// parseBasic reads an Authorization value. ok is false when the scheme is
// not Basic; err is set when it is Basic but malformed.
func parseBasic(v string) (user, pass string, ok bool, err error) {
	v = strings.TrimLeft(v, " \t")
	const scheme = "basic"
	if len(v) < len(scheme) || !strings.EqualFold(v[:len(scheme)], scheme) {
		return "", "", false, nil
	}
	rest := v[len(scheme):]
	if rest != "" && rest[0] != ' ' && rest[0] != '\t' {
		return "", "", false, nil // e.g. "Basicfoo": not this scheme
	}
	rest = strings.Trim(rest, " \t")
	if rest == "" || len(rest) > maxBasicLen {
		return "", "", true, errBadBasic
	}
	raw, derr := strictBase64.DecodeString(rest)
	if derr != nil {
		return "", "", true, errBadBasic
	}
	u, p, found := strings.Cut(string(raw), ":")
	if !found || u == "" {
		return "", "", true, errBadBasic
	}
	for i := 0; i < len(raw); i++ {
		if raw[i] < 0x20 || raw[i] == 0x7f {
			return "", "", true, errBadBasic
		}
	}
	return u, p, true, nil
}

func (m *basic) Hide(r *http.Request) { r.Header.Del("Authorization") }
