package quota

import (
	"context"
	"net/http"
	"net/netip"
	"time"

	"github.com/portunus-gw/portunus/internal/config"
	"github.com/portunus-gw/portunus/internal/store"
)

// Subject names whose quota Remaining reads. Each quota uses what its `by`
// needs: Consumer for by: consumer (falling back to IP, as anonymous
// requests do), IP for by: ip, Header (the raw header value, hashed as on
// the request path) for by: header:NAME (falling back to IP). Quotas the
// subject says nothing about are left out.
type Subject struct {
	Consumer string
	IP       netip.Addr
	Header   string
}

// Status is one quota's state for one subject.
type Status struct {
	Route       string    `json:"route"`
	Name        string    `json:"name"`
	By          string    `json:"by"`
	Period      string    `json:"period"`
	TimeZone    string    `json:"time_zone"`
	Limit       int64     `json:"limit"`
	Used        int64     `json:"used"`
	Remaining   int64     `json:"remaining"`
	PeriodStart time.Time `json:"period_start"`
	ResetsAt    time.Time `json:"resets_at"`
}

// Remaining reads, without counting, the current period's counters of a
// route's quotas for sub. st nil reads the local counters. While the store
// is unreachable it returns the error rather than local counts, which are
// only a per-instance stopgap.
func Remaining(ctx context.Context, st store.Store, route string, quotas []config.Quota, sub Subject, now time.Time) ([]Status, error) {
	qs, err := compile(route, quotas)
	if err != nil {
		return nil, err
	}
	in := subject{consumer: sub.Consumer, ip: sub.IP}
	if sub.Header != "" {
		in.header = http.Header{}
	}
	out := []Status{}
	for i := range qs {
		q := &qs[i]
		if q.by == byHeader && sub.Header != "" {
			in.header[q.header] = []string{sub.Header}
		}
		start, end := q.period.bounds(now, q.loc)
		key, ok := q.key(start, in)
		if !ok {
			continue
		}
		var used int64
		if st != nil {
			if used, err = st.Incr(ctx, key, 0, end.Add(expirySlack)); err != nil {
				return nil, err
			}
		} else {
			used, _ = fallback.incr(key, 0, now, end)
		}
		left := q.limit - used
		if left < 0 {
			left = 0
		}
		by := quotas[i].By
		if by == "" {
			by = "ip"
		}
		out = append(out, Status{
			Route: route, Name: q.name, By: by, Period: q.period.String(), TimeZone: q.loc.String(),
			Limit: q.limit, Used: used, Remaining: left, PeriodStart: start, ResetsAt: end,
		})
	}
	return out, nil
}
