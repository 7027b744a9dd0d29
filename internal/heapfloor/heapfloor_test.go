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
		live, floor uint64
		want        int
	}{
		{0, 16 * mib, 400},       // capped: 4 MiB × 400 % = the floor
		{1 * mib, 16 * mib, 400}, // goal max(5, 16) MiB
		{4 * mib, 16 * mib, 300}, // goal max(16, 12) MiB
		{6 * mib, 16 * mib, 166}, // goal 15.96 MiB
		{8 * mib, 16 * mib, 100}, // twice the live heap is the floor
		{100 * mib, 16 * mib, 100},
		{1 * mib, 2 * mib, 100},
	} {
		if got := Percent(c.live, c.floor); got != c.want {
			t.Errorf("Percent(%d MiB, %d MiB) = %d, want %d", c.live/mib, c.floor/mib, got, c.want)
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
	runtime.GC()
	deadline := time.Now().Add(5 * time.Second)
	for readMetric("/gc/gogc:percent") <= 100 && time.Now().Before(deadline) {
		runtime.GC() // the cleanup of the sentinel runs after a collection
		time.Sleep(10 * time.Millisecond)
	}
	if p := readMetric("/gc/gogc:percent"); p <= 100 {
		t.Fatalf("GOGC still %d with a live heap of %d bytes", p, readMetric("/gc/heap/live:bytes"))
	}
	runtime.GC()
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
