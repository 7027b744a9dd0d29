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
	"sync/atomic"
	"time"

	"github.com/portunus-gw/portunus/internal/admin"
	"github.com/portunus-gw/portunus/internal/carry"
	"github.com/portunus-gw/portunus/internal/config"
	"github.com/portunus-gw/portunus/internal/demo"
	"github.com/portunus-gw/portunus/internal/store"
	"github.com/portunus-gw/portunus/internal/telemetry"
	"github.com/portunus-gw/portunus/internal/tracing"
)

// Options configure a Runtime.
type Options struct {
	// ConfigPath is the config file to load and watch.
	ConfigPath string
	// Log receives the gateway's own events (not the access log).
	Log *slog.Logger
	// Watch enables reloading when the config file or a file it names
	// changes.
	Watch bool
}

// Runtime is a running gateway: its listeners, admin listener, current
// snapshot and the long-lived state carried across reloads. Start builds
// it; Reload swaps configs; Shutdown drains it.
type Runtime struct {
	opts      Options
	log       *slog.Logger
	metrics   *telemetry.Metrics
	gw        *Gateway
	registry  *carry.Registry
	listeners *listenerSet
	admin     *adminListener

	reloadMu sync.Mutex
	ready    atomic.Bool
	store    atomic.Pointer[storeHolder]
	watch    *watcher

	lastReload atomic.Pointer[ReloadStatus]
}

type storeHolder struct{ s store.Store }

// ReloadStatus is the outcome of the latest reload attempt.
type ReloadStatus struct {
	Time   time.Time `json:"time"`
	Source string    `json:"source"`
	OK     bool      `json:"ok"`
	Hash   string    `json:"hash,omitempty"`
	Error  string    `json:"error,omitempty"`
}

// Start loads the config, opens every listener and serves. The error is a
// *config.FileError or config.ErrorList when the config is unusable.
func Start(opts Options) (*Runtime, error) {
	log := opts.Log
	if log == nil {
		log = slog.Default()
	}
	rt := &Runtime{
		opts:     opts,
		log:      log,
		metrics:  telemetry.NewMetrics(),
		registry: carry.NewRegistry(),
	}
	rt.gw = NewGateway(rt.metrics)
	rt.listeners = newListenerSet(rt.gw.ListenerHandler, log)
	rt.listeners.metrics = rt.metrics // connection counts per listener
	rt.admin = &adminListener{log: log}
	if err := rt.apply("start"); err != nil {
		rt.listeners.shutdown(context.Background())
		rt.admin.shutdown(context.Background())
		rt.registry.Begin().Commit()
		return nil, err
	}
	rt.ready.Store(true)
	if opts.Watch {
		w, err := newWatcher(log, func() { _ = rt.Reload("file change") })
		if err != nil {
			log.Warn("config file watching is off", "error", err)
		} else {
			rt.watch = w
			w.set(rt.gw.Snapshot().Config.Files())
		}
	}
	return rt, nil
}

// Gateway returns the public handler.
func (rt *Runtime) Gateway() *Gateway { return rt.gw }

// Metrics returns the process's metrics registry.
func (rt *Runtime) Metrics() *telemetry.Metrics { return rt.metrics }

// Store returns the current shared-state store.
func (rt *Runtime) Store() store.Store {
	if h := rt.store.Load(); h != nil {
		return h.s
	}
	return nil
}

// ListenerAddrs maps each configured listener address to its bound address.
func (rt *Runtime) ListenerAddrs() map[string]string { return rt.listeners.addrs() }

// AdminAddr is the bound admin address ("" without an admin listener).
func (rt *Runtime) AdminAddr() string { return rt.admin.addr() }

// LastReload returns the latest reload's outcome.
func (rt *Runtime) LastReload() *ReloadStatus { return rt.lastReload.Load() }

// FlushTraces exports every span ended so far and waits for the exporter
// (tests use it instead of sleeping; nil when tracing is off).
func (rt *Runtime) FlushTraces(ctx context.Context) error {
	if snap := rt.gw.Snapshot(); snap != nil {
		return snap.tracer.ForceFlush(ctx)
	}
	return nil
}

// Reload loads the config again and swaps it in if it is valid; if not,
// the errors are logged and returned, and the running config keeps serving.
func (rt *Runtime) Reload(source string) error {
	err := rt.apply(source)
	if err != nil {
		rt.log.Error("config reload failed; the previous config keeps serving", "source", source, "errors", errorLines(err))
		return err
	}
	if rt.watch != nil {
		rt.watch.set(rt.gw.Snapshot().Config.Files())
	}
	return nil
}

