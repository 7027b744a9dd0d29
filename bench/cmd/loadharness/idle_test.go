package main

import (
	"bytes"
	"strings"
	"testing"
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
		{Target: "nginx", Wanted: 100, Opened: 100, RSSBeforeKiB: 14 << 10, beforeOK: true,
			RSSError: "RSS after: pid 7: open /proc/7/status: too many open files"},
		{Target: "portunus", Wanted: 100, Opened: 100, RSSBeforeKiB: 20 << 10, RSSAfterKiB: 21 << 10, RSSAnonAfterKiB: 2 << 10,
			KiBPerConn: 10.24, beforeOK: true, afterOK: true},
	})
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	if len(lines) != 3 {
		t.Fatalf("table:\n%s", b.String())
	}
	nginx, portunus := strings.Fields(lines[1]), lines[2]
	// target wanted opened before(2 fields) after anon perConn held(2) why...
	if nginx[5] != "?" || nginx[6] != "?" || nginx[7] != "?" {
		t.Errorf("failed reading not shown as ?: %q", lines[1])
	}
	if !strings.Contains(lines[1], "too many open files") || strings.Contains(lines[1], "0.0 MiB") {
		t.Errorf("nginx row: %q", lines[1])
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
