package store

import (
	"context"
	"sync"
)

// memSub is one in-process subscription: a bounded queue drained by its own
// goroutine, so fn calls for one subscription never overlap and a slow
// subscriber slows publishers (bounded by their ctx) instead of growing memory.
type memSub struct {
	ch       chan []byte
	done     chan struct{}
	stopOnce sync.Once
}

func (s *memSub) stop() { s.stopOnce.Do(func() { close(s.done) }) }

// Publish implements Store. It waits while a subscriber's queue is full,
// for as long as ctx allows.
func (m *Memory) Publish(ctx context.Context, channel string, msg []byte) error {
	if m.closed.Load() {
		return ErrClosed
	}
	m.psMu.Lock()
	set := m.subs[channel]
	targets := make([]*memSub, 0, len(set))
	for s := range set {
		targets = append(targets, s)
	}
	m.psMu.Unlock()
	if len(targets) == 0 {
		return nil
	}
	msg = append([]byte(nil), msg...) // the caller may reuse its buffer
	for _, s := range targets {
		select {
		case s.ch <- msg:
		case <-s.done:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// Subscribe implements Store.
func (m *Memory) Subscribe(_ context.Context, channel string, fn func(msg []byte)) (func(), error) {
	s := &memSub{ch: make(chan []byte, subscriberQueue), done: make(chan struct{})}
	m.psMu.Lock()
	if m.closed.Load() {
		m.psMu.Unlock()
		return nil, ErrClosed
	}
	set := m.subs[channel]
	if set == nil {
		set = make(map[*memSub]struct{})
		m.subs[channel] = set
	}
	set[s] = struct{}{}
	m.subsWG.Add(1)
	m.psMu.Unlock()

	go func() {
		defer m.subsWG.Done()
		for {
			select {
			case <-s.done:
				return
			case msg := <-s.ch:
				fn(msg)
			}
		}
	}()
	cancel := func() {
		m.psMu.Lock()
		if set := m.subs[channel]; set != nil {
			delete(set, s)
			if len(set) == 0 {
				delete(m.subs, channel)
			}
		}
		m.psMu.Unlock()
		s.stop()
	}
	return cancel, nil
}
