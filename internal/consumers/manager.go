package consumers

import (
	"context"
	"errors"
	"log/slog"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/portunus-gw/portunus/internal/store"
	"golang.org/x/crypto/bcrypt"
)

// ManagerOptions configure a Manager.
type ManagerOptions struct {
	// Store is the runtime's store: a *store.Redis keeps consumers in
	// Redis; anything else uses File.
	Store store.Store
	// File is the bbolt file for the memory store; "" = runtime
	// consumers are off (writes are refused, saying how to enable them).
	File string
	Log  *slog.Logger
	// PollEvery is how often the Redis version is checked, catching a
	// missed notification or a wiped Redis (default 2s); ResyncEvery is
	// the full reload safety net (default 30s).
	PollEvery   time.Duration
	ResyncEvery time.Duration
	// BcryptCost hashes passwords given in clear (default bcrypt's 10).
	BcryptCost int
}

// Manager owns the runtime consumers: it changes them in the backend,
// keeps the in-memory index (Live) current and, with Redis, hears the
// other instances' changes. Safe for concurrent use.
type Manager struct {
	b    backend
	live Live
	log  *slog.Logger
	cost int

	mu   sync.Mutex // serializes index swaps
	kick chan struct{}
	msgs chan []byte
	stop chan struct{}
	wg   sync.WaitGroup
	once sync.Once
}

// Timeouts of backend calls made by the background loop.
const syncTimeout = 10 * time.Second

// OpenManager opens the backend o selects and loads every runtime
// consumer. A bbolt file that cannot be opened or read is an error (the
// caller refuses to start); Redis being down is not: the manager starts
// empty and loads as soon as Redis answers.
func OpenManager(o ManagerOptions) (*Manager, error) {
	m := &Manager{
		log: o.Log, cost: o.BcryptCost,
		kick: make(chan struct{}, 1), msgs: make(chan []byte, 1024), stop: make(chan struct{}),
	}
	if m.log == nil {
		m.log = slog.Default()
	}
	if m.cost == 0 {
		m.cost = bcrypt.DefaultCost
	}
	if rs, ok := o.Store.(*store.Redis); ok {
		m.b = newRedisBackend(rs)
	} else if o.File != "" {
		b, err := openBolt(o.File)
		if err != nil {
			return nil, err
		}
		m.b = b
	} else {
		return m, nil // off
	}
	ctx, cancel := context.WithTimeout(context.Background(), syncTimeout)
	err := m.reload(ctx)
	cancel()
	if err != nil {
		if _, isBolt := m.b.(*boltBackend); isBolt {
			_ = m.b.close()
			return nil, err
		}
		m.log.Warn("runtime consumers: cannot load from Redis yet; retrying", "error", err)
	}
	if _, isRedis := m.b.(*redisBackend); isRedis {
		poll, resync := o.PollEvery, o.ResyncEvery
		if poll <= 0 {
			poll = 2 * time.Second
		}
		if resync <= 0 {
			resync = 30 * time.Second
		}
		m.wg.Add(1)
		go m.loop(poll, resync)
	}
	return m, nil
}

// Enabled reports whether runtime consumers can be written.
func (m *Manager) Enabled() bool { return m != nil && m.b != nil }

// Backend is "redis", "bbolt" or "" when off.
func (m *Manager) Backend() string {
	if !m.Enabled() {
		return ""
	}
	return m.b.name()
}

// Live is the index the auth directory consults per request.
func (m *Manager) Live() *Live { return &m.live }

// Close stops the background loop and closes a bbolt file. Indexes
// already handed out stay readable.
func (m *Manager) Close() error {
	var err error
	m.once.Do(func() {
		close(m.stop)
		m.wg.Wait()
		if m.b != nil {
			err = m.b.close()
		}
	})
	return err
}

