package gateway

// The admin API of runtime consumers (docs/runtime-consumers.md): create,
// read, update and delete consumers and their credentials, and read the
// audit trail. Keys are shown once, in the answer that issues them; no
// answer ever holds a key, a password or a hash.

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/portunus-gw/portunus/internal/admin"
	"github.com/portunus-gw/portunus/internal/consumers"
	"github.com/portunus-gw/portunus/internal/problem"
)

// maxConsumerBody bounds the bodies of the consumer endpoints: the
// largest (a consumer with every field at its bound) fits well inside.
const maxConsumerBody = 64 << 10

// registerConsumersAPI mounts the runtime consumer endpoints.
func registerConsumersAPI(s *admin.Server, rt *Runtime) {
	s.Handle("POST /api/v1/consumers", http.HandlerFunc(rt.serveConsumerCreate))
	s.Handle("GET /api/v1/consumers/{name}", http.HandlerFunc(rt.serveConsumerGet))
	s.Handle("PUT /api/v1/consumers/{name}", http.HandlerFunc(rt.serveConsumerUpdate))
	s.Handle("DELETE /api/v1/consumers/{name}", http.HandlerFunc(rt.serveConsumerDelete))
	s.Handle("GET /api/v1/consumers/{name}/keys", http.HandlerFunc(rt.serveKeyList))
	s.Handle("POST /api/v1/consumers/{name}/keys", http.HandlerFunc(rt.serveKeyIssue))
	s.Handle("POST /api/v1/consumers/{name}/keys/{id}/rotate", http.HandlerFunc(rt.serveKeyRotate))
	s.Handle("DELETE /api/v1/consumers/{name}/keys/{id}", http.HandlerFunc(rt.serveKeyRevoke))
	s.Handle("POST /api/v1/consumers/{name}/basic_auth", http.HandlerFunc(rt.serveBasicAdd))
	s.Handle("DELETE /api/v1/consumers/{name}/basic_auth/{username}", http.HandlerFunc(rt.serveBasicRemove))
	s.Handle("POST /api/v1/consumers/{name}/certificates", http.HandlerFunc(rt.serveCertAdd))
	s.Handle("DELETE /api/v1/consumers/{name}/certificates/{id}", http.HandlerFunc(rt.serveCertRemove))
	s.Handle("GET /api/v1/audit", http.HandlerFunc(rt.serveAudit))
}

// RuntimeConsumerView is a runtime consumer without its secrets.
type RuntimeConsumerView struct {
	Name   string `json:"name"`
	Source string `json:"source"`
	// ShadowedByConfig: the config file has a consumer of this name,
	// which wins; this one's credentials grant nothing until it is
	// removed from the file or here.
	ShadowedByConfig bool                   `json:"shadowed_by_config"`
	Roles            []string               `json:"roles"`
	RateLimits       []consumers.RateLimit  `json:"rate_limits"`
	Quotas           []consumers.Quota      `json:"quotas"`
	Metadata         map[string]string      `json:"metadata"`
	Keys             []KeyView              `json:"keys"`
	BasicAuth        []BasicView            `json:"basic_auth"`
	Certificates     []consumers.CertRecord `json:"certificates"`
	CreatedAt        time.Time              `json:"created_at"`
	UpdatedAt        time.Time              `json:"updated_at"`
}

// KeyView is an API key's id and lifetime, never the key or its hash.
type KeyView struct {
	ID        string     `json:"id"`
	CreatedAt time.Time  `json:"created_at"`
	ExpiresAt *time.Time `json:"expires_at"`
	// Active is false once expires_at has passed.
	Active bool `json:"active"`
}

// BasicView is a basic-auth login without its hash.
type BasicView struct {
	Username  string    `json:"username"`
	CreatedAt time.Time `json:"created_at"`
}

// ConfigConsumerView is GET /api/v1/consumers/{name} of a config consumer.
type ConfigConsumerView struct {
	ConsumerView
	// ReadOnly is always true: change it in the config file.
	ReadOnly bool `json:"read_only"`
	// ShadowsRuntime: a runtime consumer has this name too; this one
	// wins, and the runtime one's credentials grant nothing.
	ShadowsRuntime bool `json:"shadows_runtime"`
}

