package proxy_test

import (
	"bufio"
	"crypto/sha256"
	"io"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/portunus-gw/portunus/internal/config"
	"github.com/portunus-gw/portunus/internal/proxy"
)

// TestServerSentEventsArriveOneByOne reads the first event while the
// upstream still holds the stream open: nothing may wait for the end.
func TestServerSentEventsArriveOneByOne(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	var once sync.Once
	releaseUp := func() { once.Do(func() { close(release) }) }
	up := newUpstreamFunc(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		w.Header().Set("Cache-Control", "no-cache")
		w.WriteHeader(200)
		io.WriteString(w, "data: one\n\n")
		http.NewResponseController(w).Flush()
		select {
		case <-release: // only after the client saw event one
		case <-r.Context().Done():
			return
		}
		io.WriteString(w, "data: two\n\n")
	})
	t.Cleanup(releaseUp) // runs before the upstream's Close
	front := startFront(t, proxy.New(proxy.Config{Pool: newPool(t, config.Upstream{}, up.URL), Timeout: time.Second}), frontOpts{})
	res, err := front.Client().Do(mustRequest(t, http.MethodGet, front.URL+"/events", nil))
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	br := bufio.NewReader(res.Body)
	type event struct {
		data string
		err  error
	}
	firstc := make(chan event, 1)
	go func() {
		d, err := readEvent(br)
		firstc <- event{d, err}
	}()
	select {
	case first := <-firstc:
		if first.err != nil || first.data != "data: one" {
			t.Fatalf("first event: got %q, %v; want %q", first.data, first.err, "data: one")
		}
	case <-time.After(waitLimit):
		res.Body.Close()
		t.Fatal("first event did not arrive while the stream was open (buffered?)")
	}
	releaseUp()
	second, err := readEvent(br)
	if err != nil || second != "data: two" {
		t.Errorf("second event: got %q, %v; want %q", second, err, "data: two")
	}
	if ct := res.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Errorf("Content-Type: got %q; want text/event-stream", ct)
	}
}

func readEvent(br *bufio.Reader) (string, error) {
	line, err := br.ReadString('\n')
	if err != nil {
		return "", err
	}
	if _, err := br.ReadString('\n'); err != nil { // the blank line
		return "", err
	}
	return strings.TrimRight(line, "\n"), nil
}

func TestTrailersForwarded(t *testing.T) {
	t.Parallel()
	up := newUpstreamFunc(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Trailer", "X-Checksum")
		w.WriteHeader(200)
		io.WriteString(w, "body")
		w.Header().Set("X-Checksum", "abc")
		w.Header().Set(http.TrailerPrefix+"X-Late", "late")
	})
	front := startFront(t, proxy.New(proxy.Config{Pool: newPool(t, config.Upstream{}, up.URL)}), frontOpts{})
	req := mustRequest(t, http.MethodGet, front.URL+"/", nil)
	req.Header.Set("TE", "trailers")
	res, body := do(t, front, req)
	if body != "body" {
		t.Errorf("body: got %q; want body", body)
	}
	for k, want := range map[string]string{"X-Checksum": "abc", "X-Late": "late"} {
		if got := res.Trailer.Get(k); got != want {
			t.Errorf("trailer %s: got %q; want %q (trailers %v)", k, got, want, res.Trailer)
		}
	}
}

func TestHeadHasNoBody(t *testing.T) {
	t.Parallel()
	up := newUpstreamFunc(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "5")
		if r.Method != http.MethodHead {
			io.WriteString(w, "hello")
		}
	})
	front := startFront(t, proxy.New(proxy.Config{Pool: newPool(t, config.Upstream{}, up.URL)}), frontOpts{})
	res, body := do(t, front, mustRequest(t, http.MethodHead, front.URL+"/", nil))
	if res.StatusCode != 200 || body != "" || res.ContentLength != 5 {
		t.Errorf("HEAD: got %d, body %q, length %d; want 200, empty, 5", res.StatusCode, body, res.ContentLength)
	}
}