// reload reads everything and swaps the index. A Redis that lost its
// data (no version) while this instance still knows consumers is seeded
// back from memory, so a Redis restart without persistence loses nothing.
func (m *Manager) reload(ctx context.Context) error {
	ver, recs, present, err := m.b.load(ctx)
	if err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	cur := m.live.Load()
	if !present && cur.version > 0 {
		ok, err := m.b.seed(ctx, cur.version, cur.records)
		if err != nil {
			return err
		}
		if ok {
			m.log.Warn("runtime consumers: the store had lost them; restored from this instance's copy", "consumers", len(cur.records), "version", cur.version)
			return nil
		}
		m.mu.Unlock()
		err = m.reload(ctx) // another instance restored them: read that
		m.mu.Lock()
		return err
	}
	if ver == cur.version && present {
		return nil
	}
	m.live.store(buildIndex(ver, recs, cur))
	return nil
}

// applyOne puts one changed record (nil: deleted) at version into the
// index. A version that skips one means a change was missed: the whole
// set is reloaded soon.
func (m *Manager) applyOne(name string, rec *Record, ver uint64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	cur := m.live.Load()
	if ver <= cur.version {
		return
	}
	if ver != cur.version+1 {
		m.reloadSoon()
	}
	recs := maps.Clone(cur.records)
	if rec == nil {
		delete(recs, name)
	} else {
		recs[name] = rec
	}
	m.live.store(buildIndex(ver, recs, cur))
}

func (m *Manager) reloadSoon() {
	select {
	case m.kick <- struct{}{}:
	default:
	}
}

// loop is the Redis side: notifications, the version poll and the full
// resync, and (re)subscribing whenever the subscription is missing.
func (m *Manager) loop(poll, resync time.Duration) {
	defer m.wg.Done()
	var cancelSub func()
	defer func() {
		if cancelSub != nil {
			cancelSub()
		}
	}()
	pt, rt := time.NewTicker(poll), time.NewTicker(resync)
	defer pt.Stop()
	defer rt.Stop()
	subscribe := func() {
		if cancelSub != nil {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), syncTimeout)
		defer cancel()
		c, err := m.b.subscribe(ctx, func(msg []byte) {
			if msg == nil { // re-subscribed: changes may have been missed
				m.reloadSoon()
				return
			}
			select {
			case m.msgs <- append([]byte(nil), msg...):
			default:
				m.reloadSoon() // queue full: the reload catches up
			}
		})
		if err != nil {
			m.log.Warn("runtime consumers: cannot subscribe to changes; polling", "error", err)
			return
		}
		cancelSub = c
		// Changes made before the subscription are read now.
		m.reloadSoon()
	}
	subscribe()
	for {
		select {
		case <-m.stop:
			return
		case msg := <-m.msgs:
			m.hear(msg)
		case <-m.kick:
			m.syncNow(true)
		case <-pt.C:
			subscribe()
			m.syncNow(false)
		case <-rt.C:
			m.syncNow(true)
		}
	}
}

// hear applies a "version name" notification by reading that record.
func (m *Manager) hear(msg []byte) {
	vs, name, ok := strings.Cut(string(msg), " ")
	ver, err := strconv.ParseUint(vs, 10, 64)
	if !ok || err != nil {
		m.reloadSoon()
		return
	}
	if ver <= m.live.Load().version {
		return // our own change, or old news
	}
	ctx, cancel := context.WithTimeout(context.Background(), syncTimeout)
	defer cancel()
	rec, at, err := m.b.get(ctx, name)
	if err != nil {
		m.log.Warn("runtime consumers: cannot read a change", "consumer", name, "error", err)
		m.reloadSoon()
		return
	}
	if at != ver {
		// More changed meanwhile: this record is newer than ver, and
		// the others are unknown. Read everything.
		m.reloadSoon()
		return
	}
	m.applyOne(name, rec, ver)
}

// syncNow reloads when full is set or when the store's version is not
// ours (a missed notification, or a Redis that restarted empty).
func (m *Manager) syncNow(full bool) {
	ctx, cancel := context.WithTimeout(context.Background(), syncTimeout)
	defer cancel()
	if !full {
		v, present, err := m.b.version(ctx)
		if err != nil {
			return // Redis down: keep serving what we know; poll again
		}
		if present && v == m.live.Load().version {
			return
		}
	}
	if err := m.reload(ctx); err != nil {
		m.log.Warn("runtime consumers: resync failed; keeping the current set", "error", err)
	}
}