// IssuedKeyAnswer is the 201 answer of issuing or rotating a key: the
// only answer that ever holds the key.
type IssuedKeyAnswer struct {
	Consumer  string     `json:"consumer"`
	ID        string     `json:"id"`
	Key       string     `json:"key"`
	CreatedAt time.Time  `json:"created_at"`
	ExpiresAt *time.Time `json:"expires_at"`
	// Replaces is the rotated key, with the end of its overlap.
	Replaces *KeyView `json:"replaces,omitempty"`
}

// KeysAnswer is GET /api/v1/consumers/{name}/keys.
type KeysAnswer struct {
	Consumer string    `json:"consumer"`
	Keys     []KeyView `json:"keys"`
}

// AuditAnswer is GET /api/v1/audit.
type AuditAnswer struct {
	Total   int                    `json:"total"`
	Offset  int                    `json:"offset"`
	Limit   int                    `json:"limit"`
	Entries []consumers.AuditEntry `json:"entries"`
}

func keyViews(keys []consumers.KeyRecord, now time.Time) []KeyView {
	out := make([]KeyView, 0, len(keys))
	for _, k := range keys {
		out = append(out, KeyView{ID: k.ID, CreatedAt: k.CreatedAt, ExpiresAt: k.ExpiresAt, Active: k.ExpiresAt == nil || k.ExpiresAt.After(now)})
	}
	return out
}

func runtimeView(r *consumers.Record, shadowed bool) RuntimeConsumerView {
	v := RuntimeConsumerView{
		Name: r.Name, Source: "runtime", ShadowedByConfig: shadowed,
		Roles: append([]string{}, r.Roles...), RateLimits: append([]consumers.RateLimit{}, r.RateLimits...),
		Quotas: append([]consumers.Quota{}, r.Quotas...), Metadata: map[string]string{}, Keys: keyViews(r.Keys, time.Now()), BasicAuth: []BasicView{},
		Certificates: append([]consumers.CertRecord{}, r.Certificates...), CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt,
	}
	for k, val := range r.Metadata {
		v.Metadata[k] = val
	}
	for _, b := range r.BasicAuth {
		v.BasicAuth = append(v.BasicAuth, BasicView{Username: b.Username, CreatedAt: b.CreatedAt})
	}
	return v
}

// runtimeConsumerViews lists the runtime consumers for GET
// /api/v1/consumers, by name, after the config ones.
func runtimeConsumerViews(snap *Snapshot) []ConsumerView {
	m := snap.rc.m
	if !m.Enabled() {
		return nil
	}
	recs := m.Live().Load().Records()
	sort.Slice(recs, func(i, j int) bool { return recs[i].Name < recs[j].Name })
	dir := snapshotDirectory(snap)
	now := time.Now()
	out := make([]ConsumerView, 0, len(recs))
	for _, r := range recs {
		active := 0
		for _, k := range r.Keys {
			if k.ExpiresAt == nil || k.ExpiresAt.After(now) {
				active++
			}
		}
		out = append(out, ConsumerView{
			Name: r.Name, Roles: append([]string{}, r.Roles...), APIKeys: active, BasicAuth: len(r.BasicAuth) > 0,
			Certificates: len(r.Certificates), RateLimits: len(r.RateLimits), Quotas: len(r.Quotas),
			Source: "runtime", ShadowedByConfig: dir != nil && dir.ConfigHas(r.Name),
		})
	}
	return out
}

// snapshotDirectory is the snapshot's consumer directory (config clashes).
func snapshotDirectory(snap *Snapshot) *consumers.Directory { return snap.rc.dir }

// consumerCall is what every handler starts with: the snapshot, the
// manager and who is calling.
type consumerCall struct {
	snap  *Snapshot
	m     *consumers.Manager
	dir   consumers.ConfigClaims
	actor string
}

func (rt *Runtime) consumerCall(w http.ResponseWriter, r *http.Request) (*consumerCall, bool) {
	snap := rt.snapshotOr503(w, r)
	if snap == nil {
		return nil, false
	}
	c := &consumerCall{snap: snap, m: snap.rc.m, actor: adminActor(snap)}
	if d := snapshotDirectory(snap); d != nil {
		c.dir = d
	}
	return c, true
}

