package h1server

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"testing"
	"time"
)

// TestManyParkedWakeTogether: more parked connections than one wait of
// the idle poller takes (128 events) send their next request at once;
// every one is served.
func TestManyParkedWakeTogether(t *testing.T) {
	t.Parallel()
	const n = 200
	_, addr := startOurs(t, http.HandlerFunc(diffHandler), func(s *Server) {
		s.ReadHeaderTimeout = safetyTimeout
		s.IdleTimeout = 3 * hotWait
	})
	conns := make([]net.Conn, n)
	readers := make([]*bufio.Reader, n)
	for i := range conns {
		conns[i] = dial(t, addr)
		readers[i] = bufio.NewReader(conns[i])
	}
	round := func(name string) {
		for _, c := range conns {
			if _, err := io.WriteString(c, get("/cl?n=3")); err != nil {
				t.Fatalf("%s: %v", name, err)
			}
		}
		for i, br := range readers {
			_ = conns[i].SetReadDeadline(time.Now().Add(safetyTimeout))
			if a, err := readAnswer(br, "GET"); err != nil || a.Body != "abc" || a.Close {
				t.Fatalf("%s, connection %d: %+v %v", name, i, a, err)
			}
		}
	}
	round("first requests")
	// Past the hot wait every connection is parked (other tests may
	// have parked theirs too: at least ours).
	time.Sleep(hotWait + 300*time.Millisecond)
	poller.mu.Lock()
	parked := len(poller.conns)
	poller.mu.Unlock()
	if parked < n {
		t.Fatalf("%d connections parked, want at least %d", parked, n)
	}
	round("after the hot wait")
}
