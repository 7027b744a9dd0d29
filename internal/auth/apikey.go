package auth

import (
	"errors"
	"net/http"
	"net/textproto"
	"net/url"
	"strings"

	"github.com/portunus-gw/portunus/internal/config"
	"github.com/portunus-gw/portunus/internal/consumers"
	"github.com/portunus-gw/portunus/internal/pipeline"
)

// maxKeyLen bounds a presented API key; longer is refused unread.
const maxKeyLen = 4096

var (
	errUnknownKey   = errors.New("unknown api key")
	errKeyTooLong   = errors.New("api key too long")
	errKeyAmbiguous = errors.New("more than one api key")
)

// apiKey is the api_key method.
type apiKey struct {
	header    string // canonical header name
	query     string // query parameter; "" = the query is never read
	challenge string
	dir       *consumers.Directory
	ids       identities
}

// NewAPIKey is the api_key method: keys read from src (header, and the
// query parameter only when configured), looked up by hash in dir.
//
// A key in the query when no query parameter is configured is not read,
// and not removed either: the gateway does not know which parameter would
// be one, and on a route with auth such a request is refused (no
// credential) before anything is forwarded.
func NewAPIKey(src config.APIKeySource, dir *consumers.Directory) Method {
	if dir == nil {
		return nil
	}
	h := src.Header
	if h == "" {
		h = "X-API-Key"
	}
	return &apiKey{
		header:    textproto.CanonicalMIMEHeaderKey(h),
		query:     src.Query,
		challenge: `APIKey realm="portunus", header="` + h + `"`,
		dir:       dir,
		ids:       newIdentities(dir),
	}
}

func (m *apiKey) Name() string      { return "api_key" }
func (m *apiKey) Challenge() string { return m.challenge }

func (m *apiKey) Authenticate(r *http.Request, _ *pipeline.State) (*Identity, error) {
	key, err := m.extract(r)
	if err != nil {
		return nil, err
	}
	c := m.dir.ByAPIKey(key)
	if c == nil {
		return nil, errUnknownKey
	}
	return m.ids.of(c), nil
}

// extract finds the key: the header first, then the query parameter when
// one is configured. An empty value counts as absent.
func (m *apiKey) extract(r *http.Request) (string, error) {
	vs := r.Header[m.header]
	switch {
	case len(vs) > 1:
		return "", errKeyAmbiguous
	case len(vs) == 1 && vs[0] != "":
		if len(vs[0]) > maxKeyLen {
			return "", errKeyTooLong
		}
		return vs[0], nil
	}
	if m.query == "" || r.URL == nil || r.URL.RawQuery == "" {
		return "", ErrNoCredentials
	}
	return queryKey(r.URL.RawQuery, m.query)
}

// queryKey reads parameter name from a raw query without parsing the
// rest of it. Two occurrences are ambiguous and refused.
func queryKey(raw, name string) (string, error) {
	var found string
	n := 0
	for raw != "" {
		var part string
		part, raw, _ = strings.Cut(raw, "&")
		k, v, _ := strings.Cut(part, "=")
		if !paramIs(k, name) {
			continue
		}
		if len(v) > 3*maxKeyLen {
			return "", errKeyTooLong
		}
		u, err := url.QueryUnescape(v)
		if err != nil {
			return "", errors.New("malformed api key parameter")
		}
		if u == "" {
			continue
		}
		n++
		found = u
	}
	switch {
	case n == 0:
		return "", ErrNoCredentials
	case n > 1:
		return "", errKeyAmbiguous
	case len(found) > maxKeyLen:
		return "", errKeyTooLong
	}
	return found, nil
}

// paramIs compares a raw (escaped) parameter name with name.
func paramIs(raw, name string) bool {
	if raw == name {
		return true
	}
	if !strings.ContainsAny(raw, "%+") {
		return false
	}
	u, err := url.QueryUnescape(raw)
	return err == nil && u == name
}

// hasParam reports whether the raw query holds parameter name.
func hasParam(raw, name string) bool {
	for raw != "" {
		var part string
		part, raw, _ = strings.Cut(raw, "&")
		k, _, _ := strings.Cut(part, "=")
		if paramIs(k, name) {
			return true
		}
	}
	return false
}

// Hide removes the key header and every occurrence of the query
// parameter, leaving the rest of the query byte for byte.
func (m *apiKey) Hide(r *http.Request) {
	delete(r.Header, m.header) // canonical already: no Del to canonicalize it again
	if m.query == "" || r.URL == nil || r.URL.RawQuery == "" {
		return
	}
	r.URL.RawQuery = dropParam(r.URL.RawQuery, m.query)
	r.URL.ForceQuery = false
}

func dropParam(raw, name string) string {
	if !hasParam(raw, name) {
		return raw // nothing to drop: no copy
	}
	var b strings.Builder
	rest := raw
	for rest != "" {
		var part string
		part, rest, _ = strings.Cut(rest, "&")
		k, _, _ := strings.Cut(part, "=")
		if paramIs(k, name) {
			continue
		}
		if b.Len() > 0 {
			b.WriteByte('&')
		}
		b.WriteString(part)
	}
	return b.String()
}