// adminActor names who made a change, for the audit trail: the admin API
// has one token, so "token" when it is set; else only loopback clients
// are served.
func adminActor(snap *Snapshot) string {
	if a := snap.Config.Admin; a != nil && a.Token != "" {
		return "token"
	}
	return "loopback"
}

// writeConsumerError answers a manager error with its status.
func writeConsumerError(w http.ResponseWriter, r *http.Request, err error) {
	var e *consumers.Error
	if !errors.As(err, &e) {
		problem.Write(w, r, problem.Problem{Code: problem.UpstreamUnavailable, Status: http.StatusServiceUnavailable, Detail: "consumer store: " + err.Error()})
		return
	}
	switch e.Kind {
	case consumers.KindInvalid:
		badRequest(w, r, e.Msg)
	case consumers.KindNotFound:
		problem.Write(w, r, problem.Problem{Code: problem.NotFound, Detail: e.Msg})
	case consumers.KindConflict:
		problem.Write(w, r, problem.Problem{Code: problem.Conflict, Detail: e.Msg})
	default:
		problem.Write(w, r, problem.Problem{Code: problem.UpstreamUnavailable, Status: http.StatusServiceUnavailable, Detail: e.Msg})
	}
}

// decodeConsumerBody reads one JSON object of at most maxConsumerBody
// bytes: 413 when larger, 400 when malformed or with unknown fields.
// An empty body is allowed when empty is true.
func decodeConsumerBody(w http.ResponseWriter, r *http.Request, v any, empty bool) bool {
	if ct := r.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(strings.ToLower(ct), "application/json") {
		badRequest(w, r, "the body must be application/json")
		return false
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxConsumerBody))
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if errors.Is(err, io.EOF) && empty {
		return true
	}
	var mbe *http.MaxBytesError
	if err == nil {
		if _, terr := dec.Token(); terr != io.EOF {
			if errors.As(terr, &mbe) {
				err = terr
			} else {
				badRequest(w, r, "malformed body: data after the JSON object")
				return false
			}
		}
	}
	switch {
	case err == nil:
		return true
	case errors.As(err, &mbe):
		problem.Write(w, r, problem.Problem{Code: problem.BodyTooLarge, Detail: fmt.Sprintf("the body is larger than %d bytes", maxConsumerBody)})
	case errors.Is(err, io.EOF):
		badRequest(w, r, "the body is empty; want a JSON object")
	default:
		badRequest(w, r, "malformed body: "+err.Error())
	}
	return false
}

// consumerBody is the body of POST /api/v1/consumers and PUT
// /api/v1/consumers/{name} (where name must be absent or the same).
type consumerBody struct {
	Name       string                `json:"name"`
	Roles      []string              `json:"roles"`
	RateLimits []consumers.RateLimit `json:"rate_limits"`
	Quotas     []consumers.Quota     `json:"quotas"`
	Metadata   map[string]string     `json:"metadata"`
}

func (b consumerBody) profile() consumers.Profile {
	return consumers.Profile{Roles: b.Roles, RateLimits: b.RateLimits, Quotas: b.Quotas, Metadata: b.Metadata}
}

func (rt *Runtime) serveConsumerCreate(w http.ResponseWriter, r *http.Request) {
	c, ok := rt.consumerCall(w, r)
	if !ok {
		return
	}
	var b consumerBody
	if !decodeConsumerBody(w, r, &b, false) {
		return
	}
	rec, err := c.m.Create(r.Context(), c.dir, c.actor, b.Name, b.profile())
	if err != nil {
		writeConsumerError(w, r, err)
		return
	}
	w.Header().Set("Location", "/api/v1/consumers/"+rec.Name)
	admin.WriteJSON(w, http.StatusCreated, runtimeView(rec, false))
}

func (rt *Runtime) serveConsumerGet(w http.ResponseWriter, r *http.Request) {
	c, ok := rt.consumerCall(w, r)
	if !ok {
		return
	}
	name := r.PathValue("name")
	for _, v := range consumerViews(c.snap.Config) {
		if v.Name == name {
			admin.WriteJSON(w, http.StatusOK, ConfigConsumerView{ConsumerView: v, ReadOnly: true, ShadowsRuntime: c.m.Get(name) != nil})
			return
		}
	}
	if rec := c.m.Get(name); rec != nil {
		admin.WriteJSON(w, http.StatusOK, runtimeView(rec, false))
		return
	}
	problem.Write(w, r, problem.Problem{Code: problem.NotFound, Detail: fmt.Sprintf("no consumer %q", name)})
}

