package consumers

import (
	"context"
	"time"
)

// backend is where runtime consumers persist: Redis (shared by every
// instance) or a bbolt file (one instance). Every change bumps one
// version number; the audit entry of a change is written in the same
// transaction as the change, so neither exists without the other.
type backend interface {
	// name is "redis" or "bbolt", for messages.
	name() string
	// load reads every record and the version they make up. present is
	// false when the store holds no version at all (new, or wiped).
	load(ctx context.Context) (version uint64, recs map[string]*Record, present bool, err error)
	// version reads the version alone (cheap; polled).
	version(ctx context.Context) (v uint64, present bool, err error)
	// get reads one record (nil when absent) with the current version.
	get(ctx context.Context, name string) (*Record, uint64, error)
	// mutate reads name's record (nil when absent), calls fn, and stores
	// what fn returns (nil deletes), checking that the claims it adds
	// (usernames, certificate identities) belong to no other consumer.
	// It returns the stored record and the new version. audit gets the
	// version as its sequence number.
	mutate(ctx context.Context, name string, fn func(cur *Record) (*Record, error), audit *AuditEntry) (*Record, uint64, error)
	// seed writes recs at version into a store that lost everything
	// (Redis restarted without persistence). It does nothing and
	// reports false if the store has a version meanwhile.
	seed(ctx context.Context, version uint64, recs map[string]*Record) (bool, error)
	// audit reads entries newest first.
	audit(ctx context.Context, offset, limit int) ([]AuditEntry, int, error)
	// notify tells the other instances that name changed at version;
	// subscribe hears it. Both are no-ops for a single-instance backend.
	notify(ctx context.Context, name string, version uint64) error
	subscribe(ctx context.Context, fn func(msg []byte)) (cancel func(), err error)
	close() error
}

// AuditEntry is one change made through the admin API: who, what, when,
// which consumer and key. It never holds a secret.
type AuditEntry struct {
	Seq      uint64    `json:"seq"`
	Time     time.Time `json:"time"`
	Actor    string    `json:"actor"`
	Action   string    `json:"action"`
	Consumer string    `json:"consumer"`
	KeyID    string    `json:"key_id,omitempty"`
	Detail   string    `json:"detail,omitempty"`
}

// MaxAudit is how many audit entries are kept; older ones are dropped.
const MaxAudit = 10000

// claimDiff returns the claims next adds over cur, and those it drops.
func claimDiff(cur, next *Record) (added, dropped []string) {
	old := map[string]bool{}
	for _, c := range cur.claims() {
		old[c] = true
	}
	now := map[string]bool{}
	for _, c := range next.claims() {
		now[c] = true
		if !old[c] {
			added = append(added, c)
		}
	}
	for c := range old {
		if !now[c] {
			dropped = append(dropped, c)
		}
	}
	return added, dropped
}

func claimConflict(claim, owner string) error {
	return errf(KindConflict, "%s is already taken by runtime consumer %q", describeClaim(claim), owner)
}

func describeClaim(claim string) string {
	switch {
	case len(claim) > 5 && claim[:5] == "user:":
		return "basic-auth username " + quote(claim[5:])
	case len(claim) > 4 && claim[:4] == "san:":
		return "certificate SAN " + quote(claim[4:])
	case len(claim) > 8 && claim[:8] == "subject:":
		return "certificate subject " + quote(claim[8:])
	}
	return quote(claim)
}

func quote(s string) string { return `"` + s + `"` }
