package gateway

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/portunus-gw/portunus/internal/admin"
	"github.com/portunus-gw/portunus/internal/cache"
	"github.com/portunus-gw/portunus/internal/problem"
	"github.com/portunus-gw/portunus/internal/router"
)

// PurgeAnswer is the body of a successful POST /api/v1/cache/purge.
type PurgeAnswer struct {
	// Purged is how many stored entries were dropped (Vary markers and
	// each variant count as one each).
	Purged int `json:"purged"`
}

// purgeCache drops what a validated purge body selects from every
// route's cache: one URL (all its variants and consumers), a path prefix
// on every host, one route, or everything. With store.backend redis the
// entries are shared, so every instance sees the purge.
func (rt *Runtime) purgeCache(w http.ResponseWriter, r *http.Request, b purgeBody) {
	snap := rt.snapshotOr503(w, r)
	if snap == nil {
		return
	}
	var policies []*cache.Policy
	for _, route := range snap.routes {
		if route.cache != nil {
			policies = append(policies, route.cache)
		}
	}
	if len(policies) == 0 {
		problem.Write(w, r, problem.Problem{Code: problem.NotFound, Detail: "no route has a cache"})
		return
	}
	type job struct {
		backend cache.Backend
		sel     cache.Selector
	}
	var jobs []job
	// once adds sel for every distinct backend (routes share one).
	once := func(sel cache.Selector) {
		seen := map[cache.Backend]bool{}
		for _, p := range policies {
			if !seen[p.Backend()] {
				seen[p.Backend()] = true
				jobs = append(jobs, job{p.Backend(), sel})
			}
		}
	}
	switch {
	case b.All != nil:
		once(cache.Selector{All: true})
	case b.PathPrefix != nil:
		p, _, err := router.Normalize(*b.PathPrefix)
		if err != nil {
			badRequest(w, r, "path_prefix: "+err.Error())
			return
		}
		// Normalizing drops a trailing slash's meaning only for "/"; keep
		// what the caller wrote when it ends in one.
		if strings.HasSuffix(*b.PathPrefix, "/") && !strings.HasSuffix(p, "/") {
			p += "/"
		}
		once(cache.Selector{PathPrefix: p})
	case b.Route != nil:
		for _, p := range policies {
			if p.Route() == *b.Route {
				jobs = append(jobs, job{p.Backend(), cache.Selector{Route: p.Route()}})
			}
		}
		if len(jobs) == 0 {
			problem.Write(w, r, problem.Problem{Code: problem.NotFound, Detail: fmt.Sprintf("no route named %q has a cache", *b.Route)})
			return
		}
	case b.Key != nil:
		host, path, query, err := parsePurgeKey(*b.Key)
		if err != nil {
			badRequest(w, r, "key: "+err.Error())
			return
		}
		for _, p := range policies {
			jobs = append(jobs, job{p.Backend(), cache.Selector{Route: p.Route(), Host: host, Path: path, Queries: p.QueryForms(query)}})
		}
	}
	total := 0
	for _, j := range jobs {
		n, err := j.backend.Purge(r.Context(), j.sel)
		total += n
		if err != nil {
			problem.Write(w, r, problem.Problem{Code: problem.UpstreamUnavailable, Status: http.StatusServiceUnavailable, Detail: "the cache store failed: " + err.Error()})
			return
		}
	}
	admin.WriteJSON(w, http.StatusOK, PurgeAnswer{Purged: total})
}

// parsePurgeKey reads "[GET|HEAD ]http(s)://host/path?query": the cache
// stores GET answers (HEAD is served from them), so other methods have
// nothing to purge.
func parsePurgeKey(key string) (host, path, query string, err error) {
	raw := strings.TrimSpace(key)
	if m, rest, ok := strings.Cut(raw, " "); ok {
		switch strings.ToUpper(m) {
		case http.MethodGet, http.MethodHead:
		default:
			return "", "", "", fmt.Errorf("method %q is never cached; want GET or HEAD", m)
		}
		raw = strings.TrimSpace(rest)
	}
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return "", "", "", fmt.Errorf("want [GET ]http(s)://host/path, got %q", key)
	}
	p := u.EscapedPath()
	if p == "" {
		p = "/"
	}
	path, _, err = router.Normalize(p)
	if err != nil {
		return "", "", "", err
	}
	return router.NormalizeHost(u.Host), path, u.RawQuery, nil
}
