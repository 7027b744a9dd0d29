package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/portunus-gw/portunus/internal/config"
	"github.com/portunus-gw/portunus/internal/edge/connlimit"
	"github.com/portunus-gw/portunus/internal/edge/h1server"
	"github.com/portunus-gw/portunus/internal/edge/tlsconf"
	"github.com/portunus-gw/portunus/internal/problem"
	"github.com/portunus-gw/portunus/internal/telemetry"
)

// listener is one open public listener and the server on it.
type listener struct {
	key string
	cfg config.Listener
	// trusted are the PROXY protocol peers the socket was wrapped with
	// (nil unless cfg.ProxyProtocol); part of the listener's identity,
	// since the wrapper is built once per socket.
	trusted []netip.Prefix
	// tls owns the certificates of a TLS listener; it lives as long as
	// the listener and is closed when the listener is drained.
	tls  *tlsconf.Manager
	ln   net.Listener
	srv  server
	done chan struct{}
}

// servedByH1 reports whether the gateway's own HTTP/1.x server serves
// l: a plain listener without h2c; net/http serves TLS and h2c (and
// every listener when PORTUNUS_HTTP1_SERVER=stdlib).
func (l *listener) servedByH1() bool {
	return l.tls == nil && !l.cfg.H2C && os.Getenv(envHTTP1Server) != "stdlib"
}

// listen opens l's socket. One the HTTP/1.x server serves leaves TCP
// keep-alive off at accept, four socket options a connection that
// carries one request does not need: the server switches it on for the
// connections that can stay silent for long (streams, WebSocket; see
// h1server/keepalive.go). net/http's listeners keep net.Listen's
// keep-alive on every connection.
func (l *listener) listen() (net.Listener, error) {
	if l.servedByH1() {
		lc := net.ListenConfig{KeepAlive: -1}
		return lc.Listen(context.Background(), "tcp", l.cfg.Address)
	}
	return net.Listen("tcp", l.cfg.Address)
}

// listenerSet opens, keeps and closes public listeners as configs change.
type listenerSet struct {
	mu      sync.Mutex
	handler func(*config.Limits) http.Handler
	// metrics counts each listener's connections (nil: not counted).
	metrics *telemetry.Metrics
	log     *slog.Logger
	open    map[string]*listener
	// draining are servers that stopped accepting and finish their
	// in-flight requests.
	draining sync.WaitGroup
}

func newListenerSet(h func(*config.Limits) http.Handler, log *slog.Logger) *listenerSet {
	return &listenerSet{handler: h, log: log, open: map[string]*listener{}}
}

// listenerKeys names each listener of cfg uniquely: its address, except
// that a repeated port-0 address (any free port, which validation allows
// more than once) gets "#index" appended.
func listenerKeys(cfg *config.Config) []string {
	keys := make([]string, len(cfg.Listeners))
	seen := map[string]bool{}
	for i, lc := range cfg.Listeners {
		k := lc.Address
		if seen[k] {
			k = lc.Address + "#" + strconv.Itoa(i)
		}
		seen[k] = true
		keys[i] = k
	}
	return keys
}

