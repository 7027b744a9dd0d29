package gateway

import (
	"context"
	"net/http/httptest"
	"testing"
	"time"
)

// startedCtx is a request context whose server read the head at t.
type startedCtx struct {
	context.Context
	t time.Time
}

func (c startedCtx) Started() time.Time { return c.t }

// TestRequestStart: a request's start is its server's reading when the
// context has one (the HTTP/1.x server's), else the clock now.
func TestRequestStart(t *testing.T) {
	at := time.Now().Add(-time.Minute)
	r := httptest.NewRequest("GET", "/", nil)
	if got := requestStart(r.WithContext(startedCtx{context.Background(), at})); !got.Equal(at) {
		t.Fatalf("with the server's reading: %v, want %v", got, at)
	}
	for name, ctx := range map[string]context.Context{
		"no reading":    startedCtx{context.Background(), time.Time{}},
		"plain context": context.Background(),
	} {
		before := time.Now()
		got := requestStart(r.WithContext(ctx))
		if got.Before(before) || got.After(time.Now()) {
			t.Fatalf("%s: %v, want the clock now (%v)", name, got, before)
		}
	}
}
