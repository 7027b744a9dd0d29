package gateway

// GET /api/v1/quotas: the remaining calendar quota of a consumer, client
// address or by-value (docs/quotas.md), read from the shared store without
// counting.

import (
	"net/http"
	"net/netip"
	"time"

	"github.com/portunus-gw/portunus/internal/admin"
	"github.com/portunus-gw/portunus/internal/policy/quota"
	"github.com/portunus-gw/portunus/internal/problem"
)

// QuotasAnswer is the body of GET /api/v1/quotas.
type QuotasAnswer struct {
	Quotas []quota.Status `json:"quotas"`
}

// registerQuotaAPI mounts GET /api/v1/quotas on s.
func registerQuotaAPI(s *admin.Server, rt *Runtime) {
	s.Handle("GET /api/v1/quotas", http.HandlerFunc(rt.serveQuotas))
}

// serveQuotas answers for one route (route=NAME) or for every route with
// quotas. The subject is consumer=NAME, ip=ADDR and/or key=VALUE (the
// value a quota is counted by: a consumer name, an address or a header
// value); each quota reads what its `by` needs and quotas the subject says
// nothing about are left out. A consumer with its own quotas
// (consumers[].quotas, or a runtime consumer's) is answered with those, on
// the routes that have quotas (where they replace the route's), from
// their own counters: source "consumer".
func (rt *Runtime) serveQuotas(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	sub := quota.Subject{Consumer: q.Get("consumer")}
	if v := q.Get("ip"); v != "" {
		ip, err := netip.ParseAddr(v)
		if err != nil {
			problem.Write(w, r, problem.Problem{Code: problem.BadRequest, Detail: "ip is not an IP address"})
			return
		}
		sub.IP = ip
	}
	if key := q.Get("key"); key != "" {
		sub.Header = key
		if sub.Consumer == "" {
			sub.Consumer = key
		}
		if ip, err := netip.ParseAddr(key); err == nil && !sub.IP.IsValid() {
			sub.IP = ip
		}
	}
	if sub.Consumer == "" && !sub.IP.IsValid() && sub.Header == "" {
		problem.Write(w, r, problem.Problem{Code: problem.BadRequest, Detail: "give consumer, ip or key"})
		return
	}
	snap := rt.snapshotOr503(w, r)
	if snap == nil {
		return
	}
	route := q.Get("route")
	found := route == ""
	st := rt.Store()
	now := time.Now()
	own := consumerQuotas(snap, sub.Consumer)
	out := QuotasAnswer{Quotas: []quota.Status{}}
	for i := range snap.Config.Routes {
		rc := &snap.Config.Routes[i]
		if route != "" && rc.Name != route {
			continue
		}
		found = true
		if len(rc.Quotas) == 0 {
			continue
		}
		var got []quota.Status
		var err error
		if len(own) > 0 {
			got, err = quota.ConsumerRemaining(r.Context(), st, rc.Name, sub.Consumer, own, sub, now)
		} else {
			got, err = quota.Remaining(r.Context(), st, rc.Name, rc.Quotas, sub, now)
		}
		if err != nil {
			storeUnavailable(w, r, "quota")
			return
		}
		out.Quotas = append(out.Quotas, got...)
	}
	if !found {
		noRouteNamed(w, r, route)
		return
	}
	admin.WriteJSON(w, http.StatusOK, out)
}

// storeUnavailable answers 503 with Retry-After when the store behind an
// admin reading (quotas, rate-limit usage) cannot be reached.
func storeUnavailable(w http.ResponseWriter, r *http.Request, what string) {
	w.Header().Set("Retry-After", "1")
	problem.Write(w, r, problem.Problem{Code: problem.UpstreamUnavailable, Status: http.StatusServiceUnavailable, Detail: what + " store unavailable"})
}

// noRouteNamed answers 404 for a route= the config does not have.
func noRouteNamed(w http.ResponseWriter, r *http.Request, route string) {
	problem.Write(w, r, problem.Problem{Code: problem.NotFound, Detail: "no route named " + route})
}
