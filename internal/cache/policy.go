package cache

import (
	"context"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/portunus-gw/portunus/internal/pipeline"
	"github.com/portunus-gw/portunus/internal/router"
)

// Recorder counts cache outcomes per route; results are hit, miss,
// stale, bypass and revalidated. A nil Recorder records nothing.
type Recorder interface {
	Observe(result string)
}

// Options configure one route's cache policy.
type Options struct {
	// Route is the route name, the first part of every key.
	Route string
	// TTL is the freshness lifetime of answers without explicit freshness
	// (max-age, s-maxage, Expires). Required.
	TTL time.Duration
	// Vary lists request headers that are always part of the key.
	Vary []string
	// Query is keep (default), sort or ignore; IgnoreQuery parameters are
	// left out of the key.
	Query       string
	IgnoreQuery []string
	// PerConsumer puts the consumer in the key (routes with auth) unless
	// the answer is public or has s-maxage.
	PerConsumer bool
	// HonorClientNoCache lets a client's Cache-Control no-cache, max-age=0
	// or no-store skip the stored answer. Off: clients cannot force
	// upstream traffic.
	HonorClientNoCache bool
	// MaxObjectBytes bounds one stored body; larger answers stream to
	// the client unstored. 0 means 8 MiB.
	MaxObjectBytes int64
	// Wait bounds how long a request waits for a concurrent miss of the
	// same key before going upstream itself. 0 means 10s.
	Wait time.Duration
	// RefreshTimeout bounds a background refresh. 0 means 30s.
	RefreshTimeout time.Duration
	// Backend stores the entries. Required.
	Backend Backend
	// Metrics counts outcomes; nil records nothing.
	Metrics Recorder
	// Log reports store errors; nil discards them.
	Log *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// DefaultMaxObjectBytes is the per-object bound when Options.MaxObjectBytes is 0.
const DefaultMaxObjectBytes = 8 << 20

// Policy is one route's compiled cache policy.
type Policy struct {
	route       string
	ttl         time.Duration
	vary        []string
	query       string
	ignoreQuery map[string]bool
	perConsumer bool
	honorClient bool
	maxObject   int64
	wait        time.Duration
	refreshTO   time.Duration
	backend     Backend
	mem         *Memory // backend, when it is the in-process one
	metrics     Recorder
	log         *slog.Logger
	now         func() time.Time

	// flights holds the upstream requests running per key: misses being
	// fetched, stale entries being revalidated or refetched, background
	// refreshes. Concurrent requests of the key wait for them.
	flights sync.Map // key string -> *flight
	wg      sync.WaitGroup
	// onWait, when set (tests), is called as a request starts waiting
	// for a concurrent request of the same key.
	onWait func()
}

// flight is one upstream request other requests of its key may wait for.
// done closes when it ends; the other fields are then its outcome.
type flight struct {
	done chan struct{}
	// consumer is the consumer of the request that leads it.
	consumer string
	// entry is the answer it stored or refreshed (nil: none).
	entry *Entry
	// varyVals are the leading request's values of the headers entry's
	// Vary names (see appendHeaderValues).
	varyVals string
	// failed is the upstream's status when it failed and the stale entry
	// may answer instead (stale-if-error); 0 otherwise.
	failed int
}

// outcome is what a flight's upstream request came to: the entry stored
// or refreshed, the request header it was keyed by, and failed as in
// flight.
type outcome struct {
	entry  *Entry
	keyed  http.Header
	failed int
}

// New compiles a cache policy.
func New(o Options) *Policy {
	p := &Policy{
		route: o.Route, ttl: o.TTL, query: o.Query,
		perConsumer: o.PerConsumer, honorClient: o.HonorClientNoCache,
		maxObject: o.MaxObjectBytes, wait: o.Wait, refreshTO: o.RefreshTimeout,
		backend: o.Backend, metrics: o.Metrics, log: o.Log, now: o.Now,
	}
	p.mem, _ = o.Backend.(*Memory)
	for _, v := range o.Vary {
		p.vary = append(p.vary, http.CanonicalHeaderKey(v))
	}
	if len(o.IgnoreQuery) > 0 {
		p.ignoreQuery = make(map[string]bool, len(o.IgnoreQuery))
		for _, q := range o.IgnoreQuery {
			p.ignoreQuery[q] = true
		}
	}
	if p.query == "" {
		p.query = "keep"
	}
	if p.maxObject <= 0 {
		p.maxObject = DefaultMaxObjectBytes
	}
	if p.wait <= 0 {
		p.wait = 10 * time.Second
	}
	if p.refreshTO <= 0 {
		p.refreshTO = 30 * time.Second
	}
	if p.now == nil {
		p.now = time.Now
	}
	if p.log == nil {
		p.log = slog.New(slog.DiscardHandler)
	}
	return p
}

// Wait blocks until background refreshes have ended (each is bounded by
// RefreshTimeout).
func (p *Policy) Wait() { p.wg.Wait() }

func (p *Policy) observe(result string, s *pipeline.State) {
	s.CacheStatus = result
	if p.metrics != nil {
		p.metrics.Observe(result)
	}
}

// Middleware is the policy in the route chain.
func (p *Policy) Middleware() pipeline.Middleware {
	return func(next pipeline.Handler) pipeline.Handler {
		return func(w http.ResponseWriter, r *http.Request, s *pipeline.State) {
			p.serve(w, r, s, next)
		}
	}
}

func (p *Policy) path(r *http.Request, s *pipeline.State) string {
	if s.Path != "" {
		return s.Path
	}
	return r.URL.EscapedPath()
}

func (p *Policy) serve(w http.ResponseWriter, r *http.Request, s *pipeline.State, next pipeline.Handler) {
	switch r.Method {
	case http.MethodGet, http.MethodHead:
	case http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete:
		p.unsafe(w, r, s, next)
		return
	default:
		next(w, r, s)
		return
	}
	// A credential the gateway does not know about may select what the
	// upstream answers: such requests neither read nor fill the cache.
	if !p.perConsumer && len(r.Header["Authorization"]) > 0 {
		setStatus(w.Header(), statusBypassAuth)
		p.observe("bypass", s)
		next(w, r, s)
		return
	}
	p.dropUnkeyed(r.Header)
	clientNoCache, clientNoStore := false, false
	if p.honorClient {
		cc := parseCacheControl(r.Header["Cache-Control"])
		clientNoCache = cc.noCache || cc.maxAge == 0 || (len(r.Header["Cache-Control"]) == 0 && strings.Contains(r.Header.Get("Pragma"), "no-cache"))
		clientNoStore = cc.noStore
	}
	if clientNoStore {
		setStatus(w.Header(), statusNoStore)
		p.observe("bypass", s)
		next(w, r, s)
		return
	}
	path := p.path(r, s)
	kb := keyBufs.Get().(*keyBuf)
	e, ref, marker := p.lookup(r, path, s.Consumer, kb)
	if cap(kb.b) <= maxPooledKey {
		keyBufs.Put(kb)
	}
	now := p.now()
	if e != nil {
		age := e.Age(now)
		switch {
		case clientNoCache:
			p.revalidate(w, r, s, next, e, p.keyOf(r, path, s.Consumer, ref), fwdRequest)
			return
		case age < e.Lifetime:
			ageV, st := e.hitFields(age, false)
			p.writeEntry(w, r, e, ageV, st)
			p.observe("hit", s)
			return
		case !e.MustRevalidate && age-e.Lifetime < e.SWR:
			ageV, st := e.hitFields(age, true)
			p.writeEntry(w, r, e, ageV, st)
			p.observe("stale", s)
			p.refreshInBackground(r, s, next, e, p.keyOf(r, path, s.Consumer, ref))
			return
		}
		p.revalidateOnce(w, r, s, next, e, p.keyOf(r, path, s.Consumer, ref))
		return
	}
	fwd := fwdURIMiss
	if marker != nil {
		fwd = fwdVaryMiss
	}
	if clientNoCache {
		fwd = fwdRequest
	}
	if r.Method == http.MethodHead {
		// HEAD is answered from GET entries but never fills them: its
		// answer has no body to store.
		setStatus(w.Header(), fwd.plain)
		p.observe("miss", s)
		next(w, r, s)
		return
	}
	p.observe("miss", s)
	_, own := p.baseKeys(r, path, s.Consumer)
	var names []string
	if marker != nil {
		// The names the answers vary by are known: wait only for a
		// request of the same variant.
		names = marker.Vary
	}
	p.coalesce(w, r, s, next, own, names, fwd)
}

// keyRef says which key a lookup found its entry under: the consumer's
// own base key or the shared one, and the variant of a Vary marker.
type keyRef struct {
	own, variant bool
	names        []string // the marker's Vary names, when variant
}

// keyOf is the Key that ref designates for r.
func (p *Policy) keyOf(r *http.Request, path, consumer string, ref keyRef) Key {
	shared, own := p.baseKeys(r, path, consumer)
	k := shared
	if ref.own {
		k = own
	}
	if ref.variant {
		k = variant(k, r, ref.names)
	}
	return k
}

// lookup finds the stored answer for r: first under the shared key, then
// (routes with auth) under the consumer's. marker is a Vary marker found
// without a matching variant. Keys are built in kb, not as strings: a hit
// on the memory backend allocates nothing here.
func (p *Policy) lookup(r *http.Request, path, consumer string, kb *keyBuf) (e *Entry, ref keyRef, marker *Entry) {
	ctx := r.Context()
	k := Key{
		Route: p.route,
		Host:  router.NormalizeHost(r.Host),
		Path:  path,
		Query: p.queryKey(r.URL.RawQuery),
	}
	b := appendKeyPrefix(kb.b[:0], &k)
	defer func() { kb.b = b }()
	start := len(b)
	n := 1
	if p.perConsumer {
		n = 2 // shared, then own
	}
	for i := range n {
		own := i == 1
		b = p.appendExtra(b[:start], r.Header, consumer, own)
		got, err := p.get(ctx, b)
		if err != nil {
			p.log.Warn("cache lookup failed", "route", p.route, "error", err)
			return nil, keyRef{}, nil
		}
		if got == nil {
			continue
		}
		if !got.isMarker() {
			return got, keyRef{own: own}, nil
		}
		b = appendVariant(b, r.Header, got.Vary)
		v, err := p.get(ctx, b)
		if err != nil {
			p.log.Warn("cache lookup failed", "route", p.route, "error", err)
			return nil, keyRef{}, nil
		}
		if v != nil {
			return v, keyRef{own: own, variant: true, names: got.Vary}, nil
		}
		marker = got
	}
	return nil, keyRef{}, marker
}

// get reads the entry at key; the memory backend is read without
// converting key to a string.
func (p *Policy) get(ctx context.Context, key []byte) (*Entry, error) {
	if p.mem != nil {
		return p.mem.getBytes(key), nil
	}
	return p.backend.Get(ctx, string(key))
}

// join returns the running flight of key, or registers f (led by
// consumer's request) and returns it with leader set.
func (p *Policy) join(key, consumer string) (f *flight, leader bool) {
	f = &flight{done: make(chan struct{}), consumer: consumer}
	if v, loaded := p.flights.LoadOrStore(key, f); loaded {
		return v.(*flight), false
	}
	return f, true
}

// land publishes f's outcome, ends it and releases its waiters.
func (p *Policy) land(key string, f *flight, out outcome) {
	f.entry, f.failed = out.entry, out.failed
	if out.entry != nil {
		if names := varyNames(out.entry.Header); len(names) > 0 && out.keyed != nil {
			f.varyVals = string(appendHeaderValues(nil, out.keyed, names))
		}
	}
	p.flights.CompareAndDelete(key, f)
	close(f.done)
}

// lead runs the upstream request of flight f, the one of key, and lands
// it, also when the request panics.
func (p *Policy) lead(key string, f *flight, run func() outcome) {
	var out outcome
	defer func() { p.land(key, f, out) }()
	out = run()
}

// await waits for the flight f until it ends (true) or until deadline
// passes or r's client goes away (false).
func (p *Policy) await(r *http.Request, f *flight, deadline time.Time) bool {
	if p.onWait != nil {
		p.onWait()
	}
	t := time.NewTimer(time.Until(deadline))
	defer t.Stop()
	select {
	case <-f.done:
		return true
	case <-t.C:
	case <-r.Context().Done():
	}
	return false
}

// coalesce makes concurrent misses of one key share one upstream
// request: the first leads, the others wait for it (bounded by the
// route's wait) and are served its stored answer when it fits them. The
// key is base, or its variant for names when the answers are known to
// vary by them. A stored answer that varies by headers the waiter does
// not share makes the waiter wait once more, with the others of its
// variant.
func (p *Policy) coalesce(w http.ResponseWriter, r *http.Request, s *pipeline.State, next pipeline.Handler, base Key, names []string, fwd *fwdStatus) {
	deadline := time.Now().Add(p.wait)
	ks := base.String()
	if len(names) > 0 {
		ks = variant(base, r, names).String()
	}
	for round := 0; ; round++ {
		f, leader := p.join(ks, s.Consumer)
		if leader {
			p.lead(ks, f, func() outcome {
				return outcome{entry: p.fetch(w, r, s, next, fwd), keyed: r.Header}
			})
			return
		}
		since := p.now()
		if !p.await(r, f, deadline) {
			if r.Context().Err() != nil {
				return
			}
			break
		}
		e := f.entry
		if e == nil {
			break
		}
		if p.usableFor(e, f, r, s.Consumer, since) {
			p.writeEntry(w, r, e, ageField(e.Age(p.now())), statusCoalesced)
			return
		}
		names = varyNames(e.Header)
		if round > 0 || len(names) == 0 {
			break
		}
		ks = variant(base, r, names).String()
	}
	// Nothing shareable came of it: fetch (and maybe store) alone.
	p.fetch(w, r, s, next, fwd)
}

// usableFor says e, the answer a flight led by another request stored,
// may serve r, a request of consumer that started waiting for it at
// since: fresh, or received after since (a no-cache answer validated
// while r waited); shared or the same consumer's; and the same values of
// the headers it varies by.
func (p *Policy) usableFor(e *Entry, f *flight, r *http.Request, consumer string, since time.Time) bool {
	if e.Age(p.now()) >= e.Lifetime && e.ResponseTime.Before(since) {
		return false
	}
	if p.perConsumer && !e.Shared && consumer != f.consumer {
		return false
	}
	if names := varyNames(e.Header); len(names) > 0 && string(appendHeaderValues(nil, r.Header, names)) != f.varyVals {
		return false
	}
	return true
}

// fetch forwards r and stores the answer when allowed; it returns the
// stored entry (nil when nothing was stored).
func (p *Policy) fetch(w http.ResponseWriter, r *http.Request, s *pipeline.State, next pipeline.Handler, fwd *fwdStatus) *Entry {
	rec := p.newRecorder(w, r, s, fwd)
	next(rec, r, s)
	return rec.finish()
}

// revalidateOnce revalidates (or, without validators, refetches) the
// stale entry e at key once for the concurrent requests that find it: the
// first leads, through the same flights as misses; the others wait for it
// (bounded by the route's wait) and are served the refreshed or new
// answer, or e itself when the upstream failed within stale-if-error. A
// waiter the outcome does not fit revalidates alone.
func (p *Policy) revalidateOnce(w http.ResponseWriter, r *http.Request, s *pipeline.State, next pipeline.Handler, e *Entry, key Key) {
	ks := key.String()
	f, leader := p.join(ks, s.Consumer)
	if leader {
		p.lead(ks, f, func() outcome { return p.revalidate(w, r, s, next, e, key, fwdStale) })
		return
	}
	since := p.now()
	if !p.await(r, f, time.Now().Add(p.wait)) {
		if r.Context().Err() != nil {
			return
		}
	} else {
		if ne := f.entry; ne != nil && p.usableFor(ne, f, r, s.Consumer, since) {
			p.writeEntry(w, r, ne, ageField(ne.Age(p.now())), statusCoalesced)
			p.observe("hit", s)
			return
		}
		if f.failed != 0 && staleOnError(e, p.now()) {
			p.writeStaleIfError(w, r, e, f.failed)
			p.observe("stale", s)
			return
		}
	}
	p.revalidate(w, r, s, next, e, key, fwdStale)
}

// staleOnError says e may answer for a failed upstream at now.
func staleOnError(e *Entry, now time.Time) bool {
	return !e.MustRevalidate && e.Age(now)-e.Lifetime < e.SIE
}

// writeStaleIfError answers with the stale entry e instead of the
// upstream's error status.
func (p *Policy) writeStaleIfError(w http.ResponseWriter, r *http.Request, e *Entry, status int) {
	age := e.Age(p.now())
	p.writeEntry(w, r, e, ageField(age), []string{"portunus; hit; ttl=" + strconv.FormatInt(int64((e.Lifetime-age)/time.Second), 10) + "; fwd-status=" + strconv.Itoa(status) + "; detail=stale-if-error"})
}

// revalidate asks the upstream whether the stale entry e is still good
// (with its validators) and answers from it on 304, or with it on an
// error within stale-if-error. It returns what came of it.
func (p *Policy) revalidate(w http.ResponseWriter, r *http.Request, s *pipeline.State, next pipeline.Handler, e *Entry, key Key, fwd *fwdStatus) outcome {
	allowStaleOnError := staleOnError(e, p.now())
	r2 := r
	validated := hasValidator(e.Header)
	if validated {
		r2 = conditional(r, r.Context(), e)
	}
	rec := p.newRecorder(w, r2, s, fwd)
	rec.intercept304 = validated
	rec.interceptErr = allowStaleOnError
	next(rec, r2, s)
	switch {
	case rec.intercepted && rec.status == http.StatusNotModified:
		ne, ok := e.refresh(rec.header304, rec.reqTime, p.now(), p.ttl)
		p.replace(r.Context(), r, s, key, ne, ok)
		// The answer carries the merged fields, stored or not: a 304
		// that says private must not go out as the stored public answer.
		p.writeEntry(w, r, ne, ageField(ne.Age(p.now())), fwd.revalidated)
		p.observe("revalidated", s)
		if !ok {
			ne = nil
		}
		// key was built from r's header; r2, a clone, went upstream.
		return outcome{entry: ne, keyed: r.Header}
	case rec.intercepted:
		p.writeStaleIfError(w, r, e, rec.status)
		p.observe("stale", s)
		return outcome{failed: rec.status}
	default:
		p.observe("miss", s)
		ne := rec.finish()
		p.superseded(r.Context(), key, rec)
		return outcome{entry: ne, keyed: r2.Header}
	}
}

// replace stores ne, the entry a 304 refreshed from the one at key (r the
// request that revalidated it), where the store path stores a fresh
// answer with the same fields, or nowhere when storable is false; and it
// drops the entry at key unless ne took its place. So an entry whose 304
// takes back public or s-maxage moves to the consumer's own key (or, if
// private or no-store, is gone) and is never left under the shared key,
// and one a 304 makes public becomes shared.
func (p *Policy) replace(ctx context.Context, r *http.Request, s *pipeline.State, key Key, ne *Entry, storable bool) {
	// Dropping the old entry must not depend on the client staying.
	ctx = context.WithoutCancel(ctx)
	var at stored
	if storable {
		at = p.storeAnswer(ctx, r, s, ne)
	}
	p.dropUnless(ctx, key, at)
}

// superseded drops the stale entry at key once the upstream answered its
// revalidation or refetch in full (rec): the new answer replaces it,
// stored where its own fields say (finish) or not at all (private,
// no-store, too large). A 5xx leaves it: an outage is no new answer, and
// the entry may still be revalidated or cover a later error.
func (p *Policy) superseded(ctx context.Context, key Key, rec *recorder) {
	if rec.status == 0 || rec.status >= 500 {
		return
	}
	p.dropUnless(context.WithoutCancel(ctx), key, rec.stored)
}

// dropUnless deletes the entry at key unless at is where it was just
// stored again.
func (p *Policy) dropUnless(ctx context.Context, key Key, at stored) {
	k := key.String()
	if at.has(k) {
		return
	}
	if err := p.backend.Delete(ctx, k); err != nil {
		p.log.Warn("cache delete failed", "route", p.route, "error", err)
	}
}

// conditional is r made conditional on e's validators; the client's own
// preconditions are answered by the cache, not forwarded.
func conditional(r *http.Request, ctx context.Context, e *Entry) *http.Request {
	r2 := r.Clone(ctx)
	for _, h := range []string{"If-None-Match", "If-Modified-Since", "If-Match", "If-Unmodified-Since", "If-Range"} {
		delete(r2.Header, h)
	}
	if et := e.Header["Etag"]; len(et) > 0 {
		r2.Header["If-None-Match"] = []string{et[0]}
	}
	if lm := e.Header["Last-Modified"]; len(lm) > 0 {
		r2.Header["If-Modified-Since"] = []string{lm[0]}
	}
	return r2
}

// refreshInBackground revalidates or refetches e while stale answers are
// served. It is the key's flight: none starts while a miss, revalidation
// or refresh of the key runs, and requests that find e past its window
// wait for it.
func (p *Policy) refreshInBackground(r *http.Request, s *pipeline.State, next pipeline.Handler, e *Entry, key Key) {
	ks := key.String()
	f, leader := p.join(ks, s.Consumer)
	if !leader {
		return
	}
	// The request and its pooled State end with this handler: the
	// refresh works on copies.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), p.refreshTO)
	r2 := conditional(r, ctx, e)
	r2.Method = http.MethodGet
	r2.Body = http.NoBody
	st := *s
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		defer cancel()
		p.lead(ks, f, func() outcome {
			rec := p.newRecorder(&discardWriter{h: http.Header{}}, r2, &st, nil)
			rec.intercept304 = hasValidator(e.Header)
			rec.interceptErr = true // a failed refresh keeps the stale entry
			next(rec, r2, &st)
			switch {
			case rec.intercepted && rec.status == http.StatusNotModified:
				ne, ok := e.refresh(rec.header304, rec.reqTime, p.now(), p.ttl)
				p.replace(ctx, r2, &st, key, ne, ok)
				if !ok {
					ne = nil
				}
				return outcome{entry: ne, keyed: r2.Header}
			case rec.intercepted:
				return outcome{failed: rec.status}
			}
			ne := rec.finish()
			p.superseded(ctx, key, rec)
			return outcome{entry: ne, keyed: r2.Header}
		})
	}()
}

