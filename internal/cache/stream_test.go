package cache

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"
)

// An answer within the object bound reaches the client as the upstream
// sends it while the cache copies it: the first part arrives before the
// upstream has written the rest. Once complete it is stored and served as
// a hit.
func TestBodyStreamsWhileStored(t *testing.T) {
	t.Parallel()
	const first, second = "first part;", "second part"
	for _, known := range []bool{false, true} {
		t.Run("content-length="+strconv.FormatBool(known), func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, Options{MaxObjectBytes: 1 << 20})
			release := newGate(t)
			f.origin.set(func(w http.ResponseWriter, r *http.Request, _ int) {
				w.Header().Set("Cache-Control", "max-age=60")
				if known {
					w.Header().Set("Content-Length", strconv.Itoa(len(first+second)))
				}
				_, _ = io.WriteString(w, first)
				http.NewResponseController(w).Flush()
				<-release.c
				_, _ = io.WriteString(w, second)
			})
			type part struct {
				resp *http.Response
				got  string
				err  error
			}
			parts := make(chan part, 1)
			go func() {
				resp, err := f.client.Get(f.srv.URL + "/s")
				if err != nil {
					parts <- part{err: err}
					return
				}
				buf := make([]byte, len(first))
				_, err = io.ReadFull(resp.Body, buf)
				parts <- part{resp: resp, got: string(buf), err: err}
			}()
			var p part
			select {
			case p = <-parts:
			case <-time.After(10 * time.Second):
				t.Fatal("the first part did not reach the client while the upstream held the rest back")
			}
			if p.err != nil {
				t.Fatal(p.err)
			}
			defer p.resp.Body.Close()
			if p.got != first {
				t.Fatalf("first part = %q; want %q", p.got, first)
			}
			if cs := p.resp.Header.Get("Cache-Status"); cs != "portunus; fwd=uri-miss; stored" {
				t.Fatalf("Cache-Status = %q; want a stored miss", cs)
			}
			release.open()
			rest, err := io.ReadAll(p.resp.Body)
			if err != nil || string(rest) != second {
				t.Fatalf("rest = %q, %v; want %q", rest, err, second)
			}
			// The store happens as the upstream's handler returns.
			key := f.p.keyOf(httptest.NewRequest("GET", f.srv.URL+"/s", nil), "/s", "", keyRef{}).String()
			waitFor(t, "the entry stored", func() bool {
				e, _ := f.p.backend.Get(context.Background(), key)
				return e != nil
			})
			a := f.get("/s")
			wantStatus(t, a, 200, "portunus; hit; ttl=60")
			if a.body != first+second {
				t.Fatalf("hit body = %q; want %q", a.body, first+second)
			}
			f.wantCalls(1)
		})
	}
}
