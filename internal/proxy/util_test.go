package proxy_test

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

func newUpstreamFunc(t *testing.T, f http.HandlerFunc) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	return srv
}

func timeAfter() <-chan time.Time { return time.After(waitLimit) }
