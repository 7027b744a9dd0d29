package consumers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"github.com/redis/go-redis/v9"

	"github.com/portunus-gw/portunus/internal/store"
)

// The Redis layout, under the store's key prefix. The {consumers} hash
// tag keeps every key in one cluster slot, so a change is one MULTI.
const (
	redisData    = "{consumers}:data"    // hash: name -> Record JSON
	redisClaims  = "{consumers}:claims"  // hash: claim -> consumer name
	redisVersion = "{consumers}:version" // counter, +1 per change
	redisAudit   = "{consumers}:audit"   // list, newest first, capped
	// redisChannel carries "version name" after every change.
	redisChannel = "consumers:changed"
	// redisTxRetries bounds optimistic-lock retries of one change; admin
	// writes are rare, so losing this many races in a row means trouble.
	redisTxRetries = 20
)

// redisBackend keeps runtime consumers in Redis, shared by every instance.
type redisBackend struct {
	st     *store.Redis
	c      redis.UniversalClient
	data   string
	claims string
	ver    string
	audits string
}

func newRedisBackend(st *store.Redis) *redisBackend {
	p := st.Prefix()
	return &redisBackend{
		st: st, c: st.Client(),
		data: p + redisData, claims: p + redisClaims, ver: p + redisVersion, audits: p + redisAudit,
	}
}

func (b *redisBackend) name() string { return "redis" }

func (b *redisBackend) load(ctx context.Context) (uint64, map[string]*Record, bool, error) {
	var verCmd *redis.StringCmd
	var dataCmd *redis.MapStringStringCmd
	_, err := b.c.TxPipelined(ctx, func(p redis.Pipeliner) error {
		verCmd = p.Get(ctx, b.ver)
		dataCmd = p.HGetAll(ctx, b.data)
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return 0, nil, false, fmt.Errorf("consumers: redis load: %w", err)
	}
	ver, present, err := parseVersion(verCmd)
	if err != nil {
		return 0, nil, false, err
	}
	recs := make(map[string]*Record, len(dataCmd.Val()))
	for name, v := range dataCmd.Val() {
		r := &Record{}
		if err := json.Unmarshal([]byte(v), r); err != nil || r.Name != name {
			return 0, nil, false, fmt.Errorf("consumers: redis record %q is damaged", name)
		}
		recs[name] = r
	}
	return ver, recs, present, nil
}

func parseVersion(cmd *redis.StringCmd) (uint64, bool, error) {
	s, err := cmd.Result()
	if errors.Is(err, redis.Nil) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("consumers: redis version: %w", err)
	}
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, false, fmt.Errorf("consumers: redis version %q is not a number", s)
	}
	return v, true, nil
}

func (b *redisBackend) version(ctx context.Context) (uint64, bool, error) {
	return parseVersion(b.c.Get(ctx, b.ver))
}

