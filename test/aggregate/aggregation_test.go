package aggregate

import (
	"context"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"
)

const mobileKey = "X-API-Key: mobile-key"

type dashboard struct {
	base                string
	users, orders, orgs chan seen
	usersSrv, ordersSrv string
	ordersCancelled     chan struct{}
}

// startDashboard runs examples/aggregation.yaml with users, orders and
// orgs services; ordersHandler replaces the orders service's answer.
func startDashboard(t *testing.T, usersAnswer, ordersAnswer http.HandlerFunc) *dashboard {
	d := &dashboard{}
	users, uc := recorder(t, usersAnswer)
	orders, oc := recorder(t, ordersAnswer)
	orgs, gc := recorder(t, jsonAnswer(`{"name":"Acme","plan":"gold","billing":"secret"}`))
	d.users, d.orders, d.orgs = uc, oc, gc
	d.base = startExample(t, "aggregation.yaml", map[string]string{
		"http://127.0.0.1:9201": users.URL,
		"http://127.0.0.1:9202": orders.URL,
		"http://127.0.0.1:9203": orgs.URL,
	})
	return d
}

var userJSON = jsonAnswer(`{"id":42,"name":"Ann","org_id":"acme/eu","email":"ann@example.com"}`)

func TestAggregationExample(t *testing.T) {
	t.Parallel()
	d := startDashboard(t, userJSON, jsonAnswer(`[{"id":1},{"id":2}]`))
	r := do(t, context.Background(), "GET", d.base+"/dashboard/42?limit=5", mobileKey, "X-Request-Id: dash-1")
	if r.status != 200 || r.header.Get("Portunus-Partial") != "" {
		t.Fatalf("status %d partial %q body %s; want 200, complete", r.status, r.header.Get("Portunus-Partial"), r.body)
	}
	got := r.object(t)
	want := map[string]any{
		"user":   map[string]any{"id": 42.0, "name": "Ann", "org": "acme/eu"},
		"orders": []any{map[string]any{"id": 1.0}, map[string]any{"id": 2.0}},
		"org":    map[string]any{"name": "Acme", "plan": "gold"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("answer\n got %v\nwant %v", got, want)
	}
	u := next(t, d.users, "users")
	if u.Path != "/users/42" || u.Header.Get("X-Caller") != "mobile-app" || u.Header.Get("X-Request-Id") != "dash-1" ||
		u.Header.Get("X-Consumer-Name") != "mobile-app" || u.Header.Get("X-Api-Key") != "" {
		t.Errorf("users saw %s %v; want /users/42 with X-Caller and X-Consumer-Name mobile-app, X-Request-Id dash-1, no key", u.Path, u.Header)
	}
	if o := next(t, d.orders, "orders"); o.Path != "/orders" || o.Query != "user=42&limit=5" {
		t.Errorf("orders saw %s?%s; want /orders?user=42&limit=5", o.Path, o.Query)
	}
	// The sequential step got the first answer's value, escaped.
	if g := next(t, d.orgs, "orgs"); g.Path != "/orgs/acme%2Feu" {
		t.Errorf("orgs saw %s; want /orgs/acme%%2Feu", g.Path)
	}
}

func TestAggregationFailures(t *testing.T) {
	t.Parallel()
	t.Run("optional backend down is partial", func(t *testing.T) {
		t.Parallel()
		d := startDashboard(t, userJSON, func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(503) })
		r := do(t, context.Background(), "GET", d.base+"/dashboard/42", mobileKey)
		got := r.object(t)
		if r.status != 200 || r.header.Get("Portunus-Partial") != "true" || got["orders"] != nil || got["org"] == nil {
			t.Errorf("status %d partial %q body %s; want 200, partial, no orders, org present", r.status, r.header.Get("Portunus-Partial"), r.body)
		}
	})
	t.Run("required backend invalid JSON is 502 naming it", func(t *testing.T) {
		t.Parallel()
		d := startDashboard(t, jsonAnswer(`{"id":`), jsonAnswer(`[]`))
		r := do(t, context.Background(), "GET", d.base+"/dashboard/42", mobileKey)
		if r.status != 502 || r.header.Get("Content-Type") != "application/problem+json" || !strings.Contains(string(r.body), "user (upstream users)") {
			t.Errorf("status %d %s body %s; want 502 problem+json naming user", r.status, r.header.Get("Content-Type"), r.body)
		}
		select {
		case <-d.orgs:
			t.Error("the step after the failed user backend was called")
		default:
		}
	})
	t.Run("huge answer is 502", func(t *testing.T) {
		t.Parallel()
		big := `{"id":1,"pad":"` + strings.Repeat("x", 300<<10) + `"}`
		d := startDashboard(t, jsonAnswer(big), jsonAnswer(`[]`))
		r := do(t, context.Background(), "GET", d.base+"/dashboard/42", mobileKey)
		if r.status != 502 || !strings.Contains(string(r.body), "larger than 262144 bytes") {
			t.Errorf("status %d body %.300s; want 502 saying larger than 262144 bytes", r.status, r.body)
		}
	})
	t.Run("slow required backend is 504 and is cancelled", func(t *testing.T) {
		t.Parallel()
		cancelled := make(chan struct{})
		d := startDashboard(t, func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-r.Context().Done():
				close(cancelled)
			case <-time.After(waitLimit):
			}
		}, jsonAnswer(`[]`))
		r := do(t, context.Background(), "GET", d.base+"/dashboard/42", mobileKey)
		if r.status != 504 || !strings.Contains(string(r.body), "upstream-timeout") {
			t.Errorf("status %d body %s; want 504 upstream-timeout", r.status, r.body)
		}
		select {
		case <-cancelled:
		case <-time.After(waitLimit):
			t.Error("the slow backend never saw its request cancelled")
		}
	})
	t.Run("client leaving cancels the backends", func(t *testing.T) {
		t.Parallel()
		arrived, cancelled := make(chan struct{}), make(chan struct{})
		d := startDashboard(t, func(w http.ResponseWriter, r *http.Request) {
			close(arrived)
			select {
			case <-r.Context().Done():
				close(cancelled)
			case <-time.After(waitLimit):
			}
		}, jsonAnswer(`[]`))
		ctx, cancel := context.WithCancel(context.Background())
		go func() {
			<-arrived
			cancel()
		}()
		req, _ := http.NewRequestWithContext(ctx, "GET", d.base+"/dashboard/42", nil)
		req.Header.Set("X-API-Key", "mobile-key")
		if res, err := http.DefaultClient.Do(req); err == nil {
			res.Body.Close()
			t.Errorf("request finished with %d; want it cancelled", res.StatusCode)
		}
		select {
		case <-cancelled:
		case <-time.After(waitLimit):
			t.Error("the backend never saw its request cancelled after the client left")
		}
	})
	t.Run("not GET or HEAD, or no key", func(t *testing.T) {
		t.Parallel()
		d := startDashboard(t, userJSON, jsonAnswer(`[]`))
		if r := do(t, context.Background(), "POST", d.base+"/dashboard/42", mobileKey); r.status != 405 {
			t.Errorf("POST: %d; want 405", r.status)
		}
		if r := do(t, context.Background(), "GET", d.base+"/dashboard/42"); r.status != 401 {
			t.Errorf("no key: %d; want 401", r.status)
		}
		if r := do(t, context.Background(), "HEAD", d.base+"/dashboard/42", mobileKey); r.status != 200 || len(r.body) != 0 {
			t.Errorf("HEAD: %d %q; want 200 without body", r.status, r.body)
		}
	})
}
