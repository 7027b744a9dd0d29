package h1server

import (
	"bufio"
	"errors"
	"io"
	"net/http"
	"testing"
)

// A handler's goroutine that writes after the handler returned gets an
// error, and its bytes never reach the next request's answer on the same
// connection (each request has its own response).
func TestWriteAfterReturnNeverReachesNextAnswer(t *testing.T) {
	late := make(chan http.ResponseWriter, 1)
	lateErr := make(chan error, 1)
	release := make(chan struct{})
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		switch r.URL.Path {
		case "/first":
			late <- w
			_, _ = io.WriteString(w, "first")
		case "/second":
			close(release)
			// Wait until the late write happened (ordering only).
			if err := waitChan(t, lateErr, "the late write"); !errors.Is(err, errFinished) {
				t.Errorf("late write: %v, want errFinished", err)
			}
			_, _ = io.WriteString(w, "second")
		}
	})
	go func() {
		w := <-late
		<-release
		_, err := io.WriteString(w, "LEAK")
		lateErr <- err
	}()
	_, addr := startOurs(t, h, nil)
	c := dial(t, addr)
	br := bufio.NewReader(c)
	if _, err := io.WriteString(c, get("/first")); err != nil {
		t.Fatal(err)
	}
	if a, err := readAnswer(br, "GET"); err != nil || a.Body != "first" {
		t.Fatalf("first: %+v %v", a, err)
	}
	if _, err := io.WriteString(c, get("/second")); err != nil {
		t.Fatal(err)
	}
	if a, err := readAnswer(br, "GET"); err != nil || a.Body != "second" {
		t.Fatalf("second: %+v %v", a, err)
	}
}
