// Package admin serves the admin listener: health and readiness, metrics,
// and the /api/v1 router later capabilities hang their endpoints on.
//
// Access: with a token, /api/v1 (and anything registered as protected)
// needs "Authorization: Bearer <token>", compared in constant time; without
// a token only loopback clients are served at all (the config refuses a
// non-loopback admin address without a token). /healthz, /readyz and
// /metrics answer without the token when public_health is true.
package admin

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"net/http"
	"net/http/pprof"
	"net/netip"
	"strings"

	"github.com/portunus-gw/portunus/internal/problem"
)

// Options configure a Server.
type Options struct {
	// Token is the bearer token; empty means loopback clients only.
	Token string
	// PublicHealth lets health, readiness and metrics answer without the token.
	PublicHealth bool
	// Pprof mounts /debug/pprof (protected).
	Pprof bool
	// Ready reports whether the gateway serves traffic (for /readyz).
	Ready func() bool
	// Metrics serves /metrics; nil = not mounted.
	Metrics http.Handler
}

// Server is the admin HTTP handler.
type Server struct {
	mux       *http.ServeMux
	tokenHash [32]byte
	hasToken  bool
	opts      Options
	// static are path prefixes of data-free files (the dashboard) that
	// need no token; the loopback rule still applies without one.
	static []string
}

// New builds the admin handler with its built-in endpoints.
func New(o Options) *Server {
	s := &Server{mux: http.NewServeMux(), opts: o}
	if o.Token != "" {
		s.hasToken = true
		s.tokenHash = sha256.Sum256([]byte(o.Token))
	}
	s.mux.HandleFunc("GET /healthz", s.health)
	s.mux.HandleFunc("GET /readyz", s.ready)
	if o.Metrics != nil {
		s.mux.Handle("GET /metrics", o.Metrics)
	}
	if o.Pprof {
		s.mux.HandleFunc("/debug/pprof/", pprof.Index)
		s.mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		s.mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		s.mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		s.mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	s.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		problem.Write(w, r, problem.Problem{Code: problem.NotFound, Detail: "no admin endpoint " + r.URL.Path})
	})
	return s
}

// Handle registers an admin endpoint (a net/http ServeMux pattern such as
// "POST /api/v1/reload"). Every endpoint but health is protected.
func (s *Server) Handle(pattern string, h http.Handler) { s.mux.Handle(pattern, h) }

// HandleStatic serves h for GET and HEAD under prefix (ending in "/"),
// without the token: a browser navigation cannot send a bearer header, so
// files that hold no data (the dashboard, which then calls the protected
// API with the token) are served to any client the listener serves.
// Without a token only loopback clients are served, as everywhere.
func (s *Server) HandleStatic(prefix string, h http.Handler) {
	s.static = append(s.static, prefix)
	s.mux.Handle("GET "+prefix, h)
	s.mux.Handle("GET "+strings.TrimSuffix(prefix, "/"), http.RedirectHandler(prefix, http.StatusMovedPermanently))
}

// TokenRequired reports whether protected endpoints need the bearer token.
func (s *Server) TokenRequired() bool { return s.hasToken }

// ServeHTTP checks access, then dispatches.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !s.allowed(r) {
		if s.hasToken {
			w.Header().Set("WWW-Authenticate", `Bearer realm="portunus-admin"`)
			problem.Write(w, r, problem.Problem{Code: problem.Unauthorized, Detail: "the admin API needs the admin bearer token"})
			return
		}
		problem.Write(w, r, problem.Problem{Code: problem.Forbidden, Detail: "without an admin token only loopback clients are served"})
		return
	}
	s.mux.ServeHTTP(w, r)
}

func (s *Server) allowed(r *http.Request) bool {
	public := (s.opts.PublicHealth && isPublicPath(r.URL.Path)) || s.isStatic(r)
	if !s.hasToken {
		// No token: loopback only, for everything.
		return isLoopback(r.RemoteAddr)
	}
	if public {
		return true
	}
	auth := r.Header.Get("Authorization")
	const prefix = "Bearer "
	if len(auth) <= len(prefix) || !strings.EqualFold(auth[:len(prefix)], prefix) {
		return false
	}
	// Hash both sides so the comparison takes the same time whatever
	// the length of the presented token.
	got := sha256.Sum256([]byte(auth[len(prefix):]))
	return subtle.ConstantTimeCompare(got[:], s.tokenHash[:]) == 1
}

func (s *Server) isStatic(r *http.Request) bool {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return false
	}
	for _, p := range s.static {
		if strings.HasPrefix(r.URL.Path, p) || r.URL.Path == strings.TrimSuffix(p, "/") {
			return true
		}
	}
	return false
}

func isPublicPath(p string) bool {
	return p == "/healthz" || p == "/readyz" || p == "/metrics"
}

func isLoopback(remote string) bool {
	ap, err := netip.ParseAddrPort(remote)
	if err != nil {
		return false
	}
	return ap.Addr().Unmap().IsLoopback()
}

func (s *Server) health(w http.ResponseWriter, r *http.Request) {
	WriteJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

func (s *Server) ready(w http.ResponseWriter, r *http.Request) {
	if s.opts.Ready != nil && !s.opts.Ready() {
		w.Header().Set("Retry-After", "1")
		WriteJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "not ready"})
		return
	}
	WriteJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}

// WriteJSON writes v as an indented JSON answer.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		problem.Write(w, nil, problem.Problem{Code: problem.Internal, Detail: err.Error()})
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}
