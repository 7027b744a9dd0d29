// Package demo is a small echo service used as an upstream in demos,
// examples and tests. Every answer names the service, so a test behind a
// balancer can tell which target replied.
//
// Endpoints:
//
//	GET /healthz          200 "ok"
//	/status/{code}        that status (100..599) with a small JSON body
//	/delay/{duration}     waits (at most 30s; ends early when the client leaves), then echoes
//	/sse?n=5&interval=1s  text/event-stream: n events (at most 1000), flushed one by one
//	/ws                   WebSocket echo
//	/bytes/{n}            n pseudo-random bytes (at most 1 GiB), streamed
//	anything else         200 JSON echo of the request (first 64 KiB of the body)
package demo

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"golang.org/x/net/websocket"
)

// Limits of the demo endpoints.
const (
	MaxEchoBody   = 64 << 10
	MaxDelay      = 30 * time.Second
	MaxSSEEvents  = 1000
	MaxSSEPause   = 10 * time.Second
	MaxBytes      = 1 << 30
	maxWSMessage  = 1 << 20
	shutdownGrace = 5 * time.Second
)

// Echo is the JSON body of an echo answer.
type Echo struct {
	Service    string            `json:"service"`
	Method     string            `json:"method"`
	Host       string            `json:"host"`
	Path       string            `json:"path"`
	RawPath    string            `json:"raw_path"`
	Query      string            `json:"query"`
	Proto      string            `json:"proto"`
	RemoteAddr string            `json:"remote_addr"`
	Headers    map[string]string `json:"headers"` // several values joined with ", "
	Body       string            `json:"body"`
}

// Handler answers like a small echo service. name is reported in every answer.
func Handler(name string) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = io.WriteString(w, "ok")
	})
	mux.HandleFunc("/status/{code}", func(w http.ResponseWriter, r *http.Request) {
		code, err := strconv.Atoi(r.PathValue("code"))
		if err != nil || code < 100 || code > 599 {
			writeJSON(w, http.StatusBadRequest, map[string]any{"service": name, "error": "status must be 100..599"})
			return
		}
		writeJSON(w, code, map[string]any{"service": name, "status": code})
	})
	mux.HandleFunc("/delay/{duration}", func(w http.ResponseWriter, r *http.Request) {
		d, err := time.ParseDuration(r.PathValue("duration"))
		if err != nil || d < 0 || d > MaxDelay {
			writeJSON(w, http.StatusBadRequest, map[string]any{"service": name, "error": "delay must be a duration up to 30s"})
			return
		}
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-t.C:
		case <-r.Context().Done():
			return // the client left
		}
		echo(w, r, name)
	})
	mux.HandleFunc("/sse", func(w http.ResponseWriter, r *http.Request) { sse(w, r, name) })
	mux.Handle("/ws", websocket.Server{
		// No Origin check: this is a test service, and gateways under test
		// may forward requests without Origin.
		Handler: func(ws *websocket.Conn) {
			ws.MaxPayloadBytes = maxWSMessage
			wsEcho(ws)
		},
	})
	mux.HandleFunc("/bytes/{n}", func(w http.ResponseWriter, r *http.Request) {
		n, err := strconv.ParseInt(r.PathValue("n"), 10, 64)
		if err != nil || n < 0 || n > MaxBytes {
			writeJSON(w, http.StatusBadRequest, map[string]any{"service": name, "error": "n must be 0..1073741824"})
			return
		}
		streamBytes(w, r, n)
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { echo(w, r, name) })
	return serviceHeader(name, mux)
}

