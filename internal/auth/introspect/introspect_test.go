package introspect

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/portunus-gw/portunus/internal/auth"
	"github.com/portunus-gw/portunus/internal/config"
	"github.com/portunus-gw/portunus/internal/pipeline"
)

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// idp is a real introspection endpoint: it checks the client's
// authentication and answers from its token table, counting calls.
type idp struct {
	srv      *httptest.Server
	calls    atomic.Int64
	mu       sync.Mutex
	tokens   map[string]map[string]any
	status   int           // non-zero: answer this status
	raw      string        // non-empty: answer this body
	gate     chan struct{} // non-nil: wait for it before answering
	badCreds atomic.Int64  // calls with wrong client authentication
}

const (
	clientID     = "portunus gw" // a space, to check form-urlencoding
	clientSecret = "s3cr:t/+"
)

func newIDP(t *testing.T) *idp {
	t.Helper()
	i := &idp{tokens: map[string]map[string]any{}}
	i.srv = httptest.NewServer(http.HandlerFunc(i.serve))
	t.Cleanup(i.srv.Close)
	return i
}

func (i *idp) serve(w http.ResponseWriter, r *http.Request) {
	i.calls.Add(1)
	i.mu.Lock()
	gate, status, raw := i.gate, i.status, i.raw
	i.mu.Unlock()
	if gate != nil {
		<-gate
	}
	u, p, ok := r.BasicAuth()
	wantU, wantP := url.QueryEscape(clientID), url.QueryEscape(clientSecret)
	if !ok || u != wantU || p != wantP || r.Method != http.MethodPost ||
		r.Header.Get("Content-Type") != "application/x-www-form-urlencoded" {
		i.badCreds.Add(1)
		http.Error(w, `{"error":"invalid_client"}`, http.StatusUnauthorized)
		return
	}
	if err := r.ParseForm(); err != nil || r.PostForm.Get("token_type_hint") != "access_token" {
		http.Error(w, "bad form", http.StatusBadRequest)
		return
	}
	if status != 0 {
		w.WriteHeader(status)
		return
	}
	if raw != "" {
		_, _ = w.Write([]byte(raw))
		return
	}
	i.mu.Lock()
	claims, ok := i.tokens[r.PostForm.Get("token")]
	i.mu.Unlock()
	if !ok {
		claims = map[string]any{"active": false}
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(claims)
}

func (i *idp) set(token string, claims map[string]any) {
	i.mu.Lock()
	i.tokens[token] = claims
	i.mu.Unlock()
}

func newProvider(t *testing.T, endpoint string, c *clock) *Provider {
	t.Helper()
	p, err := New(config.OAuth2Provider{
		Name: "idp", IntrospectionURL: endpoint, ClientID: clientID, ClientSecret: clientSecret,
		CacheTTL: config.Duration(30 * time.Second),
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c != nil {
		p.now = c.now
	}
	t.Cleanup(func() { _ = p.Close() })
	return p
}

func bearer(tok string) *http.Request {
	r := httptest.NewRequest(http.MethodGet, "http://gw.test/api", nil)
	r.Header.Set("Authorization", "Bearer "+tok)
	return r
}

func TestAuthenticateMapsClaims(t *testing.T) {
	t.Parallel()
	i := newIDP(t)
	i.set("tok-a", map[string]any{"active": true, "sub": "alice", "scope": "read write",
		"exp": float64(time.Now().Add(time.Hour).Unix())})
	i.set("tok-b", map[string]any{"active": true, "sub": "bob", "scope": []any{"admin", "read"}})
	p := newProvider(t, i.srv.URL, nil)
	if got, want := p.Name(), "oauth2:idp"; got != want {
		t.Errorf("Name: got %q; want %q", got, want)
	}
	if got, want := p.Challenge(), `Bearer realm="portunus"`; got != want {
		t.Errorf("Challenge: got %q; want %q", got, want)
	}
	tests := []struct {
		name, token, consumer, roles string
	}{
		{"space-separated scope", "tok-a", "alice", "read,write"},
		{"array scope", "tok-b", "bob", "admin,read"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			id, err := p.Authenticate(bearer(tc.token), &pipeline.State{})
			if err != nil {
				t.Fatalf("Authenticate: %v", err)
			}
			if id.Consumer != tc.consumer {
				t.Errorf("consumer: got %q; want %q", id.Consumer, tc.consumer)
			}
			if got := strings.Join(id.Roles, ","); got != tc.roles {
				t.Errorf("roles: got %q; want %q", got, tc.roles)
			}
			if got := strings.Join(id.Scopes, ","); got != tc.roles {
				t.Errorf("scopes: got %q; want %q", got, tc.roles)
			}
		})
	}
	if got := i.badCreds.Load(); got != 0 {
		t.Errorf("calls with wrong client authentication: got %d; want 0", got)
	}
}

func TestCredentialExtraction(t *testing.T) {
	t.Parallel()
	i := newIDP(t)
	p := newProvider(t, i.srv.URL, nil)
	tests := []struct {
		name    string
		headers []string
		want    error // nil: some other (invalid-credential) error
	}{
		{"no header", nil, auth.ErrNoCredentials},
		{"basic scheme", []string{"Basic YTpi"}, auth.ErrNoCredentials},
		{"scheme prefix only", []string{"Bearerxyz"}, auth.ErrNoCredentials},
		{"empty token", []string{"Bearer "}, errMalformed},
		{"bad characters", []string{"Bearer a b"}, errMalformed},
		{"newline", []string{"Bearer a\nb"}, errMalformed},
		{"padding in middle", []string{"Bearer ab=c"}, errMalformed},
		{"oversized", []string{"Bearer " + strings.Repeat("a", maxToken+1)}, errTooLong},
		{"two headers", []string{"Bearer a", "Bearer b"}, errAmbiguous},
		{"unknown token", []string{"bearer unknown"}, errInactive},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := httptest.NewRequest(http.MethodGet, "/", nil)
			for _, h := range tc.headers {
				r.Header.Add("Authorization", h)
			}
			id, err := p.Authenticate(r, &pipeline.State{})
			if !errors.Is(err, tc.want) {
				t.Errorf("got (%v, %v); want error %v", id, err, tc.want)
			}
		})
	}
}

