package h1

import (
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strconv"
	"testing"
)

// A released answer's memory goes to the next answers, but the header
// values a caller copied out of it (the proxy shares them into the
// client's header) stay what they were.
func TestReleaseKeepsCopiedValues(t *testing.T) {
	var n int
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n++
		w.Header().Set("X-Answer", "answer-"+strconv.Itoa(n))
		w.Header().Set("Content-Type", "text/plain; n="+strconv.Itoa(n))
		io.WriteString(w, "body-"+strconv.Itoa(n))
	}))
	defer srv.Close()
	c := newClient(t, Options{})

	var kept []http.Header
	var maps []uintptr
	for i := 1; i <= 20; i++ {
		res, body := get(t, c, srv.URL)
		if want := "body-" + strconv.Itoa(i); body != want {
			t.Fatalf("answer %d: body %q, want %q", i, body, want)
		}
		copied := http.Header{}
		for k, vv := range res.Header {
			copied[k] = vv // the values' slices, shared, as the proxy does
		}
		kept = append(kept, copied)
		maps = append(maps, reflect.ValueOf(res.Header).Pointer())
		Release(res)
	}
	for i, h := range kept {
		if got, want := h.Get("X-Answer"), "answer-"+strconv.Itoa(i+1); got != want {
			t.Errorf("answer %d: X-Answer became %q after later answers, want %q", i+1, got, want)
		}
		if got, want := h.Get("Content-Type"), "text/plain; n="+strconv.Itoa(i+1); got != want {
			t.Errorf("answer %d: Content-Type became %q, want %q", i+1, got, want)
		}
	}
	// Without the race detector (which drops pooled items at random) the
	// released maps are reused: the release does something.
	if !raceEnabled {
		reused := false
		for i := 1; i < len(maps); i++ {
			if maps[i] == maps[i-1] {
				reused = true
			}
		}
		if !reused {
			t.Error("no answer reused the header map of the one released before it")
		}
	}
}

// An answer whose body is still open is not taken: its reader and
// header stay the caller's.
func TestReleaseLeavesOpenBody(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Answer", "open")
		io.WriteString(w, "still here")
	}))
	defer srv.Close()
	c := newClient(t, Options{})
	req, _ := http.NewRequest(http.MethodGet, srv.URL, nil)
	res, err := c.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	Release(res)
	if got := res.Header.Get("X-Answer"); got != "open" {
		t.Fatalf("header after Release of an open answer: %q", got)
	}
	b, err := io.ReadAll(res.Body)
	res.Body.Close()
	if err != nil || string(b) != "still here" {
		t.Fatalf("body after Release of an open answer: %q, %v", b, err)
	}
	// Not from this client: nothing happens.
	other := &http.Response{Header: http.Header{"A": {"b"}}, Body: http.NoBody}
	Release(other)
	if other.Header.Get("A") != "b" {
		t.Fatal("Release changed a response it did not make")
	}
}
