package consumers

import (
	"encoding/json"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/portunus-gw/portunus/internal/store/redistest"
)

// propagation is the promise: a change made through one instance is in
// force on every instance within this long.
const propagation = time.Second

// redisRedialProbe is how often go-redis retries a server it stopped
// dialing after a run of failed dials (its pool's dial circuit breaker).
const redisRedialProbe = time.Second

func threeInstances(t *testing.T) (*redistest.Server, []*instance, string) {
	t.Helper()
	srv := redistest.StartServer(t)
	up := newUpstream(t)
	cfg := gatewayConfig(up.URL, storeRedis(srv.Addr(), redistest.KeyPrefix(t)))
	var ins []*instance
	for range 3 {
		ins = append(ins, startInstance(t, cfg, ""))
	}
	return srv, ins, cfg
}

// TestIssueRevokeAcrossInstances: a key issued through one instance works
// on the others within a second; a revoked one is refused on all of them
// within a second, while a goroutine per instance sends requests with it
// the whole time.
func TestIssueRevokeAcrossInstances(t *testing.T) {
	t.Parallel()
	_, ins, _ := threeInstances(t)
	a, b, c := ins[0], ins[1], ins[2]

	a.mustAdmin("POST", "/api/v1/consumers", `{"name":"acme","roles":["buyer"],"rate_limits":[{"limit":2,"window":"1h","by":"consumer"}]}`, 201)
	k := a.issue("acme")
	for _, in := range []*instance{b, c} {
		if d := in.waitStatus("/api/x", k.Key, 200); d > propagation {
			t.Errorf("%s: the new key worked after %s; want within %s", in.url, d, propagation)
		}
	}
	if got := a.call("/api/x", k.Key); got != 200 {
		t.Errorf("issuing instance: %d; want 200", got)
	}
	// The runtime consumer's own limit (2 per hour, per consumer)
	// replaces the route's 1000, on every instance together.
	st := []int{a.call("/limited", k.Key), b.call("/limited", k.Key), c.call("/limited", k.Key)}
	if st[0] != 200 || st[1] != 200 || st[2] != 429 {
		t.Errorf("consumer rate limit across instances: %v; want [200 200 429]", st)
	}
	// Config consumers keep working beside runtime ones.
	if got := b.call("/api/x", "file-key-0123456789"); got != 200 {
		t.Errorf("config key: %d", got)
	}

	// Continuous load on every instance with the key, then revoke.
	var stop atomic.Bool
	var revokedAt atomic.Int64 // unix ns the revoke answer arrived
	var late, total atomic.Int64
	var lateMsg sync.Once
	var wg sync.WaitGroup
	for _, in := range ins {
		for range 2 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for !stop.Load() {
					sent := time.Now().UnixNano()
					st := in.call("/api/x", k.Key)
					total.Add(1)
					if r := revokedAt.Load(); r != 0 && st == 200 && sent > r+int64(propagation) {
						late.Add(1)
						lateMsg.Do(func() { t.Errorf("%s: 200 for a request sent %s after the revoke", in.url, time.Duration(sent-r)) })
					}
				}
			}()
		}
	}
	time.Sleep(200 * time.Millisecond) // let load build up before the revoke
	c.mustAdmin("DELETE", "/api/v1/consumers/acme/keys/"+k.ID, "", 204)
	revokedAt.Store(time.Now().UnixNano())
	for _, in := range ins {
		if d := in.waitStatus("/api/x", k.Key, 401); d > propagation {
			t.Errorf("%s: the revoked key was refused only after %s", in.url, d)
		}
	}
	time.Sleep(propagation + 300*time.Millisecond)
	stop.Store(true)
	wg.Wait()
	if total.Load() < 50 {
		t.Errorf("only %d requests under load; the test proves little", total.Load())
	}
	if late.Load() > 0 {
		t.Errorf("%d answers 200 more than %s after the revoke", late.Load(), propagation)
	}
}

