package consumers

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Bucket names of the bbolt file.
var (
	bktRecords = []byte("consumers") // name -> Record JSON
	bktClaims  = []byte("claims")    // claim -> consumer name
	bktAudit   = []byte("audit")     // big-endian seq -> AuditEntry JSON
	bktMeta    = []byte("meta")      // "version", "audit_count"
	keyVersion = []byte("version")
	keyAuditN  = []byte("audit_count")
)

// boltLockWait bounds the wait for the file lock: a second process using
// the same file is an error at start-up, not a hang.
const boltLockWait = 2 * time.Second

// boltBackend keeps runtime consumers in a local bbolt file, for the
// memory store (one instance). Every write is one fsynced transaction.
type boltBackend struct {
	db   *bolt.DB
	path string
}

// openBolt opens (creating) the file and checks that it is a consumers
// database: a damaged or foreign file is an error naming the path, never
// an empty start.
func openBolt(path string) (b *boltBackend, err error) {
	// bbolt panics on some damaged pages rather than returning an error;
	// at start-up that is a damaged file, reported as one.
	defer func() {
		if p := recover(); p != nil {
			b, err = nil, fmt.Errorf("consumers file %s: damaged: %v", path, p)
		}
	}()
	if dir := filepath.Dir(path); dir != "" {
		if st, err := os.Stat(dir); err != nil {
			return nil, fmt.Errorf("consumers file %s: directory: %w", path, err)
		} else if !st.IsDir() {
			return nil, fmt.Errorf("consumers file %s: %s is not a directory", path, dir)
		}
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: boltLockWait})
	if err != nil {
		if errors.Is(err, bolt.ErrTimeout) {
			return nil, fmt.Errorf("consumers file %s: locked by another process", path)
		}
		return nil, fmt.Errorf("consumers file %s: %w", path, err)
	}
	b = &boltBackend{db: db, path: path}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, name := range [][]byte{bktRecords, bktClaims, bktAudit, bktMeta} {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return err
			}
		}
		// Every record must decode: finding out at the first request
		// would be silent loss.
		return tx.Bucket(bktRecords).ForEach(func(k, v []byte) error {
			var r Record
			if err := json.Unmarshal(v, &r); err != nil || r.Name != string(k) {
				return fmt.Errorf("record %q is damaged", k)
			}
			return nil
		})
	})
	if err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("consumers file %s: %w", path, err)
	}
	return b, nil
}

func (b *boltBackend) name() string { return "bbolt" }

func readVersion(tx *bolt.Tx) uint64 {
	v := tx.Bucket(bktMeta).Get(keyVersion)
	if len(v) != 8 {
		return 0
	}
	return binary.BigEndian.Uint64(v)
}

func u64(v uint64) []byte {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], v)
	return b[:]
}

func (b *boltBackend) load(context.Context) (uint64, map[string]*Record, bool, error) {
	recs := map[string]*Record{}
	var ver uint64
	err := b.db.View(func(tx *bolt.Tx) error {
		ver = readVersion(tx)
		return tx.Bucket(bktRecords).ForEach(func(k, v []byte) error {
			r := &Record{}
			if err := json.Unmarshal(v, r); err != nil {
				return fmt.Errorf("record %q is damaged: %v", k, err)
			}
			recs[r.Name] = r
			return nil
		})
	})
	if err != nil {
		return 0, nil, false, fmt.Errorf("consumers file %s: %w", b.path, err)
	}
	return ver, recs, true, nil
}

func (b *boltBackend) version(context.Context) (v uint64, present bool, err error) {
	err = b.db.View(func(tx *bolt.Tx) error { v = readVersion(tx); return nil })
	return v, true, err
}

func (b *boltBackend) get(_ context.Context, name string) (*Record, uint64, error) {
	var r *Record
	var ver uint64
	err := b.db.View(func(tx *bolt.Tx) error {
		ver = readVersion(tx)
		v := tx.Bucket(bktRecords).Get([]byte(name))
		if v == nil {
			return nil
		}
		r = &Record{}
		return json.Unmarshal(v, r)
	})
	return r, ver, err
}