func TestCacheOneCallPerToken(t *testing.T) {
	t.Parallel()
	i := newIDP(t)
	i.set("tok", map[string]any{"active": true, "sub": "alice"})
	p := newProvider(t, i.srv.URL, &clock{t: time.Now()})
	for n := 0; n < 50; n++ {
		if _, err := p.Authenticate(bearer("tok"), &pipeline.State{}); err != nil {
			t.Fatalf("request %d: %v", n, err)
		}
	}
	if got := i.calls.Load(); got != 1 {
		t.Errorf("introspection calls for 50 requests: got %d; want 1", got)
	}
}

func TestCacheBoundedByExp(t *testing.T) {
	t.Parallel()
	i := newIDP(t)
	c := &clock{t: time.Now()}
	exp := c.now().Add(time.Second)
	i.set("short", map[string]any{"active": true, "sub": "alice", "exp": float64(exp.Unix()) + float64(exp.Nanosecond())/1e9})
	p := newProvider(t, i.srv.URL, c)
	if _, err := p.Authenticate(bearer("short"), nil); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Authenticate(bearer("short"), nil); err != nil {
		t.Fatal(err)
	}
	if got := i.calls.Load(); got != 1 {
		t.Fatalf("calls before exp: got %d; want 1", got)
	}
	c.add(1500 * time.Millisecond) // past exp, well inside cache_ttl
	i.set("short", map[string]any{"active": false})
	if _, err := p.Authenticate(bearer("short"), nil); !errors.Is(err, errInactive) {
		t.Errorf("after exp: got %v; want %v", err, errInactive)
	}
	if got := i.calls.Load(); got != 2 {
		t.Errorf("calls after exp: got %d; want 2 (re-introspected)", got)
	}
}

