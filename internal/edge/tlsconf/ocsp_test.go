package tlsconf

import (
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/portunus-gw/portunus/internal/config"
	"golang.org/x/crypto/ocsp"
)

// ocspResponder answers OCSP POSTs for ca with status, counting fetches.
type ocspResponder struct {
	srv     *httptest.Server
	fetches atomic.Int64
	down    atomic.Bool // answer 503
}

func newOCSPResponder(t *testing.T, ca *testCA, status int, signer *testCA) *ocspResponder {
	t.Helper()
	r := &ocspResponder{}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.fetches.Add(1)
		if r.down.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		body, err := io.ReadAll(io.LimitReader(req.Body, 64<<10))
		if err != nil || req.Method != http.MethodPost || req.Header.Get("Content-Type") != "application/ocsp-request" {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		q, err := ocsp.ParseRequest(body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		now := time.Now()
		tmpl := ocsp.Response{
			Status:       status,
			SerialNumber: q.SerialNumber,
			ThisUpdate:   now.Add(-time.Minute),
			NextUpdate:   now.Add(time.Hour),
		}
		if status == ocsp.Revoked {
			tmpl.RevokedAt = now.Add(-time.Minute)
		}
		raw, err := ocsp.CreateResponse(ca.cert, signer.cert, tmpl, signer.key)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/ocsp-response")
		_, _ = w.Write(raw)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func TestOCSPStapling(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ca := newCA(t, "root", false)
	resp := newOCSPResponder(t, ca, ocsp.Good, ca)
	leaf := ca.issue(t, leafOpts{cn: "stapled", dns: []string{"ocsp.test"}, ocsp: resp.srv.URL})
	m := newManager(t, &config.ListenerTLS{Certificates: []config.Certificate{leaf.write(t, dir, "ocsp")}}, nil)
	addr := handshakeServer(t, m.TLSConfig())

	var staple []byte
	eventually(t, "a stapled OCSP response", func() bool {
		cs, err := dial(addr, &tls.Config{ServerName: "ocsp.test", InsecureSkipVerify: true})
		if err != nil {
			t.Fatalf("handshake: %v", err)
		}
		staple = cs.OCSPResponse
		return len(staple) > 0
	})
	r, err := ocsp.ParseResponseForCert(staple, leaf.cert, ca.cert)
	if err != nil {
		t.Fatalf("parse staple: %v", err)
	}
	if r.Status != ocsp.Good || r.SerialNumber.Cmp(leaf.cert.SerialNumber) != 0 {
		t.Errorf("got staple status %d serial %v; want good for %v", r.Status, r.SerialNumber, leaf.cert.SerialNumber)
	}
	// Handshakes never fetch: more of them do not reach the responder.
	for range 5 {
		if _, err := dial(addr, &tls.Config{ServerName: "ocsp.test", InsecureSkipVerify: true}); err != nil {
			t.Fatalf("handshake: %v", err)
		}
	}
	if got := resp.fetches.Load(); got != 1 {
		t.Errorf("got %d responder fetches; want 1 (refresh is halfway to NextUpdate, an hour away)", got)
	}
}

// TestOCSPRefused: responses that must not be stapled are not — a revoked
// status, and a response signed by a key other than the issuer's — and a
// certificate without its issuer in the chain fetches nothing.
func TestOCSPRefused(t *testing.T) {
	t.Parallel()
	ca := newCA(t, "root", false)
	stranger := newCA(t, "stranger", false)
	cases := []struct {
		name      string
		status    int
		signer    *testCA
		leafOnly  bool
		wantFetch bool
		wantLog   string
	}{
		{name: "revoked", status: ocsp.Revoked, signer: ca, wantFetch: true, wantLog: "revoked"},
		{name: "bad signature", status: ocsp.Good, signer: stranger, wantFetch: true, wantLog: "ocsp fetch failed"},
		{name: "no issuer in chain", status: ocsp.Good, signer: ca, leafOnly: true, wantLog: "lacks the issuer"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			resp := newOCSPResponder(t, ca, tc.status, tc.signer)
			leaf := ca.issue(t, leafOpts{cn: "x", dns: []string{"x.test"}, ocsp: resp.srv.URL})
			if tc.leafOnly {
				leaf.chainPEM = leaf.chainPEM[:len(leaf.chainPEM)-len(ca.pem)]
			}
			sink := &logSink{}
			m := newManager(t, &config.ListenerTLS{Certificates: []config.Certificate{leaf.write(t, dir, "x")}}, slog.New(sink))
			addr := handshakeServer(t, m.TLSConfig())
			eventually(t, "log "+tc.wantLog, func() bool { return sink.count(tc.wantLog) > 0 })
			cs, err := dial(addr, &tls.Config{ServerName: "x.test", InsecureSkipVerify: true})
			if err != nil {
				t.Fatalf("handshake: %v", err)
			}
			if len(cs.OCSPResponse) != 0 {
				t.Errorf("got a %d-byte staple; want none", len(cs.OCSPResponse))
			}
			if got := resp.fetches.Load() > 0; got != tc.wantFetch {
				t.Errorf("got fetched %v; want %v", got, tc.wantFetch)
			}
		})
	}
}

// TestOCSPSchedule walks the refresher's decisions through sequences of
// fetch outcomes on a made-up clock.
func TestOCSPSchedule(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	good := []byte("good")
	fail := errors.New("responder down")
	type attempt struct {
		at          time.Duration // after t0
		next        time.Duration // NextUpdate after t0 when err is nil
		err         error
		wantPublish bool
		wantStaple  []byte
		wantWait    time.Duration
		wantEvent   ocspEvent
	}
	cases := []struct {
		name     string
		attempts []attempt
	}{
		{"refresh halfway to NextUpdate", []attempt{
			{at: 0, next: 4 * time.Hour, wantPublish: true, wantStaple: good, wantWait: 2 * time.Hour, wantEvent: ocspUpdated},
		}},
		{"refresh at most every 12h", []attempt{
			{at: 0, next: 7 * 24 * time.Hour, wantPublish: true, wantStaple: good, wantWait: 12 * time.Hour, wantEvent: ocspUpdated},
		}},
		{"refresh at least a minute apart", []attempt{
			{at: 0, next: 30 * time.Second, wantPublish: true, wantStaple: good, wantWait: time.Minute, wantEvent: ocspUpdated},
		}},
		{"failures keep the staple, back off, then drop it at expiry", []attempt{
			{at: 0, next: 10 * time.Minute, wantPublish: true, wantStaple: good, wantWait: 5 * time.Minute, wantEvent: ocspUpdated},
			{at: 5 * time.Minute, err: fail, wantWait: time.Minute, wantEvent: ocspKept},
			{at: 6 * time.Minute, err: fail, wantWait: 2 * time.Minute, wantEvent: ocspKept},
			{at: 8 * time.Minute, err: fail, wantWait: 2 * time.Minute, wantEvent: ocspKept}, // 4m back-off cut to the expiry
			{at: 10 * time.Minute, err: fail, wantPublish: true, wantWait: 8 * time.Minute, wantEvent: ocspExpired},
			{at: 18 * time.Minute, next: 78 * time.Minute, wantPublish: true, wantStaple: good, wantWait: 30 * time.Minute, wantEvent: ocspUpdated},
			{at: 48 * time.Minute, err: fail, wantWait: time.Minute, wantEvent: ocspKept}, // back-off reset by the success
		}},
		{"failure with no staple yet retries", []attempt{
			{at: 0, err: fail, wantWait: time.Minute, wantEvent: ocspKept},
			{at: time.Minute, err: fail, wantWait: 2 * time.Minute, wantEvent: ocspKept},
		}},
		{"back-off is capped", []attempt{
			{at: 0, err: fail, wantWait: time.Minute, wantEvent: ocspKept},
			{at: 1 * time.Minute, err: fail, wantWait: 2 * time.Minute, wantEvent: ocspKept},
			{at: 3 * time.Minute, err: fail, wantWait: 4 * time.Minute, wantEvent: ocspKept},
			{at: 7 * time.Minute, err: fail, wantWait: 8 * time.Minute, wantEvent: ocspKept},
			{at: 15 * time.Minute, err: fail, wantWait: 16 * time.Minute, wantEvent: ocspKept},
			{at: 31 * time.Minute, err: fail, wantWait: 30 * time.Minute, wantEvent: ocspKept},
			{at: 61 * time.Minute, err: fail, wantWait: 30 * time.Minute, wantEvent: ocspKept},
		}},
		{"revocation drops the staple", []attempt{
			{at: 0, next: time.Hour, wantPublish: true, wantStaple: good, wantWait: 30 * time.Minute, wantEvent: ocspUpdated},
			{at: 30 * time.Minute, err: fmt.Errorf("x: %w", errRevoked), wantPublish: true, wantWait: 12 * time.Hour, wantEvent: ocspRevoked},
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var st ocspState
			for i, a := range tc.attempts {
				var raw []byte
				var next time.Time
				if a.err == nil {
					raw, next = good, t0.Add(a.next)
				}
				var p ocspPlan
				st, p = st.step(t0.Add(a.at), raw, next, a.err)
				if p.publish != a.wantPublish || !bytes.Equal(p.staple, a.wantStaple) || p.wait != a.wantWait || p.event != a.wantEvent {
					t.Errorf("attempt %d: got publish=%v staple=%q wait=%v event=%d; want publish=%v staple=%q wait=%v event=%d",
						i, p.publish, p.staple, p.wait, p.event, a.wantPublish, a.wantStaple, a.wantWait, a.wantEvent)
				}
			}
		})
	}
}

// TestOCSPStapleSurvivesReload: rewriting the certificate file with the
// same certificate (here: a trailing newline) while the responder is down
// keeps the staple, since the leaf did not change.
func TestOCSPStapleSurvivesReload(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ca := newCA(t, "root", false)
	resp := newOCSPResponder(t, ca, ocsp.Good, ca)
	leaf := ca.issue(t, leafOpts{cn: "stapled", dns: []string{"ocsp.test"}, ocsp: resp.srv.URL})
	pair := leaf.write(t, dir, "ocsp")
	sink := &logSink{}
	m := newManager(t, &config.ListenerTLS{Certificates: []config.Certificate{pair}}, slog.New(sink))
	addr := handshakeServer(t, m.TLSConfig())
	stapled := func() bool {
		cs, err := dial(addr, &tls.Config{ServerName: "ocsp.test", InsecureSkipVerify: true})
		if err != nil {
			t.Fatalf("handshake: %v", err)
		}
		return len(cs.OCSPResponse) > 0
	}
	eventually(t, "a stapled OCSP response", stapled)
	resp.down.Store(true)
	writeFile(t, pair.CertFile, append(append([]byte(nil), leaf.chainPEM...), '\n'))
	eventually(t, "the reload and its failed OCSP fetch", func() bool {
		return sink.count("tls certificate reloaded") > 0 && sink.count("ocsp fetch failed") > 0
	})
	if !stapled() {
		t.Error("got no staple after the reload; want the previous one carried over")
	}
}