// errOff is the answer to a write while runtime consumers are off.
var errOff = &Error{Kind: KindConflict, Msg: "runtime consumers are off: set store.consumers_file (memory store) or use store.backend: redis"}

// ConfigClaims is what the config file already takes (the snapshot's
// Directory): a runtime consumer may not take it too.
type ConfigClaims interface {
	ConfigHas(name string) bool
	ConfigHasIdentity(claim string) bool
}

// change runs one mutation: checks against the config, writes it with its
// audit entry, swaps the index and tells the other instances.
func (m *Manager) change(ctx context.Context, cfg ConfigClaims, name string, fn func(cur *Record) (*Record, error), audit AuditEntry) (*Record, error) {
	if !m.Enabled() {
		return nil, errOff
	}
	// A Redis that restarted empty is restored before it is written,
	// or the first write would make every instance forget the rest.
	if ver, present, err := m.b.version(ctx); err != nil {
		return nil, err
	} else if !present && m.live.Load().version > 0 {
		if err := m.reload(ctx); err != nil {
			return nil, err
		}
	} else if present && ver < m.live.Load().version {
		return nil, errf(KindUnavailable, "the store's consumers are older than this instance's; retry in a few seconds")
	}
	wrapped := func(cur *Record) (*Record, error) {
		next, err := fn(cur)
		if err != nil || next == nil || cfg == nil {
			return next, err
		}
		added, _ := claimDiff(cur, next)
		for _, c := range added {
			if cfg.ConfigHasIdentity(c) {
				return nil, errf(KindConflict, "%s is defined in the config file", describeClaim(c))
			}
		}
		return next, nil
	}
	audit.Time = time.Now().UTC()
	audit.Consumer = name
	rec, ver, err := m.b.mutate(ctx, name, wrapped, &audit)
	if err != nil {
		return nil, err
	}
	m.applyOne(name, rec, ver)
	if err := m.b.notify(ctx, name, ver); err != nil {
		m.log.Warn("runtime consumers: change saved but not announced; other instances see it at their next poll", "error", err)
	}
	return rec, nil
}

// Get returns the runtime record of name (shared: do not modify), or nil.
func (m *Manager) Get(name string) *Record {
	if m == nil {
		return nil
	}
	return m.live.Load().records[name]
}

// Profile is the mutable part of a consumer.
type Profile struct {
	Roles      []string
	RateLimits []RateLimit
	Quotas     []Quota
	Metadata   map[string]string
}

func (p Profile) apply(r *Record) error {
	r.Roles = append([]string{}, p.Roles...)
	r.RateLimits = append([]RateLimit(nil), p.RateLimits...)
	r.Quotas = append([]Quota(nil), p.Quotas...)
	r.Metadata = maps.Clone(p.Metadata)
	return checkProfile(r)
}

// Create makes a runtime consumer.
func (m *Manager) Create(ctx context.Context, cfg ConfigClaims, actor, name string, p Profile) (*Record, error) {
	if !ValidName(name) {
		return nil, errf(KindInvalid, "name: 1 to %d letters, digits and -._@, starting with a letter or digit", MaxNameLen)
	}
	if cfg != nil && cfg.ConfigHas(name) {
		return nil, errf(KindConflict, "consumer %q is defined in the config file", name)
	}
	return m.change(ctx, cfg, name, func(cur *Record) (*Record, error) {
		if cur != nil {
			return nil, errf(KindConflict, "consumer %q exists", name)
		}
		now := time.Now().UTC()
		r := &Record{Name: name, CreatedAt: now, UpdatedAt: now}
		return r, p.apply(r)
	}, AuditEntry{Actor: actor, Action: "consumer.create"})
}

// Update replaces a runtime consumer's roles, limits, quotas and metadata.
func (m *Manager) Update(ctx context.Context, cfg ConfigClaims, actor, name string, p Profile) (*Record, error) {
	if err := writable(cfg, name); err != nil {
		return nil, err
	}
	return m.change(ctx, cfg, name, func(cur *Record) (*Record, error) {
		if cur == nil {
			return nil, notFound(name)
		}
		r := cur.clone()
		r.UpdatedAt = time.Now().UTC()
		return r, p.apply(r)
	}, AuditEntry{Actor: actor, Action: "consumer.update"})
}