// apply loads, compiles and swaps in the config. Everything new is built
// and bound beside the running snapshot first; only when all of it
// succeeded is anything swapped.
func (rt *Runtime) apply(source string) (err error) {
	rt.reloadMu.Lock()
	defer rt.reloadMu.Unlock()
	defer func() {
		st := &ReloadStatus{Time: time.Now(), Source: source, OK: err == nil}
		if err != nil {
			st.Error = err.Error()
			rt.metrics.ReloadFailed()
		} else {
			st.Hash = rt.gw.Snapshot().Hash
			rt.metrics.ReloadSucceeded(st.Hash, st.Time)
		}
		rt.lastReload.Store(st)
	}()

	cfg, err := config.Load(rt.opts.ConfigPath)
	if err != nil {
		return err
	}
	build := rt.registry.Begin()
	committed := false
	defer func() {
		if !committed {
			build.Abort()
		}
	}()

	// Tracing: one provider per tracing config, carried across reloads
	// like the access log; carry closes (flushes) it when a reload drops
	// it, and at Shutdown. No endpoint = off = no provider at all.
	var tracer *tracing.Provider
	if tc := cfg.Observability.Tracing; tc.OTLPEndpoint != "" {
		tracer, err = carry.Get(build, carry.Key("tracing", "", tc), func() (*tracing.Provider, error) {
			return tracing.New(tc)
		})
		if err != nil {
			return config.ErrorList{cfg.ErrorAt("observability.tracing.otlp_endpoint", "%v", err)}
		}
	}
	st, err := carry.Get(build, carry.Key("store", "", cfg.Store), func() (store.Store, error) {
		return store.Open(cfg.Store)
	})
	if err != nil {
		return config.ErrorList{cfg.ErrorAt("store", "%v", err)}
	}
	rcm, err := openRuntimeConsumers(cfg, build, st, rt.log)
	if err != nil {
		return config.ErrorList{cfg.ErrorAt("store.consumers_file", "%v", err)}
	}
	snap, err := compile(cfg, compileDeps{metrics: rt.metrics, build: build, log: rt.log, tracer: tracer, store: st, runtimeConsumers: rcm})
	if err != nil {
		return err
	}
	al, err := carry.Get(build, carry.Key("access_log", "", cfg.Observability.AccessLog), func() (*telemetry.AccessLog, error) {
		return telemetry.NewAccessLog(cfg.Observability.AccessLog)
	})
	if err != nil {
		return config.ErrorList{cfg.ErrorAt("observability.access_log.path", "%v", err)}
	}
	snap.accessLog = al
	var errs config.ErrorList
	for i, d := range cfg.DemoUpstreams {
		_, err := carry.Get(build, carry.Key("demo", d.Address, d), func() (*demoServer, error) {
			stop, err := demo.Start(context.Background(), d.Address, d.Name)
			if err != nil {
				return nil, err
			}
			return &demoServer{stop: stop}, nil
		})
		if err != nil {
			errs = append(errs, cfg.ErrorAt(fmt.Sprintf("demo_upstreams[%d].address", i), "%v", err))
		}
	}
	if len(errs) > 0 {
		return errs
	}

	commitListeners, rollbackListeners, err := rt.listeners.prepare(cfg)
	if err != nil {
		return err
	}
	commitAdmin, err := rt.admin.prepare(cfg, rt)
	if err != nil {
		rollbackListeners()
		return err
	}

	snap.Loaded = time.Now()
	rt.gw.Swap(snap)
	rt.store.Store(&storeHolder{s: st})
	commitListeners()
	commitAdmin()
	build.Commit()
	committed = true
	// Background work (health checks, discovery) runs only for pools of a
	// live snapshot; Start is a no-op for pools carried from the last one.
	for _, pool := range snap.upstreams {
		pool.Start()
	}
	for _, d := range snap.discoverers {
		d.Start()
	}
	rt.log.Info("config loaded", "source", source, "hash", snap.Hash, "routes", len(snap.routes), "upstreams", len(snap.upstreams))
	return nil
}

