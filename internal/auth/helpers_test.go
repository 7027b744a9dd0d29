package auth

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/portunus-gw/portunus/internal/config"
	"github.com/portunus-gw/portunus/internal/consumers"
	"github.com/portunus-gw/portunus/internal/pipeline"
	"golang.org/x/crypto/bcrypt"
)

func hashOf(key string) string {
	s := sha256.Sum256([]byte(key))
	return "sha256:" + hex.EncodeToString(s[:])
}

func basicHeader(user, pass string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))
}

// testDir has alice (admin; key alice-key hashed; basic alice/s3cret) and
// bob (reader; literal key bob-key).
func testDir(t testing.TB) *consumers.Directory {
	t.Helper()
	h, err := bcrypt.GenerateFromPassword([]byte("s3cret"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	d, err := consumers.New([]config.Consumer{
		{Name: "alice", Roles: []string{"admin"}, APIKeys: []string{hashOf("alice-key")},
			BasicAuth: &config.BasicAuth{Username: "alice", PasswordHash: string(h)}},
		{Name: "bob", Roles: []string{"reader"}, APIKeys: []string{"bob-key"}},
		{Name: "carol", Roles: []string{"reader", "auditor"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// seen is what the next handler observed.
type seen struct {
	called bool
	state  pipeline.State
	header http.Header
	query  string
}

// run serves r through mw and returns the recorder and what next saw.
func run(mw pipeline.Middleware, r *http.Request) (*httptest.ResponseRecorder, *seen, *pipeline.State) {
	var sn seen
	h := mw(func(w http.ResponseWriter, r *http.Request, s *pipeline.State) {
		sn.called = true
		sn.state = *s
		sn.header = r.Header.Clone()
		sn.query = r.URL.RawQuery
		w.WriteHeader(http.StatusNoContent)
	})
	w := httptest.NewRecorder()
	s := &pipeline.State{RequestID: "req-1"}
	h(w, r, s)
	return w, &sn, s
}

// fake is a Method with a fixed answer.
type fake struct {
	name, challenge string
	id              *Identity
	err             error
	calls           int
	hidden          bool
}

func (f *fake) Name() string      { return f.name }
func (f *fake) Challenge() string { return f.challenge }
func (f *fake) Authenticate(*http.Request, *pipeline.State) (*Identity, error) {
	f.calls++
	return f.id, f.err
}
func (f *fake) Hide(*http.Request) { f.hidden = true }