// store writes e at key. It is the only writer of entries; storeAnswer
// decides the key.
func (p *Policy) store(ctx context.Context, key Key, e *Entry) {
	if err := p.backend.Set(ctx, key.String(), key.URLKey(), e, e.keepFor()); err != nil {
		p.log.Warn("cache store failed", "route", p.route, "error", err)
	}
}

// unsafe forwards a POST, PUT, PATCH or DELETE and, when it succeeds,
// drops the cached answers of its URL and of the Location and
// Content-Location it names on the same host (RFC 9111 §4.4).
func (p *Policy) unsafe(w http.ResponseWriter, r *http.Request, s *pipeline.State, next pipeline.Handler) {
	sw := &statusWriter{ResponseWriter: w}
	next(sw, r, s)
	if sw.status == 0 || sw.status >= 400 {
		return
	}
	ctx := context.WithoutCancel(r.Context())
	host := router.NormalizeHost(r.Host)
	p.invalidate(ctx, Key{Host: host, Path: p.path(r, s)})
	for _, name := range []string{"Location", "Content-Location"} {
		if v := sw.Header().Get(name); v != "" {
			if u, err := r.URL.Parse(v); err == nil && (u.Host == "" || router.NormalizeHost(u.Host) == host) {
				p.invalidate(ctx, Key{Host: host, Path: u.EscapedPath()})
			}
		}
	}
}