func TestCacheTTL(t *testing.T) {
	t.Parallel()
	i := newIDP(t)
	c := &clock{t: time.Now()}
	i.set("tok", map[string]any{"active": true, "sub": "alice"})
	p := newProvider(t, i.srv.URL, c)
	steps := []struct {
		advance time.Duration
		calls   int64
	}{{0, 1}, {29 * time.Second, 1}, {2 * time.Second, 2}, {time.Second, 2}}
	for n, st := range steps {
		c.add(st.advance)
		if _, err := p.Authenticate(bearer("tok"), nil); err != nil {
			t.Fatal(err)
		}
		if got := i.calls.Load(); got != st.calls {
			t.Errorf("step %d: calls got %d; want %d", n, got, st.calls)
		}
	}
}

func TestInactiveCachedBriefly(t *testing.T) {
	t.Parallel()
	i := newIDP(t)
	c := &clock{t: time.Now()}
	p := newProvider(t, i.srv.URL, c)
	for n := 0; n < 3; n++ {
		if _, err := p.Authenticate(bearer("revoked"), nil); !errors.Is(err, errInactive) {
			t.Fatalf("got %v; want %v", err, errInactive)
		}
	}
	if got := i.calls.Load(); got != 1 {
		t.Errorf("calls: got %d; want 1", got)
	}
	c.add(inactiveTTL)
	i.set("revoked", map[string]any{"active": true, "sub": "carol"})
	id, err := p.Authenticate(bearer("revoked"), nil)
	if err != nil || id.Consumer != "carol" {
		t.Errorf("after negative TTL: got (%v, %v); want carol", id, err)
	}
}

func TestExpiredOrNotYetValid(t *testing.T) {
	t.Parallel()
	i := newIDP(t)
	now := time.Now()
	i.set("expired", map[string]any{"active": true, "sub": "a", "exp": float64(now.Add(-time.Minute).Unix())})
	i.set("future", map[string]any{"active": true, "sub": "a", "nbf": float64(now.Add(time.Hour).Unix())})
	i.set("inactive", map[string]any{"active": false, "sub": "a"})
	i.set("active-string", map[string]any{"active": "true", "sub": "a"})
	p := newProvider(t, i.srv.URL, nil)
	for _, tok := range []string{"expired", "future", "inactive", "active-string"} {
		t.Run(tok, func(t *testing.T) {
			t.Parallel()
			if id, err := p.Authenticate(bearer(tok), nil); !errors.Is(err, errInactive) {
				t.Errorf("got (%v, %v); want %v", id, err, errInactive)
			}
		})
	}
}

// TestEndpointFailureNeverAllows: every way the endpoint can fail gives a
// 503 problem, never an identity, and nothing is cached.
func TestEndpointFailureNeverAllows(t *testing.T) {
	t.Parallel()
	dead := httptest.NewServer(http.NotFoundHandler())
	deadURL := dead.URL
	dead.Close()
	tests := []struct {
		name  string
		setup func(*idp)
		url   func(*idp) string
	}{
		{"server down", nil, func(*idp) string { return deadURL }},
		{"500", func(i *idp) { i.status = 500 }, nil},
		{"503", func(i *idp) { i.status = 503 }, nil},
		{"401 to the gateway", func(i *idp) { i.status = 401 }, nil},
		{"malformed json", func(i *idp) { i.raw = `{"active": tru` }, nil},
		{"json array", func(i *idp) { i.raw = `[{"active": true}]` }, nil},
		{"json null", func(i *idp) { i.raw = `null` }, nil},
		{"oversized", func(i *idp) { i.raw = `{"active":true,"x":"` + strings.Repeat("a", maxAnswer) + `"}` }, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			i := newIDP(t)
			i.set("tok", map[string]any{"active": true, "sub": "alice"})
			if tc.setup != nil {
				tc.setup(i)
			}
			u := i.srv.URL
			if tc.url != nil {
				u = tc.url(i)
			}
			p := newProvider(t, u, nil)
			for n := 0; n < 2; n++ {
				s := &pipeline.State{RequestID: "req-1"}
				id, err := p.Authenticate(bearer("tok"), s)
				var u *auth.Unavailable
				if id != nil || !errors.As(err, &u) {
					t.Fatalf("got (%v, %v); want *auth.Unavailable (a 503, never allow)", id, err)
				}
			}
			if got := p.cache.Len(); got != 0 {
				t.Errorf("cached entries after failures: got %d; want 0", got)
			}
		})
	}
}