// patternBlock is what patternReader repeats; its odd length makes
// misplaced or repeated chunks change the checksum.
var patternBlock = func() []byte {
	b := make([]byte, 65521)
	for i := range b {
		b[i] = byte(i ^ i>>8)
	}
	return b
}()

// patternReader generates n bytes on the fly, so the test holds no body.
type patternReader struct {
	n, off int64
}

func (p *patternReader) Read(b []byte) (int, error) {
	if p.off >= p.n {
		return 0, io.EOF
	}
	if rem := p.n - p.off; int64(len(b)) > rem {
		b = b[:rem]
	}
	total := 0
	for total < len(b) {
		start := int((p.off + int64(total)) % int64(len(patternBlock)))
		total += copy(b[total:], patternBlock[start:])
	}
	p.off += int64(total)
	return total, nil
}

// TestLargeBodiesStreamed sends 64 MiB up and 64 MiB down through the
// proxy and checks both arrive intact while the process allocated far less
// than the bodies: nothing buffered them. It is not parallel so that the
// allocation count is this test's alone.
func TestLargeBodiesStreamed(t *testing.T) {
	const size = 64 << 20
	want := sha256.New()
	io.Copy(want, &patternReader{n: size})
	wantSum := string(want.Sum(nil))

	gotSum := make(chan string, 1)
	up := newUpstreamFunc(t, func(w http.ResponseWriter, r *http.Request) {
		h := sha256.New()
		io.Copy(h, r.Body)
		gotSum <- string(h.Sum(nil))
		if r.URL.Query().Has("chunked") {
			io.Copy(w, &patternReader{n: size})
			return
		}
		w.Header().Set("Content-Length", "67108864")
		io.Copy(w, &patternReader{n: size})
	})
	front := startFront(t, proxy.New(proxy.Config{Pool: newPool(t, config.Upstream{}, up.URL)}), frontOpts{})
	for _, mode := range []string{"length", "chunked"} {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		var body io.Reader = &patternReader{n: size}
		if mode == "chunked" {
			body = chunkedReader{body}
		}
		req := mustRequest(t, http.MethodPost, front.URL+"/big?"+mode, body)
		if mode == "length" {
			req.ContentLength = size
		}
		res, err := front.Client().Do(req)
		if err != nil {
			t.Fatalf("%s: %v", mode, err)
		}
		h := sha256.New()
		n, err := io.Copy(h, res.Body)
		res.Body.Close()
		if err != nil || n != size || string(h.Sum(nil)) != wantSum {
			t.Errorf("%s: downloaded %d bytes (err %v), checksum match %v; want %d bytes matching", mode, n, err, string(h.Sum(nil)) == wantSum, size)
		}
		select {
		case s := <-gotSum:
			if s != wantSum {
				t.Errorf("%s: upload checksum differs", mode)
			}
		case <-time.After(waitLimit):
			t.Fatalf("%s: upstream did not finish reading", mode)
		}
		runtime.ReadMemStats(&after)
		if alloc := after.TotalAlloc - before.TotalAlloc; alloc > size/4 {
			t.Errorf("%s: %d MiB allocated moving 2x64 MiB; want < 16 MiB (a body was buffered)", mode, alloc>>20)
		}
	}
}

// TestUpstreamBreakMidBodyIsNotACleanEnd: when the upstream dies in the
// middle of a chunked body, the client must see an error, never a
// response that looks complete.
func TestUpstreamBreakMidBodyIsNotACleanEnd(t *testing.T) {
	t.Parallel()
	up := newUpstreamFunc(t, func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "partial")
		http.NewResponseController(w).Flush()
		panic(http.ErrAbortHandler) // cuts the connection
	})
	front := startFront(t, proxy.New(proxy.Config{Pool: newPool(t, config.Upstream{}, up.URL)}), frontOpts{})
	res, err := front.Client().Do(mustRequest(t, http.MethodGet, front.URL+"/", nil))
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err == nil {
		t.Errorf("reading a cut body: got %q and no error; want an error", body)
	}
}
