package auth

import (
	"net"
	"net/http"
	"sync/atomic"
	"time"
)

// NewServiceClient is the HTTP client auth methods use to ask their
// services (introspection endpoints, forward-auth services): every phase
// bounded by timeout, no redirects followed (a 3xx is the service's answer,
// not a place to go), and no proxy taken from the environment.
func NewServiceClient(timeout time.Duration, idleConns int) *http.Client {
	tr := &http.Transport{
		DialContext:           (&net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second}).DialContext,
		TLSHandshakeTimeout:   timeout,
		ResponseHeaderTimeout: timeout,
		MaxIdleConns:          idleConns,
		MaxIdleConnsPerHost:   idleConns,
		IdleConnTimeout:       90 * time.Second,
		ForceAttemptHTTP2:     true,
	}
	return &http.Client{
		Transport:     tr,
		Timeout:       timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// WarnLimiter lets a warning through at most once per second, so a down
// service under load does not flood the log. Its zero value is ready.
type WarnLimiter struct{ last atomic.Int64 }

// Allow reports whether a warning may be logged now.
func (w *WarnLimiter) Allow() bool {
	now := time.Now().UnixNano()
	last := w.last.Load()
	return now-last >= int64(time.Second) && w.last.CompareAndSwap(last, now)
}