func TestEndpointTimeout(t *testing.T) {
	t.Parallel()
	i := newIDP(t)
	gate := make(chan struct{})
	i.gate = gate
	t.Cleanup(func() { close(gate) })
	i.set("tok", map[string]any{"active": true, "sub": "alice"})
	p := newProvider(t, i.srv.URL, nil)
	id, err := p.Authenticate(bearer("tok"), &pipeline.State{})
	var u *auth.Unavailable
	if id != nil || !errors.As(err, &u) {
		t.Errorf("got (%v, %v); want *auth.Unavailable (a 503, never allow)", id, err)
	}
}

func TestConcurrentIdenticalTokensOneCall(t *testing.T) {
	t.Parallel()
	i := newIDP(t)
	gate := make(chan struct{})
	i.gate = gate
	i.set("tok", map[string]any{"active": true, "sub": "alice"})
	p := newProvider(t, i.srv.URL, nil)
	const n = 20
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id, err := p.Authenticate(bearer("tok"), nil)
			if err == nil && id.Consumer != "alice" {
				err = fmt.Errorf("consumer %q", id.Consumer)
			}
			errs <- err
		}()
	}
	// Let the callers pile up on the one call in flight, then release it.
	deadline := time.Now().Add(10 * time.Second)
	for i.calls.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	time.Sleep(50 * time.Millisecond)
	close(gate)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("caller: %v", err)
		}
	}
	// Callers that arrived after the call ended read the cache.
	if got := i.calls.Load(); got != 1 {
		t.Errorf("calls for %d concurrent requests: got %d; want 1", n, got)
	}
}

func TestCanceledWaiterLeavesCall(t *testing.T) {
	t.Parallel()
	i := newIDP(t)
	gate := make(chan struct{})
	i.gate = gate
	i.set("tok", map[string]any{"active": true, "sub": "alice"})
	p := newProvider(t, i.srv.URL, nil)
	done := make(chan error, 1)
	go func() { _, err := p.Authenticate(bearer("tok"), nil); done <- err }()
	for i.calls.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	r := bearer("tok").WithContext(ctx)
	if _, err := p.Authenticate(r, nil); err == nil {
		t.Errorf("canceled waiter: got nil error; want one")
	}
	close(gate)
	if err := <-done; err != nil {
		t.Errorf("leader: got %v; want success", err)
	}
}

func TestNoClientAuthWithoutClientID(t *testing.T) {
	t.Parallel()
	var gotAuth atomic.Value
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotAuth.Store(r.Header.Get("Authorization"))
		_, _ = w.Write([]byte(`{"active":true,"sub":"x"}`))
	}))
	defer srv.Close()
	p, err := New(config.OAuth2Provider{Name: "open", IntrospectionURL: srv.URL}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if _, err := p.Authenticate(bearer("abc"), nil); err != nil {
		t.Fatal(err)
	}
	if got := gotAuth.Load(); got != "" {
		t.Errorf("Authorization sent to the endpoint: got %q; want none (the client's token must not leak)", got)
	}
}

func TestNewRejectsBadURL(t *testing.T) {
	t.Parallel()
	for _, u := range []string{"", "ftp://x/y", "://", "/relative"} {
		if _, err := New(config.OAuth2Provider{Name: "x", IntrospectionURL: u}, nil); err == nil {
			t.Errorf("New(%q): got nil error; want one", u)
		}
	}
}

func TestHide(t *testing.T) {
	t.Parallel()
	p := newProvider(t, "http://127.0.0.1:1/introspect", nil)
	r := bearer("tok")
	p.Hide(r)
	if got := r.Header.Get("Authorization"); got != "" {
		t.Errorf("Authorization after Hide: got %q; want none", got)
	}
}

func configFor(u string) config.OAuth2Provider {
	return config.OAuth2Provider{Name: "idp", IntrospectionURL: u, ClientID: clientID, ClientSecret: clientSecret,
		CacheTTL: config.Duration(30 * time.Second)}
}
