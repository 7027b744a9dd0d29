package upstream

import (
	"sync"
	"testing"

	"github.com/portunus-gw/portunus/internal/config"
)

func TestTargetInFlight(t *testing.T) {
	t.Parallel()
	p, err := NewPool(config.Upstream{Name: "u", Targets: []config.Target{{URL: "http://127.0.0.1:1"}}})
	if err != nil {
		t.Fatal(err)
	}
	tg := p.Targets()[0]
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 1000; j++ {
				tg.Begin()
				tg.End()
			}
		}()
	}
	wg.Wait()
	if got := tg.InFlight(); got != 0 {
		t.Errorf("after balanced Begin/End, InFlight = %d; want 0", got)
	}
	tg.Begin()
	tg.Begin()
	if got := tg.InFlight(); got != 2 {
		t.Errorf("after two Begin, InFlight = %d; want 2", got)
	}
}
