package proxy_test

import (
	"fmt"
	"io"
	"net/http"
	"sync"
	"testing"

	"github.com/portunus-gw/portunus/internal/config"
	"github.com/portunus-gw/portunus/internal/proxy"
)

// The fast path gives each upstream answer back to the HTTP/1.1 client
// once the client's answer is written, and later answers reuse its memory.
// Many clients at once must still each get their own answer's fields
// (with -race: no access to a given-back answer).
func TestConcurrentAnswersKeepTheirFields(t *testing.T) {
	t.Parallel()
	up := newUpstreamFunc(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Echo", r.URL.Path)
		w.Header().Set("Cache-Control", "max-age="+r.URL.Query().Get("n"))
		w.Header().Add("Vary", "X-"+r.URL.Query().Get("n"))
		fmt.Fprint(w, r.URL.Path)
	})
	front := startFront(t, proxy.New(proxy.Config{Pool: newPool(t, config.Upstream{}, up.URL)}), frontOpts{})
	const clients, each = 8, 40
	var wg sync.WaitGroup
	errs := make(chan error, clients*each)
	for c := range clients {
		wg.Go(func() {
			for i := range each {
				path := fmt.Sprintf("/c%d/r%d", c, i)
				n := fmt.Sprint(c*each + i)
				res, err := front.Client().Get(front.URL + path + "?n=" + n)
				if err != nil {
					errs <- err
					return
				}
				body, err := io.ReadAll(res.Body)
				res.Body.Close()
				if err != nil {
					errs <- err
					return
				}
				got := []string{res.Header.Get("X-Echo"), res.Header.Get("Cache-Control"), res.Header.Get("Vary"), string(body)}
				want := []string{path, "max-age=" + n, "X-" + n, path}
				for j := range want {
					if got[j] != want[j] {
						errs <- fmt.Errorf("%s: got %q, want %q", path, got, want)
						break
					}
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