// Delete removes a runtime consumer and every credential it has. It is
// allowed on one shadowed by the config, to clean it up.
func (m *Manager) Delete(ctx context.Context, cfg ConfigClaims, actor, name string) error {
	if cfg != nil && cfg.ConfigHas(name) && m.Get(name) == nil {
		return errf(KindConflict, "consumer %q is defined in the config file; remove it there", name)
	}
	_, err := m.change(ctx, nil, name, func(cur *Record) (*Record, error) {
		if cur == nil {
			return nil, notFound(name)
		}
		return nil, nil
	}, AuditEntry{Actor: actor, Action: "consumer.delete"})
	return err
}

func notFound(name string) error { return errf(KindNotFound, "no runtime consumer %q", name) }

func writable(cfg ConfigClaims, name string) error {
	if cfg != nil && cfg.ConfigHas(name) {
		return errf(KindConflict, "consumer %q is defined in the config file and cannot be changed through the API", name)
	}
	return nil
}

// IssuedKey is a new key: Key is shown once and never stored.
type IssuedKey struct {
	Key string
	KeyRecord
	// Replaced is the rotated key with its new expiry (rotation only).
	Replaced *KeyRecord
}

// MaxKeyLifetime bounds expires_in and overlap.
const MaxKeyLifetime = 10 * 365 * 24 * time.Hour

// IssueKey makes a new API key for name; ttl 0 = no expiry.
func (m *Manager) IssueKey(ctx context.Context, cfg ConfigClaims, actor, name string, ttl time.Duration) (*IssuedKey, error) {
	return m.issue(ctx, cfg, actor, name, "", ttl, 0)
}

// RotateKey issues a new key and makes key id expire after overlap (0:
// at once). ttl is the new key's lifetime (0: none).
func (m *Manager) RotateKey(ctx context.Context, cfg ConfigClaims, actor, name, id string, ttl, overlap time.Duration) (*IssuedKey, error) {
	if overlap < 0 || overlap > MaxKeyLifetime {
		return nil, errf(KindInvalid, "overlap: between 0s and %s", MaxKeyLifetime)
	}
	return m.issue(ctx, cfg, actor, name, id, ttl, overlap)
}

func (m *Manager) issue(ctx context.Context, cfg ConfigClaims, actor, name, rotate string, ttl, overlap time.Duration) (*IssuedKey, error) {
	if err := writable(cfg, name); err != nil {
		return nil, err
	}
	if ttl < 0 || ttl > MaxKeyLifetime {
		return nil, errf(KindInvalid, "expires_in: between 0s (no expiry) and %s", MaxKeyLifetime)
	}
	key, sum := NewKey()
	id := newID("key_")
	out := &IssuedKey{Key: key}
	action, detail := "key.issue", ""
	if rotate != "" {
		action, detail = "key.rotate", "replaces "+rotate+", overlap "+overlap.String()
	}
	_, err := m.change(ctx, cfg, name, func(cur *Record) (*Record, error) {
		if cur == nil {
			return nil, notFound(name)
		}
		r := cur.clone()
		now := time.Now().UTC()
		r.UpdatedAt = now
		if rotate != "" {
			i := keyIndex(r, rotate)
			if i < 0 {
				return nil, errf(KindNotFound, "consumer %q has no key %q", name, rotate)
			}
			end := now.Add(overlap)
			if old := r.Keys[i].ExpiresAt; old == nil || end.Before(*old) {
				r.Keys[i].ExpiresAt = &end
			}
			old := r.Keys[i]
			out.Replaced = &old
		}
		live := 0
		for _, k := range r.Keys {
			if k.ExpiresAt == nil || k.ExpiresAt.After(now) {
				live++
			}
		}
		// Expired keys are dropped as new ones come in.
		r.Keys = dropExpired(r.Keys, now)
		if live >= MaxKeys {
			return nil, errf(KindConflict, "consumer %q has %d keys, the most allowed; revoke one first", name, MaxKeys)
		}
		kr := KeyRecord{ID: id, Hash: sum, CreatedAt: now}
		if ttl > 0 {
			exp := now.Add(ttl)
			kr.ExpiresAt = &exp
		}
		r.Keys = append(r.Keys, kr)
		out.KeyRecord = kr
		return r, nil
	}, AuditEntry{Actor: actor, Action: action, KeyID: id, Detail: detail})
	if err != nil {
		return nil, err
	}
	return out, nil
}

