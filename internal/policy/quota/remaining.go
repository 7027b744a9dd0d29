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
	Route string `json:"route"`
	Name  string `json:"name"`
	// Source is "route" for the route's quotas, "consumer" for the
	// consumer's own (consumers[].quotas), which replace the route's for
	// it.
	Source      string    `json:"source"`
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
	return remaining(ctx, st, route, "", quotas, sub, now)
}

// ConsumerRemaining is Remaining for a consumer's own quotas on route
// (consumers[].quotas, or a runtime consumer's): the counters its
// requests to the route count in, kept apart from the route's. The
// subject's consumer is consumer; sub gives the address and header value
// for by: ip and header:NAME quotas.
func ConsumerRemaining(ctx context.Context, st store.Store, route, consumer string, quotas []config.Quota, sub Subject, now time.Time) ([]Status, error) {
	sub.Consumer = consumer
	return remaining(ctx, st, route, consumer, quotas, sub, now)
}

func remaining(ctx context.Context, st store.Store, route, consumer string, quotas []config.Quota, sub Subject, now time.Time) ([]Status, error) {
	qs, err := compile(route, consumer, quotas)
	if err != nil {
		return nil, err
	}
	source := "route"
	if consumer != "" {
		source = "consumer"
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
			Route: route, Name: q.name, Source: source, By: by, Period: q.period.String(), TimeZone: q.loc.String(),
			Limit: q.limit, Used: used, Remaining: left, PeriodStart: start, ResetsAt: end,
		})
	}
	return out, nil
}