// TestRestartsLoseNothing: an instance restarted finds every consumer; a
// Redis restarted empty (no persistence) is restored from the instances'
// copies, and changes flow again afterwards.
func TestRestartsLoseNothing(t *testing.T) {
	t.Parallel()
	srv, ins, cfg := threeInstances(t)
	a, b, c := ins[0], ins[1], ins[2]
	a.mustAdmin("POST", "/api/v1/consumers", `{"name":"keeper"}`, 201)
	k1 := a.issue("keeper")
	c.waitStatus("/api/x", k1.Key, 200)

	// Instance restart: B goes away and comes back from the same config.
	b.stop()
	b = startInstance(t, cfg, "")
	if got := b.call("/api/x", k1.Key); got != 200 {
		t.Errorf("restarted instance: %d for an existing key; want 200", got)
	}

	// Redis restart: its data is gone (no persistence). Keys keep
	// working from memory throughout, Redis is restored, and a change
	// made afterwards reaches every instance.
	srv.Restart()
	for _, in := range []*instance{a, b, c} {
		if got := in.call("/api/x", k1.Key); got != 200 {
			t.Errorf("%s after the Redis restart: %d; want 200", in.url, got)
		}
	}
	deadline := time.Now().Add(waitLimit)
	for {
		st, body := c.admin("POST", "/api/v1/consumers/keeper/keys", "")
		if st == 201 {
			k2 := issued{}
			if i := strings.Index(string(body), `"key": "`); i >= 0 {
				rest := string(body)[i+len(`"key": "`):]
				k2.Key = rest[:strings.IndexByte(rest, '"')]
			}
			// The first change after the outage: an instance whose
			// Redis client gave up dialing during it reconnects at its
			// next once-a-second probe (go-redis's dial circuit breaker),
			// so the bound is propagation plus that probe. Changes after
			// that are held to propagation (TestRedisRestartUnderLoad).
			for _, in := range []*instance{a, b} {
				if d := in.waitStatus("/api/x", k2.Key, 200); d > propagation+redisRedialProbe {
					t.Errorf("%s: key issued after the Redis restart worked after %s", in.url, d)
				}
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no write succeeded after the Redis restart: %d %s", st, body)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// A fresh instance reads everything from the restored Redis.
	d := startInstance(t, cfg, "")
	if got := d.call("/api/x", k1.Key); got != 200 {
		t.Errorf("new instance after the Redis restart: %d for the old key; want 200", got)
	}
	// The audit trail is in Redis too; the restart emptied it, and the
	// entry of the key issued afterwards is there.
	_, audit := d.admin("GET", "/api/v1/audit", "")
	if !strings.Contains(string(audit), `"key.issue"`) {
		t.Errorf("audit after the Redis restart: %s", audit)
	}
}

// TestRedisRestartUnderLoad: Redis goes away and comes back empty while
// every instance serves a steady stream of requests with two runtime
// keys. Nothing is refused meanwhile (the check is in memory); once
// Redis is back and a change flows again, revoking one key is in force on
// every instance within a second, under the same load, and the other key
// keeps working throughout.
func TestRedisRestartUnderLoad(t *testing.T) {
	t.Parallel()
	srv, ins, _ := threeInstances(t)
	a, b, c := ins[0], ins[1], ins[2]
	a.mustAdmin("POST", "/api/v1/consumers", `{"name":"steady"}`, 201)
	doomed, kept := a.issue("steady"), a.issue("steady")
	for _, in := range ins {
		in.waitStatus("/api/x", doomed.Key, 200)
		in.waitStatus("/api/x", kept.Key, 200)
	}

	var (
		stop         atomic.Bool
		revokeSent   atomic.Int64 // unix ns just before the revoke call
		revokedAt    atomic.Int64 // unix ns the revoke answer arrived
		served       [3]atomic.Int64
		late, early  atomic.Int64
		keptRefused  atomic.Int64
		once1, once2 sync.Once
		once3        sync.Once
		wg           sync.WaitGroup
	)
	for i, in := range ins {
		for _, key := range []string{doomed.Key, kept.Key} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for !stop.Load() {
					sent := time.Now().UnixNano()
					st := in.call("/api/x", key)
					done := time.Now().UnixNano()
					served[i].Add(1)
					switch {
					case key == kept.Key && st != 200:
						keptRefused.Add(1)
						once1.Do(func() { t.Errorf("%s: the key never revoked answered %d", in.url, st) })
					case key == doomed.Key && st != 200 && (revokeSent.Load() == 0 || done < revokeSent.Load()):
						early.Add(1)
						once2.Do(func() { t.Errorf("%s: %d before the revoke (Redis restart)", in.url, st) })
					case key == doomed.Key && st == 200 && revokedAt.Load() != 0 && sent > revokedAt.Load()+int64(propagation):
						late.Add(1)
						once3.Do(func() {
							t.Errorf("%s: 200 for a request sent %s after the revoke", in.url, time.Duration(sent-revokedAt.Load()))
						})
					}
				}
			}()
		}
	}
	// waitServed waits until every instance has answered n more requests.
	waitServed := func(n int64) {
		t.Helper()
		var base [3]int64
		for i := range served {
			base[i] = served[i].Load()
		}
		deadline := time.Now().Add(waitLimit)
		for i := range served {
			for served[i].Load() < base[i]+n {
				if time.Now().After(deadline) {
					t.Fatalf("instance %d answered %d requests in %s; want %d", i, served[i].Load()-base[i], waitLimit, n)
				}
				time.Sleep(5 * time.Millisecond)
			}
		}
	}
	waitServed(20)

	// Redis down: the load goes on (every instance answers at least 20
	// more requests with it down), then it comes back empty.
	srv.Stop()
	waitServed(20)
	srv.Restart()

	// Recovery: a write goes through (the first one restores Redis
	// from an instance's copy if no poll did yet) and reaches everyone.
	deadline := time.Now().Add(waitLimit)
	var probe issued
	for {
		st, body := b.admin("POST", "/api/v1/consumers/steady/keys", "")
		if st == 201 {
			if err := json.Unmarshal(body, &probe); err != nil {
				t.Fatal(err)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no write succeeded after the Redis restart: %d %s", st, body)
		}
		time.Sleep(50 * time.Millisecond)
	}
	for _, in := range ins {
		in.waitStatus("/api/x", probe.Key, 200)
	}

	// Revoke through c, under the same load.
	revokeSent.Store(time.Now().UnixNano())
	c.mustAdmin("DELETE", "/api/v1/consumers/steady/keys/"+doomed.ID, "", 204)
	revokedAt.Store(time.Now().UnixNano())
	for _, in := range []*instance{a, b, c} {
		d := in.waitStatus("/api/x", doomed.Key, 401)
		if d > propagation {
			t.Errorf("%s: the revoked key was refused only after %s", in.url, d)
		}
		t.Logf("%s: revoked key refused %s after the revoke answer", in.url, d)
	}
	// Keep the load on past the promise, so a straggler would be seen.
	time.Sleep(propagation + 300*time.Millisecond)
	stop.Store(true)
	wg.Wait()
	t.Logf("answers per instance: %d, %d, %d", served[0].Load(), served[1].Load(), served[2].Load())
	if late.Load()+early.Load()+keptRefused.Load() > 0 {
		t.Errorf("refused before the revoke: %d; 200 more than %s after it: %d; the kept key refused: %d",
			early.Load(), propagation, late.Load(), keptRefused.Load())
	}
	// The restored Redis holds the kept key and the probe, not the
	// revoked one: a fresh look from the store agrees.
	var keys struct {
		Keys []struct {
			ID string `json:"id"`
		} `json:"keys"`
	}
	if err := json.Unmarshal(a.mustAdmin("GET", "/api/v1/consumers/steady/keys", "", 200), &keys); err != nil {
		t.Fatal(err)
	}
	if len(keys.Keys) != 2 {
		t.Errorf("keys after the restart and revoke: %+v; want the kept key and the probe", keys.Keys)
	}
}