func (b *boltBackend) mutate(_ context.Context, name string, fn func(*Record) (*Record, error), audit *AuditEntry) (*Record, uint64, error) {
	var out *Record
	var ver uint64
	err := b.db.Update(func(tx *bolt.Tx) error {
		recs, claims, meta := tx.Bucket(bktRecords), tx.Bucket(bktClaims), tx.Bucket(bktMeta)
		var cur *Record
		if v := recs.Get([]byte(name)); v != nil {
			cur = &Record{}
			if err := json.Unmarshal(v, cur); err != nil {
				return fmt.Errorf("record %q is damaged: %v", name, err)
			}
		}
		next, err := fn(cur)
		if err != nil {
			return err
		}
		added, dropped := claimDiff(cur, next)
		for _, c := range added {
			if owner := claims.Get([]byte(c)); owner != nil && string(owner) != name {
				return claimConflict(c, string(owner))
			}
		}
		for _, c := range dropped {
			if err := claims.Delete([]byte(c)); err != nil {
				return err
			}
		}
		for _, c := range added {
			if err := claims.Put([]byte(c), []byte(name)); err != nil {
				return err
			}
		}
		if next == nil {
			if err := recs.Delete([]byte(name)); err != nil {
				return err
			}
		} else {
			data, err := json.Marshal(next)
			if err != nil {
				return err
			}
			if err := recs.Put([]byte(name), data); err != nil {
				return err
			}
		}
		ver = readVersion(tx) + 1
		if err := meta.Put(keyVersion, u64(ver)); err != nil {
			return err
		}
		out = next
		if audit != nil {
			return appendAuditBolt(tx, ver, audit)
		}
		return nil
	})
	if err != nil {
		return nil, 0, err
	}
	return out, ver, nil
}

// appendAuditBolt stores the entry under its sequence number and drops
// the oldest beyond MaxAudit.
func appendAuditBolt(tx *bolt.Tx, seq uint64, e *AuditEntry) error {
	e.Seq = seq
	data, err := json.Marshal(e)
	if err != nil {
		return err
	}
	ab, meta := tx.Bucket(bktAudit), tx.Bucket(bktMeta)
	if err := ab.Put(u64(seq), data); err != nil {
		return err
	}
	var n uint64
	if v := meta.Get(keyAuditN); len(v) == 8 {
		n = binary.BigEndian.Uint64(v)
	}
	n++
	c := ab.Cursor()
	for k, _ := c.First(); k != nil && n > MaxAudit; k, _ = c.Next() {
		if err := c.Delete(); err != nil {
			return err
		}
		n--
	}
	return meta.Put(keyAuditN, u64(n))
}

func (b *boltBackend) seed(context.Context, uint64, map[string]*Record) (bool, error) {
	return false, nil // the file is the only copy: nothing to restore from
}

func (b *boltBackend) audit(_ context.Context, offset, limit int) ([]AuditEntry, int, error) {
	out := []AuditEntry{}
	total := 0
	err := b.db.View(func(tx *bolt.Tx) error {
		if v := tx.Bucket(bktMeta).Get(keyAuditN); len(v) == 8 {
			total = int(binary.BigEndian.Uint64(v))
		}
		c := tx.Bucket(bktAudit).Cursor()
		i := 0
		for k, v := c.Last(); k != nil && len(out) < limit; k, v = c.Prev() {
			if i++; i <= offset {
				continue
			}
			var e AuditEntry
			if err := json.Unmarshal(v, &e); err != nil {
				return fmt.Errorf("audit entry damaged: %v", err)
			}
			out = append(out, e)
		}
		return nil
	})
	return out, total, err
}

func (b *boltBackend) notify(context.Context, string, uint64) error { return nil }

func (b *boltBackend) subscribe(context.Context, func([]byte)) (func(), error) {
	return func() {}, nil
}

func (b *boltBackend) close() error { return b.db.Close() }