// trustedPrefixes parses the config's (already normalized) trusted_proxies.
func trustedPrefixes(cfg *config.Config) ([]netip.Prefix, error) {
	out := make([]netip.Prefix, 0, len(cfg.TrustedProxies))
	for _, s := range cfg.TrustedProxies {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return nil, err
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

// prepare binds every listener of cfg that is not open with the same
// settings yet, without serving. It returns a commit that starts serving
// the new ones and drains the ones cfg no longer has, and a rollback that
// closes what prepare bound. Certificates are loaded and addresses bound
// before anything is swapped, so a reload with a bad certificate or a
// taken address fails as a whole and the old config keeps serving.
func (ls *listenerSet) prepare(cfg *config.Config) (commit func(), rollback func(), err error) {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	keys := listenerKeys(cfg)
	trusted, err := trustedPrefixes(cfg)
	if err != nil {
		return nil, nil, config.ErrorList{cfg.ErrorAt("trusted_proxies", "%v", err)}
	}
	fresh := map[string]*listener{}
	keep := map[string]bool{}
	var errs config.ErrorList
	var changed []*listener
	var want []*listener // listeners to open, in config order
	var wantIdx []int
	for i, lc := range cfg.Listeners {
		l := &listener{key: keys[i], cfg: lc}
		if lc.ProxyProtocol {
			l.trusted = trusted
		}
		if old, ok := ls.open[l.key]; ok {
			if reflect.DeepEqual(old.cfg, l.cfg) && reflect.DeepEqual(old.trusted, l.trusted) {
				keep[l.key] = true
				continue
			}
			// Same address, new settings: the old socket must be
			// released before the new one can bind.
			changed = append(changed, old)
		}
		want = append(want, l)
		wantIdx = append(wantIdx, i)
	}
	closeManagers := func() {
		for _, l := range want {
			if l.tls != nil {
				_ = l.tls.Close()
				l.tls = nil
			}
		}
	}
	// Certificates first: a bad one must fail the reload before any
	// running socket is touched.
	for j, l := range want {
		if l.cfg.TLS == nil {
			continue
		}
		m, err := tlsconf.New(l.cfg.TLS, ls.log.With("listener", l.cfg.Address))
		if err != nil {
			errs = append(errs, cfg.ErrorAt(fmt.Sprintf("listeners[%d].tls", wantIdx[j]), "%v", err))
			continue
		}
		l.tls = m
	}
	if len(errs) > 0 {
		closeManagers()
		return nil, nil, errs
	}
	// Close changed listeners' sockets first (their servers drain), so
	// the new settings can bind the same address.
	for _, old := range changed {
		_ = old.ln.Close()
	}
	for j, l := range want {
		ln, err := l.listen()
		if err != nil {
			errs = append(errs, cfg.ErrorAt(fmt.Sprintf("listeners[%d].address", wantIdx[j]), "cannot listen: %v", err))
			continue
		}
		l.ln = ln
		l.done = make(chan struct{})
		fresh[l.key] = l
	}
	if len(errs) > 0 {
		for _, l := range fresh {
			_ = l.ln.Close()
		}
		closeManagers()
		// Changed listeners lost their socket: re-open them with their
		// old settings so the running config keeps serving.
		for _, old := range changed {
			if ln, err := old.listen(); err == nil {
				ls.restart(old, ln)
			} else {
				ls.log.Error("listener lost during failed reload", "address", old.cfg.Address, "error", err)
				ls.drain(old)
				delete(ls.open, old.key)
			}
		}
		return nil, nil, errs
	}
	commit = func() {
		ls.mu.Lock()
		defer ls.mu.Unlock()
		for key, l := range ls.open {
			if !keep[key] {
				ls.drain(l)
				delete(ls.open, key)
			}
		}
		for key, l := range fresh {
			ls.serve(l)
			ls.open[key] = l
		}
	}
	rollback = func() {
		for _, l := range fresh {
			_ = l.ln.Close()
			if l.tls != nil {
				_ = l.tls.Close()
			}
		}
	}
	return commit, rollback, nil
}

// restart serves an existing listener's settings on a new socket. The
// certificate manager passes to the new listener instead of being closed
// with the old one.
func (ls *listenerSet) restart(old *listener, ln net.Listener) {
	l := &listener{key: old.key, cfg: old.cfg, trusted: old.trusted, tls: old.tls, ln: ln, done: make(chan struct{})}
	old.tls = nil
	ls.drain(old)
	ls.serve(l)
	ls.open[old.key] = l
}

// HTTP/2 settings the config has no key for.
const (
	// h2SendPingTimeout: an HTTP/2 connection on which the client sent
	// nothing for this long is pinged, so a vanished peer holding
	// long-lived streams (gRPC streaming) is noticed.
	h2SendPingTimeout = 60 * time.Second
	// h2PingTimeout closes an HTTP/2 connection whose peer does not
	// answer that ping.
	h2PingTimeout = 15 * time.Second
	// h2WriteByteTimeout closes an HTTP/2 connection that accepts no
	// bytes for this long (a peer that stopped reading).
	h2WriteByteTimeout = 60 * time.Second
	// h2MaxReadFrameSize is the largest frame a client may send: the
	// protocol's initial value (RFC 9113 §4.2) rather than Go's 1 MiB,
	// which bounds what one frame can make the server buffer.
	h2MaxReadFrameSize = 16 << 10
)

// envHTTP1Server names the environment variable that puts plain
// listeners back on net/http's server ("stdlib"): for A/B measurements
// (the load harness's portunus-stdlib target) and as an escape hatch,
// not as config.
const envHTTP1Server = "PORTUNUS_HTTP1_SERVER"

// server is what serves a listener: net/http's server for TLS (ALPN,
// HTTP/2) and h2c, Portunus's own HTTP/1.x server for plain listeners.
type server interface {
	Serve(net.Listener) error
	Shutdown(context.Context) error
	Close() error
}

// newServer builds the server of a listener: the protocols it speaks, its
// limits and its handler (the gateway, or the HTTPS redirect, with HSTS
// on TLS listeners).
func (ls *listenerSet) newServer(l *listener) server {
	lim := l.cfg.Limits
	if lim == nil {
		lim = &config.Limits{}
	}
	var h http.Handler
	if rd := l.cfg.RedirectHTTPS; rd != nil && l.cfg.TLS == nil {
		h = newRedirectHandler(rd, int(lim.MaxURIBytes))
	} else {
		h = ls.handler(lim)
	}
	protos := new(http.Protocols)
	protos.SetHTTP1(true)
	switch {
	case l.cfg.TLS != nil:
		// ALPN offers h2 and http/1.1.
		protos.SetHTTP2(true)
		if hs := l.cfg.TLS.HSTS; hs != nil {
			h = newHSTSHandler(hs, h)
		}
	case l.cfg.H2C:
		// Prior knowledge only: net/http never honours "Upgrade: h2c".
		protos.SetUnencryptedHTTP2(true)
	}
	if l.servedByH1() {
		s := &h1server.Server{
			Handler:           h,
			ReadHeaderTimeout: lim.ReadHeaderTimeout.D(),
			WriteTimeout:      lim.WriteTimeout.D(),
			IdleTimeout:       lim.IdleTimeout.D(),
			MaxHeaderBytes:    int(lim.MaxHeaderBytes),
			ErrorLog:          slog.NewLogLogger(ls.log.Handler(), slog.LevelDebug),
		}
		if lm := ls.metrics.Listener(l.key); lm != nil {
			s.ConnState = lm.ConnState
		}
		return s
	}
	srv := &http.Server{
		Handler:           h,
		Protocols:         protos,
		ReadHeaderTimeout: lim.ReadHeaderTimeout.D(),
		WriteTimeout:      lim.WriteTimeout.D(),
		IdleTimeout:       lim.IdleTimeout.D(),
		// Also the HTTP/2 SETTINGS_MAX_HEADER_LIST_SIZE.
		MaxHeaderBytes: int(lim.MaxHeaderBytes),
		// OPTIONS * reaches the handler, which answers it locally with
		// the gateway's Allow list (net/http's own answer has none).
		DisableGeneralOptionsHandler: true,
		HTTP2: &http.HTTP2Config{
			MaxConcurrentStreams: lim.MaxConcurrentStreams,
			MaxReadFrameSize:     h2MaxReadFrameSize,
			SendPingTimeout:      h2SendPingTimeout,
			PingTimeout:          h2PingTimeout,
			WriteByteTimeout:     h2WriteByteTimeout,
		},
		ErrorLog: slog.NewLogLogger(ls.log.Handler(), slog.LevelDebug),
	}
	if l.tls != nil {
		srv.TLSConfig = l.tls.TLSConfig()
	}
	// portunus_listener_connections_{open,total}{listener=<key>}: once
	// per connection, not per request.
	if lm := ls.metrics.Listener(l.key); lm != nil {
		srv.ConnState = lm.ConnState
	}
	return srv
}

// serve starts the HTTP server of l. Called with ls.mu held.
func (ls *listenerSet) serve(l *listener) {
	lim := l.cfg.Limits
	ln := l.ln
	if lim != nil && lim.MaxConnections > 0 {
		// Over the limit, new connections wait in the kernel backlog.
		ln = connlimit.Listener(ln, lim.MaxConnections)
	}
	if l.cfg.ProxyProtocol {
		// The PROXY header comes before the TLS handshake.
		ln = proxyProtocolListener(ln, l.trusted)
	}
	l.srv = ls.newServer(l)
	ls.log.Info("listening", "address", l.ln.Addr().String(), "tls", l.tls != nil, "h2c", l.cfg.H2C && l.tls == nil)
	srv, done, useTLS := l.srv, l.done, l.tls != nil
	go func() {
		defer close(done)
		var err error
		if hs, ok := srv.(*http.Server); ok && useTLS {
			// Certificates come from the manager's TLSConfig.
			err = hs.ServeTLS(ln, "", "")
		} else {
			err = srv.Serve(ln)
		}
		if err != nil && !errors.Is(err, http.ErrServerClosed) && !errors.Is(err, net.ErrClosed) {
			ls.log.Error("listener stopped", "address", l.cfg.Address, "error", err)
		}
	}()
}

// drainGrace bounds how long a removed listener's requests may take.
const drainGrace = 30 * time.Second

// drain stops l accepting and lets its in-flight requests finish, then
// releases its certificate manager.
func (ls *listenerSet) drain(l *listener) {
	m := l.tls
	l.tls = nil
	if l.srv == nil {
		_ = l.ln.Close()
		if m != nil {
			_ = m.Close()
		}
		return
	}
	ls.draining.Add(1)
	go func() {
		defer ls.draining.Done()
		ctx, cancel := context.WithTimeout(context.Background(), drainGrace)
		defer cancel()
		if err := l.srv.Shutdown(ctx); err != nil {
			_ = l.srv.Close()
		}
		if m != nil {
			_ = m.Close()
		}
	}()
}

// shutdown stops every listener and waits for in-flight requests up to
// ctx's deadline.
func (ls *listenerSet) shutdown(ctx context.Context) {
	ls.mu.Lock()
	var wg sync.WaitGroup
	for key, l := range ls.open {
		delete(ls.open, key)
		m := l.tls
		l.tls = nil
		if l.srv == nil {
			_ = l.ln.Close()
			if m != nil {
				_ = m.Close()
			}
			continue
		}
		wg.Add(1)
		go func(l *listener) {
			defer wg.Done()
			if err := l.srv.Shutdown(ctx); err != nil {
				_ = l.srv.Close()
			}
			if m != nil {
				_ = m.Close()
			}
		}(l)
	}
	ls.mu.Unlock()
	wg.Wait()
	ls.draining.Wait()
}

// addrs returns the bound address of every open listener by configured
// address (a repeated port-0 address as "address#index").
func (ls *listenerSet) addrs() map[string]string {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	out := make(map[string]string, len(ls.open))
	for k, l := range ls.open {
		out[k] = l.ln.Addr().String()
	}
	return out
}

// hstsHandler adds Strict-Transport-Security to every answer of a TLS
// listener, gateway errors included: the header is set before the
// gateway runs, and headers the gateway set win over the upstream's.
type hstsHandler struct {
	value []string
	next  http.Handler
}

func newHSTSHandler(c *config.HSTS, next http.Handler) *hstsHandler {
	v := "max-age=" + strconv.FormatInt(int64(c.MaxAge.D()/time.Second), 10)
	if c.IncludeSubdomains {
		v += "; includeSubDomains"
	}
	if c.Preload {
		v += "; preload"
	}
	return &hstsHandler{value: []string{v}, next: next}
}

func (h *hstsHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// Full slice expression: a later Add copies instead of writing into
	// the shared array.
	w.Header()["Strict-Transport-Security"] = h.value[:1:1]
	h.next.ServeHTTP(w, r)
}

// redirectHandler answers every request of a redirect_https listener with
// a redirect to the same target on https, without routing.
type redirectHandler struct {
	status int
	// portSuffix is ":port", or "" for 443.
	portSuffix string
	maxURI     int
}

// zeroLength is the shared, read-only Content-Length of empty answers.
var zeroLength = []string{"0"}

func newRedirectHandler(c *config.RedirectHTTPS, maxURI int) *redirectHandler {
	h := &redirectHandler{status: c.Status, maxURI: maxURI}
	if h.status == 0 {
		h.status = http.StatusPermanentRedirect
	}
	if c.Port != 0 && c.Port != 443 {
		h.portSuffix = ":" + strconv.Itoa(c.Port)
	}
	return h
}

func (h *redirectHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if h.maxURI > 0 && len(r.RequestURI) > h.maxURI {
		w.Header()["Connection"] = []string{"close"}
		problem.Write(w, r, problem.Problem{Code: problem.URITooLong, Detail: "the request target is longer than " + strconv.Itoa(h.maxURI) + " bytes"})
		return
	}
	host, ok := redirectHost(r.Host)
	if !ok {
		problem.Write(w, r, problem.Problem{Code: problem.BadRequest, Detail: "the Host header is not a valid host name"})
		return
	}
	target := r.RequestURI
	if target == "*" && r.Method == http.MethodOptions {
		// A question about the server, not a resource: answered here.
		w.Header()["Allow"] = []string{"GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS"}
		w.Header()["Content-Length"] = []string{"0"}
		w.WriteHeader(http.StatusOK)
		return
	}
	if len(target) == 0 || target[0] != '/' {
		if r.URL == nil || !r.URL.IsAbs() {
			// Other "*" requests and authority-form have no https URL.
			problem.Write(w, r, problem.Problem{Code: problem.BadRequest, Detail: "the request target cannot be redirected"})
			return
		}
		// absolute-form: keep the path and query as sent.
		target = r.URL.EscapedPath()
		if target == "" {
			target = "/"
		}
		if r.URL.RawQuery != "" {
			target += "?" + r.URL.RawQuery
		}
	}
	w.Header()["Location"] = []string{"https://" + host + h.portSuffix + target}
	w.Header()["Content-Length"] = zeroLength[:1:1]
	w.WriteHeader(h.status)
}

// redirectHost returns the host part of a Host header value (without its
// port) if it is a DNS name, an IPv4 address or a bracketed IPv6 address,
// lower-cased. Anything else — userinfo, paths, backslashes, empty labels
// — is refused, so the redirect can never point at a host the client
// smuggled into the value.
func redirectHost(hostport string) (string, bool) {
	if hostport == "" || len(hostport) > 262 {
		return "", false
	}
	host := hostport
	if host[0] == '[' {
		end := strings.IndexByte(host, ']')
		if end < 0 {
			return "", false
		}
		rest := host[end+1:]
		if rest != "" && !validPort(rest) {
			return "", false
		}
		a, err := netip.ParseAddr(host[1:end])
		if err != nil || !a.Is6() || a.Zone() != "" {
			return "", false
		}
		return "[" + a.String() + "]", true
	}
	if i := strings.IndexByte(host, ':'); i >= 0 {
		if !validPort(host[i:]) {
			return "", false
		}
		host = host[:i]
	}
	if a, err := netip.ParseAddr(host); err == nil && a.Is4() {
		return a.String(), true
	}
	if !validDNSName(host) {
		return "", false
	}
	return strings.ToLower(host), true
}

// validPort accepts ":" followed by 1 to 5 digits.
func validPort(s string) bool {
	if len(s) < 2 || len(s) > 6 || s[0] != ':' {
		return false
	}
	for i := 1; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// validDNSName accepts LDH labels of 1 to 63 bytes, at most 253 bytes in
// all, with an optional trailing dot.
func validDNSName(s string) bool {
	s = strings.TrimSuffix(s, ".")
	if s == "" || len(s) > 253 {
		return false
	}
	label := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '.':
			if label == 0 || s[i-1] == '-' {
				return false
			}
			label = 0
			continue
		case c == '-':
			if label == 0 {
				return false
			}
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '_':
		default:
			return false
		}
		label++
		if label > 63 {
			return false
		}
	}
	return s[len(s)-1] != '-'
}