func (p *Policy) invalidate(ctx context.Context, k Key) {
	if err := p.backend.InvalidateURL(ctx, k.URLKey()); err != nil {
		p.log.Warn("cache invalidation failed", "route", p.route, "error", err)
	}
}

// setStatus adds this cache's Cache-Status member v (a shared field
// value) after any an upstream cache added: RFC 9211 §2 lists caches from
// the origin towards the client.
func setStatus(h http.Header, v []string) {
	if prev := h["Cache-Status"]; len(prev) > 0 {
		h["Cache-Status"] = []string{strings.Join(prev, ", ") + ", " + v[0]}
		return
	}
	h["Cache-Status"] = v
}

// Route is the route this policy caches for.
func (p *Policy) Route() string { return p.route }

// Backend is where this policy keeps its entries.
func (p *Policy) Backend() Backend { return p.backend }

// QueryForms are the stored forms a request query may have under this
// policy, for purging one URL.
func (p *Policy) QueryForms(raw string) []string {
	return []string{p.queryKey(raw)}
}

// unkeyedOverrides are request headers some frameworks read to rewrite
// the URL or host they answer for. They are not in the key, so one
// client's value could shape the answer stored for everyone (cache
// poisoning); on a cached route they are removed before the upstream sees
// them, unless the route lists them in `vary` (then they are keyed).
// X-Forwarded-* from untrusted peers are already removed by the gateway.
var unkeyedOverrides = []string{
	"X-Original-Url", "X-Rewrite-Url", "X-Original-Host", "X-Host",
	"X-Forwarded-Server", "X-Forwarded-Scheme", "X-Http-Host-Override",
}

func (p *Policy) dropUnkeyed(h http.Header) {
	for _, k := range unkeyedOverrides {
		if _, ok := h[k]; ok && !slices.Contains(p.vary, k) {
			delete(h, k)
		}
	}
}
