package consumers

import (
	"context"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/portunus-gw/portunus/internal/config"
)

func openTestManager(t *testing.T, path string) *Manager {
	t.Helper()
	m, err := OpenManager(ManagerOptions{File: path, BcryptCost: 4})
	if err != nil {
		t.Fatalf("open manager: %v", err)
	}
	t.Cleanup(func() { _ = m.Close() })
	return m
}

func kindOf(t *testing.T, err error) Kind {
	t.Helper()
	if err == nil {
		t.Fatal("no error; want one")
	}
	return KindOf(err)
}

// TestManagerLifecycle drives every change through a bbolt-backed manager
// and checks the directory a request would use after each one.
func TestManagerLifecycle(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "consumers.db")
	m := openTestManager(t, path)
	cfgDir := testDirectory(t)
	dir, _ := New([]config.Consumer{{Name: "alice"}})
	dir.WithRuntime(m.Live())

	rec, err := m.Create(ctx, cfgDir, "token", "acme", Profile{Roles: []string{"buyer"}, RateLimits: []RateLimit{{Limit: 5, Window: "1m"}}, Metadata: map[string]string{"plan": "gold"}})
	if err != nil {
		t.Fatal(err)
	}
	if rec.RateLimits[0].By != "ip" || rec.RateLimits[0].Burst != 5 {
		t.Errorf("rate limit defaults not applied: %+v", rec.RateLimits[0])
	}
	if _, err := m.Create(ctx, cfgDir, "token", "acme", Profile{}); kindOf(t, err) != KindConflict {
		t.Errorf("duplicate create: %v; want conflict", err)
	}
	if _, err := m.Create(ctx, cfgDir, "token", "alice", Profile{}); kindOf(t, err) != KindConflict || !strings.Contains(err.Error(), "config file") {
		t.Errorf("create of a config name: %v; want conflict naming the config file", err)
	}
	if _, err := m.Create(ctx, cfgDir, "token", "bad name", Profile{}); kindOf(t, err) != KindInvalid {
		t.Errorf("bad name: %v; want invalid", err)
	}

	k1, err := m.IssueKey(ctx, cfgDir, "token", "acme", 0)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(k1.Key, KeyPrefix) || len(k1.Key) != len(KeyPrefix)+43 {
		t.Errorf("key %q: want pk_ and 43 base64url characters", k1.Key)
	}
	c := dir.ByAPIKey(k1.Key)
	if name(c) != "acme" || !c.Runtime || strings.Join(c.Roles, ",") != "buyer" {
		t.Fatalf("issued key resolves to %+v", c)
	}
	if got := dir.RuntimeRateLimits("acme"); len(got) != 1 || got[0].Limit != 5 || got[0].Window.D() != time.Minute {
		t.Errorf("runtime rate limits = %+v", got)
	}
	if dir.ByAPIKey(k1.Key+"x") != nil {
		t.Error("a different key resolves")
	}

	// Rotation: both keys work during the overlap; with overlap 0 the
	// old one stops at once.
	k2, err := m.RotateKey(ctx, cfgDir, "token", "acme", k1.ID, 0, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if name(dir.ByAPIKey(k1.Key)) != "acme" || name(dir.ByAPIKey(k2.Key)) != "acme" {
		t.Error("during the overlap both keys must work")
	}
	k3, err := m.RotateKey(ctx, cfgDir, "token", "acme", k2.ID, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if dir.ByAPIKey(k2.Key) != nil || name(dir.ByAPIKey(k3.Key)) != "acme" {
		t.Error("rotation with overlap 0 must end the old key at once")
	}
	if _, err := m.RotateKey(ctx, cfgDir, "token", "acme", "key_nope", 0, 0); kindOf(t, err) != KindNotFound {
		t.Errorf("rotate unknown key: %v", err)
	}
	if err := m.RevokeKey(ctx, cfgDir, "token", "acme", k1.ID); err != nil {
		t.Fatal(err)
	}
	if dir.ByAPIKey(k1.Key) != nil {
		t.Error("revoked key still resolves")
	}

	// Basic auth: clear password hashed here; a hash kept; config
	// usernames refused.
	if _, err := m.AddBasic(ctx, cfgDir, "token", "acme", "acme-user", "pw-1", ""); err != nil {
		t.Fatal(err)
	}
	if name(dir.ByBasic("acme-user", "pw-1")) != "acme" || dir.ByBasic("acme-user", "wrong") != nil {
		t.Error("runtime basic user does not authenticate as it should")
	}
	if _, err := m.AddBasic(ctx, cfgDir, "token", "acme", "alice", "pw", ""); kindOf(t, err) != KindConflict {
		t.Errorf("config username: %v; want conflict", err)
	}
	if _, err := m.AddBasic(ctx, cfgDir, "token", "acme", "u2", "", "not-bcrypt"); kindOf(t, err) != KindInvalid {
		t.Errorf("bad hash: %v; want invalid", err)
	}
	if _, err := m.AddBasic(ctx, cfgDir, "token", "acme", "u3", "pw", bcryptOf(t, "x")); kindOf(t, err) != KindInvalid {
		t.Errorf("password and hash: %v; want invalid", err)
	}
	if _, err := m.AddBasic(ctx, cfgDir, "token", "acme", "u4", "", bcryptOf(t, "given")); err != nil || name(dir.ByBasic("u4", "given")) != "acme" {
		t.Errorf("basic user from a hash: %v", err)
	}

	// Certificates: a second consumer may not take the same identity.
	cert, err := m.AddCertificate(ctx, cfgDir, "token", "acme", "cn=acme-box, o=Acme", "")
	if err != nil {
		t.Fatal(err)
	}
	x := &x509.Certificate{Subject: pkix.Name{CommonName: "acme-box", Organization: []string{"Acme"}}}
	if name(dir.ByCertificate(x)) != "acme" {
		t.Error("runtime certificate identity does not resolve")
	}
	if _, err := m.Create(ctx, cfgDir, "token", "other", Profile{}); err != nil {
		t.Fatal(err)
	}
	if _, err := m.AddCertificate(ctx, cfgDir, "token", "other", "CN=acme-box,O=Acme", ""); kindOf(t, err) != KindConflict {
		t.Errorf("identity of another consumer: %v; want conflict", err)
	}
	if _, err := m.AddCertificate(ctx, cfgDir, "token", "other", "", "device-17.iot.example.com"); kindOf(t, err) != KindConflict {
		t.Errorf("identity from the config file: %v; want conflict", err)
	}
	if _, err := m.AddBasic(ctx, cfgDir, "token", "other", "acme-user", "pw", ""); kindOf(t, err) != KindConflict {
		t.Errorf("username of another consumer: %v; want conflict", err)
	}
	if err := m.RemoveCertificate(ctx, cfgDir, "token", "acme", cert.ID); err != nil {
		t.Fatal(err)
	}
	if dir.ByCertificate(x) != nil {
		t.Error("removed identity still resolves")
	}
	if err := m.RemoveBasic(ctx, cfgDir, "token", "acme", "acme-user"); err != nil {
		t.Fatal(err)
	}
	if dir.ByBasic("acme-user", "pw-1") != nil {
		t.Error("removed basic user still authenticates")
	}

	// Update keeps credentials and replaces the profile.
	if _, err := m.Update(ctx, cfgDir, "token", "acme", Profile{Roles: []string{"seller"}}); err != nil {
		t.Fatal(err)
	}
	if c := dir.ByAPIKey(k3.Key); c == nil || strings.Join(c.Roles, ",") != "seller" || len(c.RateLimits) != 0 {
		t.Errorf("after update: %+v", c)
	}
	if _, err := m.Update(ctx, cfgDir, "token", "alice", Profile{}); kindOf(t, err) != KindConflict {
		t.Errorf("update of a config consumer: %v", err)
	}
	if _, err := m.Update(ctx, cfgDir, "token", "ghost", Profile{}); kindOf(t, err) != KindNotFound {
		t.Errorf("update of an unknown consumer: %v", err)
	}

	// Restart: everything is still there.
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	m2 := openTestManager(t, path)
	dir2, _ := New(nil)
	dir2.WithRuntime(m2.Live())
	if name(dir2.ByAPIKey(k3.Key)) != "acme" || name(dir2.ByBasic("u4", "given")) != "acme" {
		t.Error("a restart lost consumers")
	}
	if err := m2.Delete(ctx, cfgDir, "token", "acme"); err != nil {
		t.Fatal(err)
	}
	if dir2.ByAPIKey(k3.Key) != nil || dir2.ByName("acme") != nil {
		t.Error("deleted consumer still resolves")
	}
	if err := m2.Delete(ctx, cfgDir, "token", "acme"); kindOf(t, err) != KindNotFound {
		t.Errorf("second delete: %v", err)
	}

	// The audit trail has every change, newest first, and no secret.
	entries, total, err := m2.Audit(ctx, 0, MaxAuditPage)
	if err != nil {
		t.Fatal(err)
	}
	if total != len(entries) || entries[0].Action != "consumer.delete" || entries[len(entries)-1].Action != "consumer.create" {
		t.Errorf("audit: total %d, %d entries, first %+v", total, len(entries), entries[0])
	}
	raw, _ := json.Marshal(entries)
	for _, secret := range []string{k1.Key, k2.Key, k3.Key, "pw-1", k1.Hash} {
		if strings.Contains(string(raw), secret) {
			t.Errorf("audit holds a secret: %s", raw)
		}
	}
	page, _, err := m2.Audit(ctx, 1, 2)
	if err != nil || len(page) != 2 || page[0].Seq != entries[1].Seq {
		t.Errorf("audit page 2: %+v, %v", page, err)
	}
	if _, _, err := m2.Audit(ctx, -1, 10); kindOf(t, err) != KindInvalid {
		t.Errorf("negative offset: %v", err)
	}
}

// TestConfigWins: a runtime consumer whose name the config later takes
// grants nothing; the config consumer answers.
func TestConfigWins(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	m := openTestManager(t, filepath.Join(t.TempDir(), "c.db"))
	if _, err := m.Create(ctx, nil, "token", "late", Profile{Roles: []string{"rt"}, RateLimits: []RateLimit{{Limit: 1, Window: "1s"}}}); err != nil {
		t.Fatal(err)
	}
	k, err := m.IssueKey(ctx, nil, "token", "late", 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.AddBasic(ctx, nil, "token", "late", "late-user", "pw", ""); err != nil {
		t.Fatal(err)
	}
	dir, _ := New([]config.Consumer{{Name: "late", Roles: []string{"cfg"}}})
	dir.WithRuntime(m.Live())
	if dir.ByAPIKey(k.Key) != nil || dir.ByBasic("late-user", "pw") != nil {
		t.Error("a shadowed runtime consumer's credentials must grant nothing")
	}
	if c := dir.ByName("late"); c == nil || c.Runtime || c.Roles[0] != "cfg" {
		t.Errorf("ByName = %+v; want the config consumer", c)
	}
	if dir.RuntimeRateLimits("late") != nil {
		t.Error("a shadowed runtime consumer's limits must not apply")
	}
	// Delete is allowed, to clean up.
	if err := m.Delete(ctx, dir, "token", "late"); err != nil {
		t.Errorf("delete of a shadowed runtime consumer: %v", err)
	}
}

// TestKeyExpiresWithoutWrite: a key's expires_at ends it by itself.
func TestKeyExpiresWithoutWrite(t *testing.T) {
	t.Parallel()
	old := time.Now().Add(-time.Minute)
	future := time.Now().Add(time.Hour)
	recs := map[string]*Record{"x": {Name: "x", Keys: []KeyRecord{
		{ID: "a", Hash: hashOf("expired")[7:], ExpiresAt: &old},
		{ID: "b", Hash: hashOf("valid")[7:], ExpiresAt: &future},
	}}}
	var l Live
	l.store(buildIndex(1, recs, nil))
	dir, _ := New(nil)
	dir.WithRuntime(&l)
	if dir.ByAPIKey("expired") != nil || name(dir.ByAPIKey("valid")) != "x" {
		t.Error("expiry not honoured")
	}
}

// TestBoltStartupErrors: a damaged file or an unusable path is an error
// naming the path, never an empty start.
func TestBoltStartupErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	garbage := filepath.Join(dir, "garbage.db")
	if err := os.WriteFile(garbage, []byte(strings.Repeat("not a bbolt file ", 2000)), 0o600); err != nil {
		t.Fatal(err)
	}
	damaged := filepath.Join(dir, "damaged.db")
	m := openTestManager(t, damaged)
	if _, err := m.Create(context.Background(), nil, "t", "a", Profile{}); err != nil {
		t.Fatal(err)
	}
	_ = m.Close()
	// Overwrite the record with bytes that are not JSON.
	b, err := openBolt(damaged)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bktRecords).Put([]byte("a"), []byte("{oops")) }); err != nil {
		t.Fatal(err)
	}
	_ = b.close()
	for _, tc := range []struct{ name, path, want string }{
		{"garbage", garbage, "invalid"},
		{"damaged record", damaged, "damaged"},
		{"missing directory", filepath.Join(dir, "nope", "c.db"), "directory"},
		{"a directory", dir, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := OpenManager(ManagerOptions{File: tc.path})
			if err == nil {
				t.Fatal("opened; want an error")
			}
			if !strings.Contains(err.Error(), tc.path) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q: want the path and %q", err, tc.want)
			}
		})
	}
	// Unwritable, as root too: a parent that is a regular file, and a
	// directory this user cannot create files in.
	notDir := filepath.Join(dir, "plain-file")
	if err := os.WriteFile(notDir, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	ro, cause := unwritablePath(t, dir)
	for _, tc := range []struct{ name, path, want string }{
		{"parent is a file", filepath.Join(notDir, "c.db"), notDir + " is not a directory"},
		{"unwritable directory", ro, cause},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.path == "" {
				t.Skip(tc.want)
			}
			_, err := OpenManager(ManagerOptions{File: tc.path})
			if err == nil || !strings.Contains(err.Error(), "consumers file "+tc.path+": ") || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v; want the path and %q", err, tc.want)
			}
		})
	}
}