func (rt *Runtime) serveConsumerUpdate(w http.ResponseWriter, r *http.Request) {
	c, ok := rt.consumerCall(w, r)
	if !ok {
		return
	}
	name := r.PathValue("name")
	var b consumerBody
	if !decodeConsumerBody(w, r, &b, false) {
		return
	}
	if b.Name != "" && b.Name != name {
		badRequest(w, r, "name cannot be changed: create a new consumer")
		return
	}
	rec, err := c.m.Update(r.Context(), c.dir, c.actor, name, b.profile())
	if err != nil {
		writeConsumerError(w, r, err)
		return
	}
	admin.WriteJSON(w, http.StatusOK, runtimeView(rec, false))
}

func (rt *Runtime) serveConsumerDelete(w http.ResponseWriter, r *http.Request) {
	c, ok := rt.consumerCall(w, r)
	if !ok {
		return
	}
	if err := c.m.Delete(r.Context(), c.dir, c.actor, r.PathValue("name")); err != nil {
		writeConsumerError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (rt *Runtime) serveKeyList(w http.ResponseWriter, r *http.Request) {
	c, ok := rt.consumerCall(w, r)
	if !ok {
		return
	}
	name := r.PathValue("name")
	if c.dir != nil && c.dir.ConfigHas(name) {
		problem.Write(w, r, problem.Problem{Code: problem.Conflict, Detail: fmt.Sprintf("consumer %q is defined in the config file; its keys are there", name)})
		return
	}
	rec := c.m.Get(name)
	if rec == nil {
		problem.Write(w, r, problem.Problem{Code: problem.NotFound, Detail: fmt.Sprintf("no runtime consumer %q", name)})
		return
	}
	admin.WriteJSON(w, http.StatusOK, KeysAnswer{Consumer: name, Keys: keyViews(rec.Keys, time.Now())})
}

// keyBody is the body of issuing (expires_in) and rotating (also overlap).
type keyBody struct {
	ExpiresIn string `json:"expires_in"`
	Overlap   string `json:"overlap"`
}

func parseDur(field, s string, def time.Duration) (time.Duration, error) {
	if s == "" {
		return def, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("%s: want a duration such as 24h (0s: none)", field)
	}
	return d, nil
}

// DefaultRotateOverlap is how long a rotated key keeps working when the
// rotation names no overlap: long enough for a deploy that picks up the
// new key, short enough that a leaked key dies the same day.
const DefaultRotateOverlap = time.Hour

func (rt *Runtime) serveKeyIssue(w http.ResponseWriter, r *http.Request) {
	rt.issueKey(w, r, false)
}

func (rt *Runtime) serveKeyRotate(w http.ResponseWriter, r *http.Request) {
	rt.issueKey(w, r, true)
}

func (rt *Runtime) issueKey(w http.ResponseWriter, r *http.Request, rotate bool) {
	c, ok := rt.consumerCall(w, r)
	if !ok {
		return
	}
	var b keyBody
	if !decodeConsumerBody(w, r, &b, true) {
		return
	}
	ttl, err := parseDur("expires_in", b.ExpiresIn, 0)
	if err != nil {
		badRequest(w, r, err.Error())
		return
	}
	name := r.PathValue("name")
	var k *consumers.IssuedKey
	var replaced *KeyView
	if rotate {
		overlap, err := parseDur("overlap", b.Overlap, DefaultRotateOverlap)
		if err != nil {
			badRequest(w, r, err.Error())
			return
		}
		k, err = c.m.RotateKey(r.Context(), c.dir, c.actor, name, r.PathValue("id"), ttl, overlap)
		if err != nil {
			writeConsumerError(w, r, err)
			return
		}
		if k.Replaced != nil {
			kv := keyViews([]consumers.KeyRecord{*k.Replaced}, time.Now())[0]
			replaced = &kv
		}
	} else {
		if b.Overlap != "" {
			badRequest(w, r, "overlap is for rotating a key (POST .../keys/{id}/rotate)")
			return
		}
		k, err = c.m.IssueKey(r.Context(), c.dir, c.actor, name, ttl)
		if err != nil {
			writeConsumerError(w, r, err)
			return
		}
	}
	w.Header().Set("Location", "/api/v1/consumers/"+name+"/keys")
	admin.WriteJSON(w, http.StatusCreated, IssuedKeyAnswer{
		Consumer: name, ID: k.ID, Key: k.Key, CreatedAt: k.CreatedAt, ExpiresAt: k.ExpiresAt, Replaces: replaced,
	})
}

func (rt *Runtime) serveKeyRevoke(w http.ResponseWriter, r *http.Request) {
	c, ok := rt.consumerCall(w, r)
	if !ok {
		return
	}
	if err := c.m.RevokeKey(r.Context(), c.dir, c.actor, r.PathValue("name"), r.PathValue("id")); err != nil {
		writeConsumerError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// basicBody adds a login: password (hashed here with bcrypt) or
// password_hash (a bcrypt hash, kept as is).
type basicBody struct {
	Username     string `json:"username"`
	Password     string `json:"password"`
	PasswordHash string `json:"password_hash"`
}

func (rt *Runtime) serveBasicAdd(w http.ResponseWriter, r *http.Request) {
	c, ok := rt.consumerCall(w, r)
	if !ok {
		return
	}
	var b basicBody
	if !decodeConsumerBody(w, r, &b, false) {
		return
	}
	name := r.PathValue("name")
	if c.dir != nil && c.dir.ConfigHasIdentity("user:"+b.Username) {
		problem.Write(w, r, problem.Problem{Code: problem.Conflict, Detail: fmt.Sprintf("basic-auth username %q is defined in the config file", b.Username)})
		return
	}
	u, err := c.m.AddBasic(r.Context(), c.dir, c.actor, name, b.Username, b.Password, b.PasswordHash)
	if err != nil {
		writeConsumerError(w, r, err)
		return
	}
	admin.WriteJSON(w, http.StatusCreated, BasicView{Username: u.Username, CreatedAt: u.CreatedAt})
}

func (rt *Runtime) serveBasicRemove(w http.ResponseWriter, r *http.Request) {
	c, ok := rt.consumerCall(w, r)
	if !ok {
		return
	}
	if err := c.m.RemoveBasic(r.Context(), c.dir, c.actor, r.PathValue("name"), r.PathValue("username")); err != nil {
		writeConsumerError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// certBody adds a certificate identity: exactly one of subject and san.
type certBody struct {
	Subject string `json:"subject"`
	SAN     string `json:"san"`
}

func (rt *Runtime) serveCertAdd(w http.ResponseWriter, r *http.Request) {
	c, ok := rt.consumerCall(w, r)
	if !ok {
		return
	}
	var b certBody
	if !decodeConsumerBody(w, r, &b, false) {
		return
	}
	cert, err := c.m.AddCertificate(r.Context(), c.dir, c.actor, r.PathValue("name"), b.Subject, b.SAN)
	if err != nil {
		writeConsumerError(w, r, err)
		return
	}
	admin.WriteJSON(w, http.StatusCreated, cert)
}

func (rt *Runtime) serveCertRemove(w http.ResponseWriter, r *http.Request) {
	c, ok := rt.consumerCall(w, r)
	if !ok {
		return
	}
	if err := c.m.RemoveCertificate(r.Context(), c.dir, c.actor, r.PathValue("name"), r.PathValue("id")); err != nil {
		writeConsumerError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// defaultAuditPage is the page size of GET /api/v1/audit without limit.
const defaultAuditPage = 100

func (rt *Runtime) serveAudit(w http.ResponseWriter, r *http.Request) {
	c, ok := rt.consumerCall(w, r)
	if !ok {
		return
	}
	q := r.URL.Query()
	offset, limit := 0, defaultAuditPage
	for _, p := range []struct {
		name string
		dst  *int
	}{{"offset", &offset}, {"limit", &limit}} {
		if s := q.Get(p.name); s != "" {
			n, err := strconv.Atoi(s)
			if err != nil {
				badRequest(w, r, p.name+": want a whole number")
				return
			}
			*p.dst = n
		}
	}
	entries, total, err := c.m.Audit(r.Context(), offset, limit)
	if err != nil {
		writeConsumerError(w, r, err)
		return
	}
	admin.WriteJSON(w, http.StatusOK, AuditAnswer{Total: total, Offset: offset, Limit: limit, Entries: entries})
}