// serviceHeader names the service in a header too, for answers whose body
// is not JSON (SSE, bytes).
func serviceHeader(name string, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Demo-Service", name)
		h.ServeHTTP(w, r)
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func echo(w http.ResponseWriter, r *http.Request, name string) {
	body, _ := io.ReadAll(io.LimitReader(r.Body, MaxEchoBody))
	headers := make(map[string]string, len(r.Header))
	for k, v := range r.Header {
		headers[k] = strings.Join(v, ", ")
	}
	writeJSON(w, http.StatusOK, Echo{
		Service: name, Method: r.Method, Host: r.Host, Path: r.URL.Path, RawPath: r.URL.EscapedPath(),
		Query: r.URL.RawQuery, Proto: r.Proto, RemoteAddr: r.RemoteAddr, Headers: headers, Body: string(body),
	})
}

func sse(w http.ResponseWriter, r *http.Request, name string) {
	q := r.URL.Query()
	n := 5
	if s := q.Get("n"); s != "" {
		v, err := strconv.Atoi(s)
		if err != nil || v < 0 || v > MaxSSEEvents {
			writeJSON(w, http.StatusBadRequest, map[string]any{"service": name, "error": "n must be 0..1000"})
			return
		}
		n = v
	}
	interval := time.Second
	if s := q.Get("interval"); s != "" {
		v, err := time.ParseDuration(s)
		if err != nil || v < 0 || v > MaxSSEPause {
			writeJSON(w, http.StatusBadRequest, map[string]any{"service": name, "error": "interval must be a duration up to 10s"})
			return
		}
		interval = v
	}
	rc := http.NewResponseController(w)
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	_ = rc.Flush()
	t := time.NewTicker(max(interval, time.Microsecond))
	defer t.Stop()
	for i := range n {
		if i > 0 && interval > 0 {
			select {
			case <-t.C:
			case <-r.Context().Done():
				return
			}
		}
		data, _ := json.Marshal(map[string]any{"service": name, "seq": i})
		if _, err := io.WriteString(w, "id: "+strconv.Itoa(i)+"\nevent: tick\ndata: "+string(data)+"\n\n"); err != nil {
			return
		}
		if err := rc.Flush(); err != nil {
			return
		}
	}
}

// wsFrame is one WebSocket message with its frame type (text or binary).
type wsFrame struct {
	data []byte
	typ  byte
}

// wsFrames is a codec that keeps the frame type, which websocket.Message
// does not report on receive.
var wsFrames = websocket.Codec{
	Marshal: func(v any) ([]byte, byte, error) {
		f := v.(wsFrame)
		return f.data, f.typ, nil
	},
	Unmarshal: func(data []byte, typ byte, v any) error {
		f := v.(*wsFrame)
		f.data, f.typ = data, typ
		return nil
	},
}

// wsEcho sends every message back with its frame type.
func wsEcho(ws *websocket.Conn) {
	for {
		var f wsFrame
		if err := wsFrames.Receive(ws, &f); err != nil {
			return
		}
		if err := wsFrames.Send(ws, f); err != nil {
			return
		}
	}
}

func streamBytes(w http.ResponseWriter, r *http.Request, n int64) {
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Length", strconv.FormatInt(n, 10))
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodHead {
		return
	}
	// Seeded by n: the same request gives the same bytes, so tests can compare.
	rng := rand.NewChaCha8([32]byte{byte(n), byte(n >> 8), byte(n >> 16), byte(n >> 24)})
	buf := make([]byte, 32<<10)
	for n > 0 {
		chunk := buf[:min(int64(len(buf)), n)]
		_, _ = rng.Read(chunk)
		if _, err := w.Write(chunk); err != nil {
			return
		}
		n -= int64(len(chunk))
	}
}

// Start listens on addr and serves Handler(name) until ctx ends or stop is
// called; either way the server shuts down gracefully (at most 5s, then
// connections are closed). stop waits for that and may be called more than once.
func Start(ctx context.Context, addr, name string) (stop func(), err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	return Serve(ctx, ln, name), nil
}

// Serve is Start on a listener the caller opened (for example on port 0,
// to learn the address from ln.Addr()).
func Serve(ctx context.Context, ln net.Listener, name string) (stop func()) {
	srv := &http.Server{
		Handler:           Handler(name),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       60 * time.Second,
		MaxHeaderBytes:    64 << 10,
		// No WriteTimeout: /bytes and /sse stream for as long as they need.
	}
	ctx, cancel := context.WithCancel(ctx)
	served := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(served)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			cancel() // the listener failed: shut down
		}
	}()
	go func() {
		defer close(done)
		<-ctx.Done()
		sctx, scancel := context.WithTimeout(context.Background(), shutdownGrace)
		defer scancel()
		if srv.Shutdown(sctx) != nil {
			_ = srv.Close()
		}
		<-served
	}()
	return func() {
		cancel()
		<-done
	}
}