func keyIndex(r *Record, id string) int {
	for i, k := range r.Keys {
		if k.ID == id {
			return i
		}
	}
	return -1
}

func dropExpired(keys []KeyRecord, now time.Time) []KeyRecord {
	out := keys[:0]
	for _, k := range keys {
		if k.ExpiresAt == nil || k.ExpiresAt.After(now) {
			out = append(out, k)
		}
	}
	return out
}

// RevokeKey removes key id at once.
func (m *Manager) RevokeKey(ctx context.Context, cfg ConfigClaims, actor, name, id string) error {
	if err := writable(cfg, name); err != nil {
		return err
	}
	_, err := m.change(ctx, cfg, name, func(cur *Record) (*Record, error) {
		if cur == nil {
			return nil, notFound(name)
		}
		r := cur.clone()
		i := keyIndex(r, id)
		if i < 0 {
			return nil, errf(KindNotFound, "consumer %q has no key %q", name, id)
		}
		r.Keys = append(r.Keys[:i], r.Keys[i+1:]...)
		r.UpdatedAt = time.Now().UTC()
		return r, nil
	}, AuditEntry{Actor: actor, Action: "key.revoke", KeyID: id})
	return err
}

// AddBasic adds a basic-auth login: password is bcrypt-hashed here, or
// hash (already bcrypt) is kept.
func (m *Manager) AddBasic(ctx context.Context, cfg ConfigClaims, actor, name, user, password, hash string) (*BasicRecord, error) {
	if err := writable(cfg, name); err != nil {
		return nil, err
	}
	if user == "" || len(user) > MaxUsernameLen || strings.ContainsAny(user, ":") || strings.ContainsFunc(user, func(r rune) bool { return r < ' ' || r == 0x7f }) {
		return nil, errf(KindInvalid, "username: 1 to %d characters, no colon or control characters", MaxUsernameLen)
	}
	// A cheap refusal first (hashing a password costs tens of
	// milliseconds). Only a duplicate is refused here: this instance's
	// copy may lag the store by a moment, so absence is for the
	// transaction to decide.
	if rec := m.Get(name); rec != nil {
		for _, b := range rec.BasicAuth {
			if b.Username == user {
				return nil, errf(KindConflict, "consumer %q already has basic-auth user %q", name, user)
			}
		}
	}
	h, err := BasicHash(password, hash, m.cost)
	if err != nil {
		return nil, err
	}
	var out BasicRecord
	_, err = m.change(ctx, cfg, name, func(cur *Record) (*Record, error) {
		if cur == nil {
			return nil, notFound(name)
		}
		r := cur.clone()
		for _, b := range r.BasicAuth {
			if b.Username == user {
				return nil, errf(KindConflict, "consumer %q already has basic-auth user %q", name, user)
			}
		}
		if len(r.BasicAuth) >= MaxBasicUsers {
			return nil, errf(KindConflict, "consumer %q has %d basic-auth users, the most allowed", name, MaxBasicUsers)
		}
		now := time.Now().UTC()
		out = BasicRecord{Username: user, Hash: h, CreatedAt: now}
		r.BasicAuth = append(r.BasicAuth, out)
		r.UpdatedAt = now
		return r, nil
	}, AuditEntry{Actor: actor, Action: "basic.add", Detail: "username " + user})
	if err != nil {
		return nil, err
	}
	return &out, nil
}

// RemoveBasic removes a basic-auth login.
func (m *Manager) RemoveBasic(ctx context.Context, cfg ConfigClaims, actor, name, user string) error {
	if err := writable(cfg, name); err != nil {
		return err
	}
	_, err := m.change(ctx, cfg, name, func(cur *Record) (*Record, error) {
		if cur == nil {
			return nil, notFound(name)
		}
		r := cur.clone()
		if !removeFirst(&r.BasicAuth, func(b BasicRecord) bool { return b.Username == user }) {
			return nil, errf(KindNotFound, "consumer %q has no basic-auth user %q", name, user)
		}
		r.UpdatedAt = time.Now().UTC()
		return r, nil
	}, AuditEntry{Actor: actor, Action: "basic.remove", Detail: "username " + user})
	return err
}

