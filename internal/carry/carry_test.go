package carry

import (
	"errors"
	"sync/atomic"
	"testing"
	"time"
)

type pool struct {
	name   string
	closed atomic.Int32
}

func (p *pool) Close() error { p.closed.Add(1); return nil }

type poolCfg struct {
	MaxConns int      `json:"max_conns"`
	Targets  []string `json:"targets"`
}

func newPool(name string, made *int) func() (*pool, error) {
	return func() (*pool, error) { *made++; return &pool{name: name}, nil }
}

func TestReuseUnchangedCloseDropped(t *testing.T) {
	t.Parallel()
	r := NewRegistry()
	made := 0
	cfgA := poolCfg{MaxConns: 10, Targets: []string{"a:1"}}
	cfgB := poolCfg{MaxConns: 5, Targets: []string{"b:1"}}

	b1 := r.Begin()
	a1, err := Get(b1, Key("upstream", "a", cfgA), newPool("a", &made))
	if err != nil {
		t.Fatalf("Get a: %v", err)
	}
	bPool, _ := Get(b1, Key("upstream", "b", cfgB), newPool("b", &made))
	again, _ := Get(b1, Key("upstream", "a", cfgA), newPool("a", &made))
	if again != a1 {
		t.Error("second Get in one build: got a new object; want the same")
	}
	b1.Commit()
	if made != 2 || r.Len() != 2 {
		t.Fatalf("after first build: got %d made, %d live; want 2, 2", made, r.Len())
	}

	// Second generation: a unchanged, b dropped, c new; a's config changed copy is a new key.
	b2 := r.Begin()
	a2, _ := Get(b2, Key("upstream", "a", poolCfg{MaxConns: 10, Targets: []string{"a:1"}}), newPool("a", &made))
	c, _ := Get(b2, Key("upstream", "c", cfgB), newPool("c", &made))
	if bPool.closed.Load() != 0 {
		t.Error("b closed before Commit; want it alive until the new generation is live")
	}
	b2.Commit()

	if a2 != a1 {
		t.Error("unchanged config: got a new object; want the live one reused")
	}
	if got := a1.closed.Load(); got != 0 {
		t.Errorf("reused object closed %d times; want 0", got)
	}
	if got := bPool.closed.Load(); got != 1 {
		t.Errorf("dropped object closed %d times; want 1", got)
	}
	if got := c.closed.Load(); got != 0 {
		t.Errorf("new object closed %d times; want 0", got)
	}
	if made != 3 {
		t.Errorf("got %d objects made; want 3", made)
	}

	// Changed config → new object, old one closed.
	b3 := r.Begin()
	a3, _ := Get(b3, Key("upstream", "a", poolCfg{MaxConns: 20, Targets: []string{"a:1"}}), newPool("a", &made))
	b3.Commit()
	if a3 == a1 || a1.closed.Load() != 1 || c.closed.Load() != 1 {
		t.Errorf("changed config: got same=%v, old closed %d, c closed %d; want new object, 1, 1", a3 == a1, a1.closed.Load(), c.closed.Load())
	}

	r.Close()
	if a3.closed.Load() != 1 || r.Len() != 0 {
		t.Errorf("Registry.Close: got closed %d, %d live; want 1, 0", a3.closed.Load(), r.Len())
	}
}

func TestAbortClosesOnlyNew(t *testing.T) {
	t.Parallel()
	r := NewRegistry()
	made := 0
	b1 := r.Begin()
	live, _ := Get(b1, Key("cache", "main", 1), newPool("live", &made))
	b1.Commit()

	b2 := r.Begin()
	reused, _ := Get(b2, Key("cache", "main", 1), newPool("live", &made))
	fresh, _ := Get(b2, Key("cache", "other", 1), newPool("fresh", &made))
	b2.Abort()
	b2.Commit() // after Abort: no effect

	if reused != live {
		t.Fatal("got a new object for an unchanged key; want the live one")
	}
	if got := live.closed.Load(); got != 0 {
		t.Errorf("live object closed %d times by Abort; want 0", got)
	}
	if got := fresh.closed.Load(); got != 1 {
		t.Errorf("object created by the aborted build closed %d times; want 1", got)
	}
	if r.Len() != 1 {
		t.Errorf("got %d live after Abort; want 1 (the previous generation)", r.Len())
	}
	if _, err := Get(b2, "x", newPool("x", &made)); !errors.Is(err, ErrBuildDone) {
		t.Errorf("Get on a finished build: got %v; want ErrBuildDone", err)
	}
}

func TestGetErrors(t *testing.T) {
	t.Parallel()
	r := NewRegistry()
	b := r.Begin()
	defer b.Abort()
	boom := errors.New("boom")
	if _, err := Get(b, "k", func() (*pool, error) { return nil, boom }); !errors.Is(err, boom) {
		t.Errorf("create error: got %v; want boom", err)
	}
	if _, err := Get(b, "k", func() (*pool, error) { return &pool{}, nil }); err != nil {
		t.Errorf("Get after a failed create: got %v; want a fresh object", err)
	}
	if _, err := Get(b, "k", func() (string, error) { return "s", nil }); err == nil {
		t.Error("same key, other type: got nil error; want one")
	}
}

func TestOneBuildAtATime(t *testing.T) {
	t.Parallel()
	r := NewRegistry()
	b1 := r.Begin()
	started := make(chan *Build)
	go func() { started <- r.Begin() }()
	select {
	case <-started:
		t.Fatal("second Begin returned while the first build was active; want it to wait")
	case <-time.After(50 * time.Millisecond):
	}
	b1.Commit()
	select {
	case b2 := <-started:
		b2.Abort()
	case <-time.After(10 * time.Second):
		t.Fatal("second Begin still waiting 10s after the first build committed")
	}
}

func TestKey(t *testing.T) {
	t.Parallel()
	type cfg struct {
		A int
		M map[string]int
	}
	base := Key("ratelimit", "r1", cfg{A: 1, M: map[string]int{"x": 1, "y": 2}})
	for _, tc := range []struct {
		name string
		key  string
		same bool
	}{
		{"same config, map built in another order", Key("ratelimit", "r1", cfg{A: 1, M: map[string]int{"y": 2, "x": 1}}), true},
		{"other value", Key("ratelimit", "r1", cfg{A: 2, M: map[string]int{"x": 1, "y": 2}}), false},
		{"other name", Key("ratelimit", "r2", cfg{A: 1, M: map[string]int{"x": 1, "y": 2}}), false},
		{"other kind", Key("cache", "r1", cfg{A: 1, M: map[string]int{"x": 1, "y": 2}}), false},
		{"unencodable config still works", Key("ratelimit", "r1", func() {}), false},
	} {
		if got := tc.key == base; got != tc.same {
			t.Errorf("%s: got same=%v (%s vs %s); want %v", tc.name, got, tc.key, base, tc.same)
		}
	}
}
