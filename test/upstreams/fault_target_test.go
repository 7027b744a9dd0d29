package upstreams

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/portunus-gw/portunus/internal/gateway"
	"github.com/portunus-gw/portunus/internal/gateway/gatewaytest"
)

// fault is how a faultTarget answers.
type fault int32

const (
	faultNone  fault = iota // 200 "ok"
	faultHung               // reads the request and never answers
	faultReset              // reads the request and resets the connection
	fault5xx                // 503
	faultSlow               // 200 after slowAnswer, far past response_header
)

// slowAnswer is how long a faultSlow target takes: three times the
// matrix's response_header timeout, so the gateway gives up first.
const slowAnswer = 900 * time.Millisecond

// faultTarget is a test upstream whose behaviour the test switches, and
// which can be killed (listener and every connection closed) and
// restarted on the same address.
type faultTarget struct {
	t    *testing.T
	addr string
	url  string
	mode atomic.Int32
	stop chan struct{} // closed at cleanup: frees hung handlers

	mu      sync.Mutex
	srv     *http.Server
	hitTime []time.Time // when each request reached the handler
}

func newFaultTarget(t *testing.T, f fault) *faultTarget {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ft := &faultTarget{t: t, addr: ln.Addr().String(), stop: make(chan struct{})}
	ft.url = "http://" + ft.addr
	ft.mode.Store(int32(f))
	ft.serve(ln)
	t.Cleanup(func() {
		close(ft.stop)
		ft.kill()
	})
	return ft
}

func (ft *faultTarget) serve(ln net.Listener) {
	srv := &http.Server{Handler: ft}
	ft.mu.Lock()
	ft.srv = srv
	ft.mu.Unlock()
	go srv.Serve(ln)
}

// set switches the target's behaviour for the requests that follow.
func (ft *faultTarget) set(f fault) { ft.mode.Store(int32(f)) }

// kill closes the listener and every open connection: requests in flight
// are cut, new connections are refused.
func (ft *faultTarget) kill() {
	ft.mu.Lock()
	srv := ft.srv
	ft.srv = nil
	ft.mu.Unlock()
	if srv != nil {
		srv.Close()
	}
}

// restart listens on the same address again.
func (ft *faultTarget) restart() {
	ft.t.Helper()
	ln, err := net.Listen("tcp", ft.addr)
	if err != nil {
		ft.t.Fatalf("restart the killed target on %s: %v", ft.addr, err)
	}
	ft.serve(ln)
}

// hits is the number of requests that reached the target.
func (ft *faultTarget) hits() int {
	ft.mu.Lock()
	defer ft.mu.Unlock()
	return len(ft.hitTime)
}

// hitAt is when request i (0-based) reached the target.
func (ft *faultTarget) hitAt(i int) time.Time {
	ft.mu.Lock()
	defer ft.mu.Unlock()
	return ft.hitTime[i]
}

func (ft *faultTarget) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ft.mu.Lock()
	ft.hitTime = append(ft.hitTime, time.Now())
	ft.mu.Unlock()
	switch fault(ft.mode.Load()) {
	case faultHung:
		select {
		case <-r.Context().Done(): // the gateway gave up
		case <-ft.stop:
		}
	case faultReset:
		c, _, err := http.NewResponseController(w).Hijack()
		if err != nil {
			panic(err)
		}
		c.(*net.TCPConn).SetLinger(0) // close sends RST
		c.Close()
	case fault5xx:
		w.WriteHeader(http.StatusServiceUnavailable)
		io.WriteString(w, "unavailable")
	case faultSlow:
		select {
		case <-time.After(slowAnswer):
			io.WriteString(w, "slow")
		case <-r.Context().Done():
		case <-ft.stop:
		}
	default:
		io.WriteString(w, "ok")
	}
}

// adminToken guards the admin API of the gateways these tests start.
const adminToken = "upstreams-test-admin-token-0123456789"

// admin reads GET /api/v1/upstreams of one gateway.
type admin struct {
	t    *testing.T
	base string
}

// startGatewayAdmin starts a gateway on cfg (which must enable the admin
// API with adminToken) and returns its base URL and its admin API.
func startGatewayAdmin(t *testing.T, cfg string) (string, admin) {
	t.Helper()
	rt := gatewaytest.Start(t, cfg)
	return gatewaytest.URL(t, rt), admin{t: t, base: "http://" + rt.AdminAddr()}
}

// target returns the admin API's view of target url of upstream name.
func (a admin) target(name, url string) gateway.TargetStatus {
	a.t.Helper()
	req, err := http.NewRequest("GET", a.base+"/api/v1/upstreams", nil)
	if err != nil {
		a.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+adminToken)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		a.t.Fatal(err)
	}
	defer res.Body.Close()
	var got gateway.UpstreamsAnswer
	if err := json.NewDecoder(res.Body).Decode(&got); err != nil || res.StatusCode != 200 {
		a.t.Fatalf("GET /api/v1/upstreams: %d, %v", res.StatusCode, err)
	}
	for _, u := range got.Upstreams {
		for _, tg := range u.Targets {
			if u.Name == name && tg.URL == url {
				return tg
			}
		}
	}
	a.t.Fatalf("target %s of upstream %s not in /api/v1/upstreams", url, name)
	return gateway.TargetStatus{}
}