// unwritablePath is a file path in a directory the test's user cannot
// create files in, with the cause the system gives. Not root: a 0500
// directory under dir. Root (permission bits do not stop it): a file
// under /sys, where the kernel refuses new files to root too. The
// cause is what a probe create there was told; when no such place
// exists, the path is "" and the cause says why.
func unwritablePath(t *testing.T, dir string) (path, cause string) {
	t.Helper()
	if os.Getuid() != 0 {
		ro := filepath.Join(dir, "ro")
		if err := os.Mkdir(ro, 0o500); err != nil {
			t.Fatal(err)
		}
		return filepath.Join(ro, "c.db"), "permission denied"
	}
	path = fmt.Sprintf("/sys/portunus-consumers-test-%d.db", os.Getpid())
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err == nil {
		f.Close()
		_ = os.Remove(path)
		return "", "root can create files in /sys here"
	}
	var pe *os.PathError
	if !errors.As(err, &pe) || !(errors.Is(err, fs.ErrPermission) || errors.Is(err, syscall.EROFS)) {
		return "", fmt.Sprintf("no place root cannot write: %v", err)
	}
	return path, pe.Err.Error()
}

// TestOffRefusesWrites: without a file or Redis, writes say how to enable
// runtime consumers.
func TestOffRefusesWrites(t *testing.T) {
	t.Parallel()
	m, err := OpenManager(ManagerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = m.Create(context.Background(), nil, "t", "a", Profile{})
	if kindOf(t, err) != KindConflict || !IsOff(err) || !strings.Contains(err.Error(), "consumers_file") {
		t.Errorf("write while off: %v", err)
	}
}

func TestCheckProfile(t *testing.T) {
	t.Parallel()
	for _, p := range []Profile{
		{Roles: []string{""}},
		{Roles: []string{"a b"}},
		{Roles: []string{"a", "a"}},
		{RateLimits: []RateLimit{{Limit: 0, Window: "1m"}}},
		{RateLimits: []RateLimit{{Limit: 1, Window: "soon"}}},
		{RateLimits: []RateLimit{{Limit: 1, Window: "1m", By: "moon"}}},
		{RateLimits: []RateLimit{{Limit: 1, Window: "1m", Burst: -1}}},
		{RateLimits: []RateLimit{{Name: "x", Limit: 1, Window: "1m"}, {Name: "x", Limit: 1, Window: "1m"}}},
		{Metadata: map[string]string{"": "v"}},
		{Metadata: map[string]string{"k": strings.Repeat("v", MaxMetaValueLen+1)}},
	} {
		if err := p.apply(&Record{}); KindOf(err) != KindInvalid || err == nil {
			t.Errorf("%+v: %v; want invalid", p, err)
		}
	}
	ok := Profile{Roles: []string{"a"}, RateLimits: []RateLimit{{Limit: 1, Window: "1m", By: "header:X-Team"}}}
	if err := ok.apply(&Record{}); err != nil {
		t.Errorf("valid profile refused: %v", err)
	}
}

// benchDirectory is a directory with n runtime consumers of one key each.
func benchDirectory(b *testing.B, n int) (*Directory, string) {
	recs := make(map[string]*Record, n)
	var probe string
	for i := range n {
		key, sum := NewKey()
		nm := fmt.Sprintf("c%d", i)
		recs[nm] = &Record{Name: nm, Keys: []KeyRecord{{ID: "k", Hash: sum}}}
		if i == n/2 {
			probe = key
		}
	}
	var l Live
	l.store(buildIndex(1, recs, nil))
	d, _ := New([]config.Consumer{{Name: "cfg", APIKeys: []string{"cfg-key"}}})
	d.WithRuntime(&l)
	return d, probe
}

// BenchmarkRuntimeKeyLookup: the per-request key check costs the same
// with 100,000 runtime consumers as with 10 (one hash, two map lookups).
func BenchmarkRuntimeKeyLookup(b *testing.B) {
	for _, n := range []int{10, 100_000} {
		d, key := benchDirectory(b, n)
		b.Run(fmt.Sprintf("consumers=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if d.ByAPIKey(key) == nil {
					b.Fatal("key not found")
				}
			}
		})
	}
}
