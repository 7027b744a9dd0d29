package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"reflect"
	"sync"
	"time"

	"golang.org/x/net/netutil"

	"github.com/portunus-gw/portunus/internal/config"
)

// listener is one open public listener and the server on it.
type listener struct {
	cfg  config.Listener
	ln   net.Listener
	srv  *http.Server
	done chan struct{}
}

// listenerSet opens, keeps and closes public listeners as configs change.
type listenerSet struct {
	mu      sync.Mutex
	handler func(*config.Limits) http.Handler
	log     *slog.Logger
	open    map[string]*listener
	// draining are servers that stopped accepting and finish their
	// in-flight requests.
	draining sync.WaitGroup
}

func newListenerSet(h func(*config.Limits) http.Handler, log *slog.Logger) *listenerSet {
	return &listenerSet{handler: h, log: log, open: map[string]*listener{}}
}

// prepare binds every listener of cfg that is not open with the same
// settings yet, without serving. It returns a commit that starts serving
// the new ones and drains the ones cfg no longer has, and a rollback that
// closes what prepare bound. Binding first means a reload whose address is
// taken fails as a whole and the old config keeps serving.
func (ls *listenerSet) prepare(cfg *config.Config) (commit func(), rollback func(), err error) {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	fresh := map[string]*listener{}
	keep := map[string]bool{}
	var errs config.ErrorList
	var changed []*listener
	for i, lc := range cfg.Listeners {
		if old, ok := ls.open[lc.Address]; ok {
			if reflect.DeepEqual(old.cfg, lc) {
				keep[lc.Address] = true
				continue
			}
			// Same address, new settings: the old socket must be
			// released before the new one can bind.
			changed = append(changed, old)
		}
		_ = i
	}
	// Close changed listeners' sockets first (their servers drain), so
	// the new settings can bind the same address.
	for _, old := range changed {
		_ = old.ln.Close()
	}
	for i, lc := range cfg.Listeners {
		if keep[lc.Address] {
			continue
		}
		ln, err := net.Listen("tcp", lc.Address)
		if err != nil {
			errs = append(errs, cfg.ErrorAt(fmt.Sprintf("listeners[%d].address", i), "cannot listen: %v", err))
			continue
		}
		fresh[lc.Address] = &listener{cfg: lc, ln: ln, done: make(chan struct{})}
	}
	if len(errs) > 0 {
		for _, l := range fresh {
			_ = l.ln.Close()
		}
		// Changed listeners lost their socket: re-open them with their
		// old settings so the running config keeps serving.
		for _, old := range changed {
			if ln, err := net.Listen("tcp", old.cfg.Address); err == nil {
				ls.restart(old, ln)
			} else {
				ls.log.Error("listener lost during failed reload", "address", old.cfg.Address, "error", err)
				delete(ls.open, old.cfg.Address)
			}
		}
		return nil, nil, errs
	}
	commit = func() {
		ls.mu.Lock()
		defer ls.mu.Unlock()
		for addr, l := range ls.open {
			if !keep[addr] {
				ls.drain(l)
				delete(ls.open, addr)
			}
		}
		for addr, l := range fresh {
			ls.serve(l)
			ls.open[addr] = l
		}
	}
	rollback = func() {
		for _, l := range fresh {
			_ = l.ln.Close()
		}
	}
	return commit, rollback, nil
}

// restart serves an existing listener's settings on a new socket.
func (ls *listenerSet) restart(old *listener, ln net.Listener) {
	ls.drain(old)
	l := &listener{cfg: old.cfg, ln: ln, done: make(chan struct{})}
	ls.serve(l)
	ls.open[old.cfg.Address] = l
}

// serve starts the HTTP server of l. Called with ls.mu held.
func (ls *listenerSet) serve(l *listener) {
	lim := l.cfg.Limits
	if lim == nil {
		lim = &config.Limits{}
	}
	ln := l.ln
	if lim.MaxConnections > 0 {
		// Over the limit, new connections wait in the kernel backlog.
		ln = netutil.LimitListener(ln, lim.MaxConnections)
	}
	l.srv = &http.Server{
		Handler:           ls.handler(lim),
		ReadHeaderTimeout: lim.ReadHeaderTimeout.D(),
		WriteTimeout:      lim.WriteTimeout.D(),
		IdleTimeout:       lim.IdleTimeout.D(),
		MaxHeaderBytes:    int(lim.MaxHeaderBytes),
		ErrorLog:          slog.NewLogLogger(ls.log.Handler(), slog.LevelDebug),
	}
	ls.log.Info("listening", "address", l.ln.Addr().String())
	go func() {
		defer close(l.done)
		if err := l.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) && !errors.Is(err, net.ErrClosed) {
			ls.log.Error("listener stopped", "address", l.cfg.Address, "error", err)
		}
	}()
}

// drainGrace bounds how long a removed listener's requests may take.
const drainGrace = 30 * time.Second

// drain stops l accepting and lets its in-flight requests finish.
func (ls *listenerSet) drain(l *listener) {
	if l.srv == nil {
		_ = l.ln.Close()
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
	}()
}

// shutdown stops every listener and waits for in-flight requests up to
// ctx's deadline.
func (ls *listenerSet) shutdown(ctx context.Context) {
	ls.mu.Lock()
	var wg sync.WaitGroup
	for addr, l := range ls.open {
		delete(ls.open, addr)
		if l.srv == nil {
			_ = l.ln.Close()
			continue
		}
		wg.Add(1)
		go func(l *listener) {
			defer wg.Done()
			if err := l.srv.Shutdown(ctx); err != nil {
				_ = l.srv.Close()
			}
		}(l)
	}
	ls.mu.Unlock()
	wg.Wait()
	ls.draining.Wait()
}

// addrs returns the bound address of every open listener by configured address.
func (ls *listenerSet) addrs() map[string]string {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	out := make(map[string]string, len(ls.open))
	for a, l := range ls.open {
		out[a] = l.ln.Addr().String()
	}
	return out
}
