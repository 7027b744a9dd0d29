package heapfloor

import (
	"os"
	"runtime"
	"runtime/metrics"
	"testing"
	"time"
)

func TestPercent(t *testing.T) {
	const mib = 1 << 20
	for _, c := range []struct {
		live, roots, floor uint64
		want               int
	}{
		{0, 0, 16 * mib, 400},       // capped: 4 MiB × 400 % = the floor
		{1 * mib, 0, 16 * mib, 400}, // goal max(5, 16) MiB
		{4 * mib, 0, 16 * mib, 300}, // goal max(16, 12) MiB
		{6 * mib, 0, 16 * mib, 166}, // goal 15.96 MiB
		{8 * mib, 0, 16 * mib, 100}, // twice the live heap is the floor
		{100 * mib, 0, 16 * mib, 100},
		{1 * mib, 0, 2 * mib, 100},
		// Stacks and globals count towards the goal: 4 + (4 + 2) × 2 = 16.
		{4 * mib, 2 * mib, 16 * mib, 200},
		// A thousand busy connections' stacks: at GOGC=100 the goal is
		// 4.5 + (4.5 + 9) = 18 MiB, above the floor.
		{9 * mib / 2, 9 * mib, 16 * mib, 100},
	} {
		if got := Percent(c.live, c.roots, c.floor); got != c.want {
			t.Errorf("Percent(%d MiB, %d MiB, %d MiB) = %d, want %d", c.live/mib, c.roots/mib, c.floor/mib, got, c.want)
		}
	}
}

func readMetric(name string) uint64 {
	s := []metrics.Sample{{Name: name}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// A small live heap gets the floor as its goal after a collection, and
// Stop gives the runtime its default back.
func TestStartHoldsFloor(t *testing.T) {
	if _, set := os.LookupEnv("GOGC"); set {
		t.Skip("GOGC is set: Start steps aside (TestEnvironmentWins)")
	}
	if _, set := os.LookupEnv("GOMEMLIMIT"); set {
		t.Skip("GOMEMLIMIT is set: Start steps aside (TestEnvironmentWins)")
	}
	const floor = 32 << 20 // well above this test binary's live heap
	tu := Start(floor)
	if tu == nil {
		t.Fatal("Start returned nil without GOGC or GOMEMLIMIT")
	}
	// The floor holds while the process allocates the floor or more a
	// second: garbage at that pace between collections.
	busy := func() {
		for range 64 {
			sink = make([]byte, 1<<20)
		}
		runtime.GC() // the sentinel's cleanup runs after a collection
	}
	deadline := time.Now().Add(5 * time.Second)
	for readMetric("/gc/gogc:percent") <= 100 && time.Now().Before(deadline) {
		busy()
		time.Sleep(time.Millisecond)
	}
	if p := readMetric("/gc/gogc:percent"); p <= 100 {
		t.Fatalf("GOGC still %d with a live heap of %d bytes", p, readMetric("/gc/heap/live:bytes"))
	}
	if goal := readMetric("/gc/heap/goal:bytes"); goal < floor*9/10 {
		t.Fatalf("heap goal %d bytes, want about the floor %d (live %d)", goal, floor, readMetric("/gc/heap/live:bytes"))
	}
	tu.Stop()
	if p := readMetric("/gc/gogc:percent"); p != 100 {
		t.Fatalf("after Stop GOGC = %d, want 100", p)
	}
	// A later collection's cleanup must not tune again.
	runtime.GC()
	time.Sleep(50 * time.Millisecond)
	runtime.GC()
	if p := readMetric("/gc/gogc:percent"); p != 100 {
		t.Fatalf("tuned again after Stop: GOGC = %d", p)
	}
}

var sink []byte

// A process that allocates less than the floor a second keeps the
// runtime's default.
func TestIdleKeepsDefault(t *testing.T) {
	if _, set := os.LookupEnv("GOGC"); set {
		t.Skip("GOGC is set")
	}
	if _, set := os.LookupEnv("GOMEMLIMIT"); set {
		t.Skip("GOMEMLIMIT is set")
	}
	tu := Start(64 << 30) // 64 GiB a second: never reached here
	defer tu.Stop()
	for range 5 {
		sink = make([]byte, 1<<20)
		runtime.GC()
		time.Sleep(20 * time.Millisecond) // the cleanup runs
	}
	if p := readMetric("/gc/gogc:percent"); p != 100 {
		t.Fatalf("GOGC = %d for an idle process, want 100", p)
	}
	tu.mu.Lock()
	chose := tu.current
	tu.mu.Unlock()
	if chose != 100 {
		t.Fatalf("tuner chose %d", chose)
	}
}

func TestEnvironmentWins(t *testing.T) {
	for _, env := range []string{"GOGC", "GOMEMLIMIT"} {
		t.Run(env, func(t *testing.T) {
			t.Setenv(env, "off")
			if tu := Start(16 << 20); tu != nil {
				tu.Stop()
				t.Fatalf("Start tuned the collector although %s is set", env)
			}
		})
	}
}