func (b *redisBackend) get(ctx context.Context, name string) (*Record, uint64, error) {
	var verCmd *redis.StringCmd
	var recCmd *redis.StringCmd
	_, err := b.c.TxPipelined(ctx, func(p redis.Pipeliner) error {
		verCmd = p.Get(ctx, b.ver)
		recCmd = p.HGet(ctx, b.data, name)
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, 0, fmt.Errorf("consumers: redis get: %w", err)
	}
	ver, _, err := parseVersion(verCmd)
	if err != nil {
		return nil, 0, err
	}
	s, err := recCmd.Result()
	if errors.Is(err, redis.Nil) {
		return nil, ver, nil
	}
	r := &Record{}
	if err := json.Unmarshal([]byte(s), r); err != nil {
		return nil, 0, fmt.Errorf("consumers: redis record %q is damaged", name)
	}
	return r, ver, nil
}

func (b *redisBackend) mutate(ctx context.Context, name string, fn func(*Record) (*Record, error), audit *AuditEntry) (*Record, uint64, error) {
	var out *Record
	var ver uint64
	txf := func(tx *redis.Tx) error {
		var cur *Record
		s, err := tx.HGet(ctx, b.data, name).Result()
		switch {
		case errors.Is(err, redis.Nil):
		case err != nil:
			return fmt.Errorf("consumers: redis read: %w", err)
		default:
			cur = &Record{}
			if err := json.Unmarshal([]byte(s), cur); err != nil {
				return fmt.Errorf("consumers: redis record %q is damaged", name)
			}
		}
		next, err := fn(cur)
		if err != nil {
			return err
		}
		added, dropped := claimDiff(cur, next)
		if len(added) > 0 {
			owners, err := tx.HMGet(ctx, b.claims, added...).Result()
			if err != nil {
				return fmt.Errorf("consumers: redis read: %w", err)
			}
			for i, o := range owners {
				if s, ok := o.(string); ok && s != name {
					return claimConflict(added[i], s)
				}
			}
		}
		var data []byte
		if next != nil {
			if data, err = json.Marshal(next); err != nil {
				return err
			}
		}
		cur64, _, err := parseVersion(tx.Get(ctx, b.ver))
		if err != nil {
			return err
		}
		ver = cur64 + 1
		var auditJSON []byte
		if audit != nil {
			audit.Seq = ver
			if auditJSON, err = json.Marshal(audit); err != nil {
				return err
			}
		}
		_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
			if next == nil {
				p.HDel(ctx, b.data, name)
			} else {
				p.HSet(ctx, b.data, name, data)
			}
			if len(dropped) > 0 {
				p.HDel(ctx, b.claims, dropped...)
			}
			for _, c := range added {
				p.HSet(ctx, b.claims, c, name)
			}
			p.Set(ctx, b.ver, ver, 0)
			if auditJSON != nil {
				p.LPush(ctx, b.audits, auditJSON)
				p.LTrim(ctx, b.audits, 0, MaxAudit-1)
			}
			return nil
		})
		if err == nil {
			out = next
		}
		return err
	}
	// Watching the version serializes every change of every consumer:
	// simple, and admin writes are rare enough for it.
	for range redisTxRetries {
		err := b.c.Watch(ctx, txf, b.ver, b.data)
		if errors.Is(err, redis.TxFailedErr) {
			continue
		}
		if err != nil {
			var e *Error
			if errors.As(err, &e) {
				return nil, 0, err
			}
			return nil, 0, fmt.Errorf("consumers: redis write: %w", err)
		}
		return out, ver, nil
	}
	return nil, 0, errf(KindConflict, "the consumers in Redis changed %d times while writing; try again", redisTxRetries)
}

func (b *redisBackend) seed(ctx context.Context, version uint64, recs map[string]*Record) (bool, error) {
	seeded := false
	err := b.c.Watch(ctx, func(tx *redis.Tx) error {
		if n, err := tx.Exists(ctx, b.ver).Result(); err != nil || n > 0 {
			return err
		}
		_, err := tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
			p.Del(ctx, b.data, b.claims)
			for name, r := range recs {
				data, err := json.Marshal(r)
				if err != nil {
					return err
				}
				p.HSet(ctx, b.data, name, data)
				for _, c := range r.claims() {
					p.HSet(ctx, b.claims, c, name)
				}
			}
			p.Set(ctx, b.ver, version, 0)
			return nil
		})
		seeded = err == nil
		return err
	}, b.ver)
	if errors.Is(err, redis.TxFailedErr) {
		return false, nil // another instance seeded first
	}
	if err != nil {
		return false, fmt.Errorf("consumers: redis seed: %w", err)
	}
	return seeded, nil
}

func (b *redisBackend) audit(ctx context.Context, offset, limit int) ([]AuditEntry, int, error) {
	var lenCmd *redis.IntCmd
	var rangeCmd *redis.StringSliceCmd
	_, err := b.c.TxPipelined(ctx, func(p redis.Pipeliner) error {
		lenCmd = p.LLen(ctx, b.audits)
		rangeCmd = p.LRange(ctx, b.audits, int64(offset), int64(offset+limit-1))
		return nil
	})
	if err != nil {
		return nil, 0, fmt.Errorf("consumers: redis audit: %w", err)
	}
	out := make([]AuditEntry, 0, len(rangeCmd.Val()))
	for _, s := range rangeCmd.Val() {
		var e AuditEntry
		if err := json.Unmarshal([]byte(s), &e); err != nil {
			return nil, 0, fmt.Errorf("consumers: redis audit entry damaged")
		}
		out = append(out, e)
	}
	return out, int(lenCmd.Val()), nil
}

func (b *redisBackend) notify(ctx context.Context, name string, version uint64) error {
	return b.st.Publish(ctx, redisChannel, []byte(strconv.FormatUint(version, 10)+" "+name))
}

func (b *redisBackend) subscribe(ctx context.Context, fn func([]byte)) (func(), error) {
	return b.st.Subscribe(ctx, redisChannel, fn)
}

// close leaves the store alone: it belongs to the runtime.
func (b *redisBackend) close() error { return nil }
