package main

import (
	"bytes"
	"net"
	"strings"
	"testing"
	"time"
)

func TestIdleBudget(t *testing.T) {
	for _, c := range []struct {
		want    int
		limit   uint64
		open    int
		n       int
		limited bool
	}{
		{want: 2000, limit: 1 << 20, open: 10, n: 2000},
		{want: 100000, limit: 20000, open: 12, n: 20000 - 12 - fdReserve, limited: true},
		{want: 20000 - 12 - fdReserve, limit: 20000, open: 12, n: 20000 - 12 - fdReserve},
		{want: 10, limit: 50, open: 12, n: 0, limited: true},
	} {
		n, limited := idleBudget(c.want, c.limit, c.open)
		if n != c.n || limited != c.limited {
			t.Errorf("idleBudget(%d, %d, %d) = %d, %v; want %d, %v", c.want, c.limit, c.open, n, limited, c.n, c.limited)
		}
	}
}

// A reading that failed is shown as "?" with its reason, never as a zero
// that reads like a process that grew by nothing.
func TestWriteIdleFailedReading(t *testing.T) {
	var b bytes.Buffer
	writeIdle(&b, []idleResult{
		{Target: "nginx", Wanted: 100, Opened: 100, OpenAfter: 100, RSSBeforeKiB: 14 << 10, beforeOK: true,
			RSSError: "RSS after: pid 7: open /proc/7/status: too many open files"},
		{Target: "portunus", Wanted: 100, Opened: 100, OpenAfter: 90, RSSBeforeKiB: 20 << 10, RSSAfterKiB: 21 << 10, RSSAnonAfterKiB: 2 << 10,
			KiBPerConn: 10.24, beforeOK: true, afterOK: true},
	})
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	if len(lines) != 3 {
		t.Fatalf("table:\n%s", b.String())
	}
	nginx, portunus := strings.Fields(lines[1]), lines[2]
	// target wanted opened open before(2 fields) after anon perConn held(3) why...
	if nginx[6] != "?" || nginx[7] != "?" || nginx[8] != "?" {
		t.Errorf("failed reading not shown as ?: %q", lines[1])
	}
	if !strings.Contains(lines[1], "too many open files") || strings.Contains(lines[1], "0.0 MiB") {
		t.Errorf("nginx row: %q", lines[1])
	}
	if f := strings.Fields(portunus); f[3] != "90" {
		t.Errorf("portunus row's open column: %q", portunus)
	}
	for _, want := range []string{"20.0 MiB", "21.0 MiB", "2.0 MiB", "10.24"} {
		if !strings.Contains(portunus, want) {
			t.Errorf("portunus row lacks %q: %q", want, portunus)
		}
	}
	if strings.Contains(portunus, "?") {
		t.Errorf("portunus row has a ?: %q", portunus)
	}
}

// stillOpen tells the connections a server closed from the ones it keeps.
func TestStillOpen(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	const n, closed = 6, 2
	accepted := make(chan net.Conn, n)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted <- c
		}
	}()
	var conns []net.Conn
	for range n {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		conns = append(conns, c)
	}
	var server []net.Conn
	for range n {
		c := <-accepted
		defer c.Close()
		server = append(server, c)
	}
	if got := stillOpen(conns); got != n {
		t.Fatalf("stillOpen with every connection open = %d; want %d", got, n)
	}
	for _, c := range server[:closed] {
		c.Close()
	}
	// The FIN reaches the client side at once on loopback; allow a moment.
	deadline := time.Now().Add(2 * time.Second)
	got := stillOpen(conns)
	for got != n-closed && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
		got = stillOpen(conns)
	}
	if got != n-closed {
		t.Fatalf("stillOpen after the server closed %d = %d; want %d", closed, got, n-closed)
	}
}

// With -idle, nginx gets worker_connections for every idle connection:
// past them it would close idle ones to accept new ones.
func TestNginxConfigIdleConnections(t *testing.T) {
	old := nginxConnections
	defer func() { nginxConnections = old }()
	if conf := nginxConfig("/tmp/x", 8080, "127.0.0.1:9000", false); !strings.Contains(conf, "worker_connections 8192;") || !strings.Contains(conf, "worker_rlimit_nofile 16384;") {
		t.Errorf("default config:\n%s", conf)
	}
	nginxConnections = 101024
	if conf := nginxConfig("/tmp/x", 8080, "127.0.0.1:9000", false); !strings.Contains(conf, "worker_connections 101024;") || !strings.Contains(conf, "worker_rlimit_nofile 202048;") {
		t.Errorf("idle config:\n%s", conf)
	}
}