// Shutdown stops accepting, waits for in-flight requests until ctx ends,
// and releases everything.
func (rt *Runtime) Shutdown(ctx context.Context) {
	rt.ready.Store(false)
	if rt.watch != nil {
		rt.watch.close()
	}
	rt.listeners.shutdown(ctx)
	rt.admin.shutdown(ctx)
	rt.reloadMu.Lock()
	rt.registry.Begin().Commit() // releases every carried object
	rt.reloadMu.Unlock()
}

// Ready reports whether the gateway serves traffic.
func (rt *Runtime) Ready() bool { return rt.ready.Load() && rt.gw.Snapshot() != nil }

type demoServer struct{ stop func() }

func (d *demoServer) Close() error { d.stop(); return nil }

func errorLines(err error) []string {
	var el config.ErrorList
	if errors.As(err, &el) {
		out := make([]string, len(el))
		for i, e := range el {
			out[i] = e.Error()
		}
		return out
	}
	return []string{err.Error()}
}

// adminListener runs the admin server and rebuilds it when its settings
// change.
type adminListener struct {
	mu   sync.Mutex
	log  *slog.Logger
	cfg  *config.Admin
	pp   bool
	ln   net.Listener
	srv  *http.Server
	done chan struct{}
}

type adminKey struct {
	cfg config.Admin
	pp  bool
}

func (a *adminListener) addr() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.ln == nil {
		return ""
	}
	return a.ln.Addr().String()
}

// prepare binds the admin listener if its settings changed, returning a
// commit that starts it and stops the old one.
func (a *adminListener) prepare(cfg *config.Config, rt *Runtime) (func(), error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	same := (a.cfg == nil && cfg.Admin == nil) ||
		(a.cfg != nil && cfg.Admin != nil && reflect.DeepEqual(adminKey{*a.cfg, a.pp}, adminKey{*cfg.Admin, cfg.Observability.Pprof}))
	if same {
		return func() {}, nil
	}
	if cfg.Admin == nil {
		return func() {
			a.mu.Lock()
			defer a.mu.Unlock()
			a.stopLocked()
			a.cfg = nil
		}, nil
	}
	newCfg := *cfg.Admin
	sameAddr := a.cfg != nil && a.cfg.Address == newCfg.Address
	if sameAddr {
		// The old server must release the address first.
		a.stopLocked()
		a.cfg = nil
	}
	ln, err := net.Listen("tcp", newCfg.Address)
	if err != nil {
		return nil, config.ErrorList{cfg.ErrorAt("admin.address", "cannot listen: %v", err)}
	}
	srv := &http.Server{
		Handler:           rt.adminHandler(&newCfg, cfg.Observability.Pprof),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       120 * time.Second,
		ErrorLog:          slog.NewLogLogger(a.log.Handler(), slog.LevelDebug),
	}
	pp := cfg.Observability.Pprof
	return func() {
		a.mu.Lock()
		defer a.mu.Unlock()
		a.stopLocked()
		a.cfg, a.pp, a.ln, a.srv, a.done = &newCfg, pp, ln, srv, make(chan struct{})
		done := a.done
		a.log.Info("admin listening", "address", ln.Addr().String())
		go func() {
			defer close(done)
			_ = srv.Serve(ln)
		}()
	}, nil
}

func (a *adminListener) stopLocked() {
	// Close the socket now so a new admin server can bind the address,
	// and let in-flight admin requests (possibly the very reload request
	// that replaces this server) finish in the background.
	if a.ln != nil {
		_ = a.ln.Close()
	}
	if srv := a.srv; srv != nil {
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := srv.Shutdown(ctx); err != nil {
				_ = srv.Close()
			}
		}()
	}
	a.srv, a.ln = nil, nil
}

func (a *adminListener) shutdown(ctx context.Context) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.srv != nil {
		if err := a.srv.Shutdown(ctx); err != nil {
			_ = a.srv.Close()
		}
		<-a.done
	}
	a.srv, a.ln = nil, nil
}

// adminHandler builds the admin API for the runtime.
func (rt *Runtime) adminHandler(c *config.Admin, pprof bool) http.Handler {
	s := admin.New(admin.Options{
		Token:        c.Token,
		PublicHealth: c.PublicHealth == nil || *c.PublicHealth,
		Pprof:        pprof,
		Ready:        rt.Ready,
		Metrics:      rt.metrics.Handler(),
	})
	registerAdminAPI(s, rt) // the /api/v1 endpoints: adminapi.go
	return s
}