// AddCertificate adds a certificate identity: exactly one of subject and san.
func (m *Manager) AddCertificate(ctx context.Context, cfg ConfigClaims, actor, name, subject, san string) (*CertRecord, error) {
	if err := writable(cfg, name); err != nil {
		return nil, err
	}
	subject, san = strings.TrimSpace(subject), strings.TrimSpace(san)
	if (subject == "") == (san == "") {
		return nil, errf(KindInvalid, "give exactly one of subject and san")
	}
	if len(subject) > MaxIdentityLen || len(san) > MaxIdentityLen || strings.ContainsFunc(subject+san, func(r rune) bool { return r < ' ' || r == 0x7f }) {
		return nil, errf(KindInvalid, "subject and san: at most %d characters, no control characters", MaxIdentityLen)
	}
	if subject != "" && !strings.Contains(subject, "=") {
		return nil, errf(KindInvalid, "subject: want a distinguished name such as CN=client,O=Acme")
	}
	var out CertRecord
	certID := newID("cert_")
	_, err := m.change(ctx, cfg, name, func(cur *Record) (*Record, error) {
		if cur == nil {
			return nil, notFound(name)
		}
		r := cur.clone()
		if len(r.Certificates) >= MaxCertificates {
			return nil, errf(KindConflict, "consumer %q has %d certificate identities, the most allowed", name, MaxCertificates)
		}
		now := time.Now().UTC()
		out = CertRecord{ID: certID, Subject: subject, SAN: san, CreatedAt: now}
		probe := &Record{Certificates: []CertRecord{out}}
		mine := map[string]bool{}
		for _, c := range cur.claims() {
			mine[c] = true
		}
		for _, c := range probe.claims() {
			if mine[c] {
				return nil, errf(KindConflict, "consumer %q already has %s", name, describeClaim(c))
			}
		}
		r.Certificates = append(r.Certificates, out)
		r.UpdatedAt = now
		return r, nil
	}, AuditEntry{Actor: actor, Action: "certificate.add", Detail: "certificate " + certID})
	if err != nil {
		return nil, err
	}
	return &out, nil
}

// RemoveCertificate removes certificate identity id.
func (m *Manager) RemoveCertificate(ctx context.Context, cfg ConfigClaims, actor, name, id string) error {
	if err := writable(cfg, name); err != nil {
		return err
	}
	_, err := m.change(ctx, cfg, name, func(cur *Record) (*Record, error) {
		if cur == nil {
			return nil, notFound(name)
		}
		r := cur.clone()
		if !removeFirst(&r.Certificates, func(c CertRecord) bool { return c.ID == id }) {
			return nil, errf(KindNotFound, "consumer %q has no certificate identity %q", name, id)
		}
		r.UpdatedAt = time.Now().UTC()
		return r, nil
	}, AuditEntry{Actor: actor, Action: "certificate.remove", Detail: "certificate " + id})
	return err
}

// MaxAuditPage bounds one page of the audit trail.
const MaxAuditPage = 500

// Audit reads the audit trail, newest first.
func (m *Manager) Audit(ctx context.Context, offset, limit int) ([]AuditEntry, int, error) {
	if !m.Enabled() {
		return []AuditEntry{}, 0, nil
	}
	if offset < 0 || limit < 1 || limit > MaxAuditPage {
		return nil, 0, errf(KindInvalid, "offset must be >= 0 and limit 1 to %d", MaxAuditPage)
	}
	return m.b.audit(ctx, offset, limit)
}

// IsOff reports whether err is the "runtime consumers are off" refusal.
func IsOff(err error) bool { return errors.Is(err, errOff) }

// removeFirst deletes the first element of *list that match reports, in
// place (callers work on a clone), and reports whether there was one.
func removeFirst[T any](list *[]T, match func(T) bool) bool {
	i := slices.IndexFunc(*list, match)
	if i < 0 {
		return false
	}
	*list = slices.Delete(*list, i, i+1)
	return true
}
