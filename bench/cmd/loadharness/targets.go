package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// Target names, in the default order.
const (
	targetDirect   = "direct"
	targetNginx    = "nginx"
	targetPortunus = "portunus"
	// targetPortunusStdlib is the same binary on net/http alone: every
	// pool on the stdlib transport instead of the h1 client, and plain
	// listeners on net/http's server instead of h1server — the
	// before/after of both in one interleaved run. Not in the default set.
	targetPortunusStdlib = "portunus-stdlib"
	// targetPortunusPlain is the same binary and config with the plain
	// route: none of what -auth, -portunus-route and -cache add to the
	// measured route (the top-level additions stay, unused). Next to
	// portunus it measures a policy's cost as a ratio within one
	// interleaved run, not across runs minutes apart. Not in the default
	// set.
	targetPortunusPlain = "portunus-plain"
)

var allTargets = []string{targetDirect, targetNginx, targetPortunus}

// knownTargets are the targets -targets accepts.
var knownTargets = append(slices.Clone(allTargets), targetPortunusStdlib, targetPortunusPlain)

// readyTimeout bounds how long a freshly started server may take to answer.
const readyTimeout = 20 * time.Second

// target is one thing wrk is pointed at, and the process whose CPU and
// memory are charged to it (for direct, the upstream itself).
type target struct {
	name string
	url  string
	proc *child
}

// freeLoopbackPort asks the kernel for an unused port on 127.0.0.1. The
// port is released before the server binds it; on a quiet benchmark box
// the window for another process to take it is negligible.
func freeLoopbackPort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// goBuild compiles pkg (relative to the module root repo) into out.
func goBuild(ctx context.Context, goBin, repo, out, pkg string) error {
	cctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(cctx, goBin, "build", "-o", out, pkg)
	cmd.Dir = repo
	if msg, err := cmd.CombinedOutput(); err != nil {
		if cerr := context.Cause(cctx); cerr != nil {
			err = cerr
		}
		return fmt.Errorf("go build %s: %w\n%s", pkg, err, strings.TrimSpace(string(msg)))
	}
	return nil
}

// startUpstream starts bench/cmd/upstream on a kernel-chosen loopback port
// and returns it with its address.
func startUpstream(ctx context.Context, sup *supervisor, bin string) (*child, string, error) {
	c, err := sup.start("upstream", sup.pin.LoadCPUs, filepath.Join(sup.dir, "upstream.log"), bin, "-addr", "127.0.0.1:0")
	if err != nil {
		return nil, "", err
	}
	addr, err := waitForLine(ctx, c, "upstream: listening on ", readyTimeout)
	if err != nil {
		return nil, "", err
	}
	if err := waitReady(ctx, c, "http://"+addr+"/"); err != nil {
		return nil, "", err
	}
	return c, addr, nil
}

// nginxConnections is nginx's worker_connections: what a keep-alive run
// needs, or, with -idle, the idle connections and room to spare (main
// sets it): past its worker_connections nginx closes idle keep-alive
// connections to accept new ones, and would be measured holding fewer
// than it was given.
var nginxConnections = 8192

// nginxConfig renders an nginx reverse proxy equivalent to the Portunus
// bench route: one worker, keep-alive pool to the upstream, no access log,
// every path under dir. keepalive_requests is raised on both sides so that
// the keep-alive scenario measures proxying, not nginx's periodic
// connection recycling (default 1000 requests), which Portunus does not do.
func nginxConfig(dir string, port int, upstreamAddr string, asRoot bool) string {
	var b strings.Builder
	if asRoot {
		b.WriteString("user root;\n")
	}
	fmt.Fprintf(&b, `worker_processes 1;
daemon off;
master_process on;
pid %[1]s/nginx.pid;
error_log %[1]s/nginx-error.log warn;
worker_rlimit_nofile %[4]d;
events { worker_connections %[5]d; }
http {
    access_log off;
    client_body_temp_path %[1]s/client_body;
    proxy_temp_path %[1]s/proxy;
    fastcgi_temp_path %[1]s/fastcgi;
    uwsgi_temp_path %[1]s/uwsgi;
    scgi_temp_path %[1]s/scgi;
    keepalive_requests 1000000;
    upstream bench {
        server %[3]s;
        keepalive 256;
        keepalive_requests 1000000;
    }
    server {
        listen 127.0.0.1:%[2]d backlog=4096;
        location / {
            proxy_pass http://bench;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }
    }
}
`, dir, port, upstreamAddr, 2*nginxConnections, nginxConnections)
	return b.String()
}

// startNginx writes the config, checks it with nginx -t, then starts nginx
// in the foreground and waits until it proxies.
func startNginx(ctx context.Context, sup *supervisor, nginxBin, upstreamAddr string) (*target, error) {
	dir := filepath.Join(sup.dir, "nginx")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	port, err := freeLoopbackPort()
	if err != nil {
		return nil, err
	}
	conf := filepath.Join(dir, "nginx.conf")
	text := nginxConfig(dir, port, upstreamAddr, os.Geteuid() == 0)
	if cacheScenario {
		text = withProxyCache(text, dir)
	}
	if err := os.WriteFile(conf, []byte(text), 0o600); err != nil {
		return nil, err
	}
	// -p and -e keep nginx away from /etc/nginx, /var/log/nginx and /run.
	argv := []string{nginxBin, "-p", dir + "/", "-e", filepath.Join(dir, "nginx-error.log"), "-c", conf}
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	msg, err := exec.CommandContext(cctx, nginxBin, append(argv[1:], "-t")...).CombinedOutput()
	cancel()
	if err != nil {
		return nil, fmt.Errorf("nginx -t: %w\n%s", err, strings.TrimSpace(string(msg)))
	}
	c, err := sup.start("nginx", sup.pin.ProxyCPUs, filepath.Join(sup.dir, "nginx.log"), argv...)
	if err != nil {
		return nil, err
	}
	url := fmt.Sprintf("http://127.0.0.1:%d/", port)
	if err := waitReady(ctx, c, url); err != nil {
		return nil, fmt.Errorf("%w\nnginx error log:\n%s", err, tailFile(filepath.Join(dir, "nginx-error.log"), 10))
	}
	return &target{name: targetNginx, url: url, proc: c}, nil
}

// portunusConfig renders the minimal Portunus config: one listener, access
// log off, one upstream, one catch-all plain proxy route.
// portunusExtra adds policies to the measured route and top-level keys
// (e.g. a Redis store) to the generated config, to measure a route with
// policies against the plain one.
type portunusExtra struct {
	route string // flow-mapping entries appended to the route, e.g. "rate_limits: [...]"
	top   string // YAML appended at the top level, e.g. "store: { backend: redis, ... }"
	// headers ("Name: value") the readiness check sends, e.g. -auth's
	// credential.
	headers []string
}

// forTarget is what the target name adds to Portunus's config: all of it,
// or for portunus-plain the top-level additions alone.
func (x portunusExtra) forTarget(name string) portunusExtra {
	if name == targetPortunusPlain {
		x.route = ""
	}
	return x
}

func portunusConfig(port int, upstreamAddr string, x portunusExtra) string {
	route := ""
	if x.route != "" {
		route = ", " + x.route
	}
	cfg := fmt.Sprintf(`listeners: [{ address: "127.0.0.1:%d" }]
observability: { access_log: { path: "off" } }
upstreams: [{ name: bench, targets: [{ url: "http://%s" }] }]
routes: [{ name: plain, match: { path_prefix: / }, upstream: bench%s }]
`, port, upstreamAddr, route)
	if x.top != "" {
		cfg += x.top + "\n"
	}
	return cfg
}

// startPortunus writes the config, starts "portunus run -c" and waits until
// it proxies.
func startPortunus(ctx context.Context, sup *supervisor, name, bin, upstreamAddr string, x portunusExtra) (*target, error) {
	port, err := freeLoopbackPort()
	if err != nil {
		return nil, err
	}
	conf := filepath.Join(sup.dir, name+".yaml")
	if err := os.WriteFile(conf, []byte(portunusConfig(port, upstreamAddr, x)), 0o600); err != nil {
		return nil, err
	}
	argv := []string{bin, "run", "-c", conf}
	if name == targetPortunusStdlib {
		// env execs the binary: the PID, and so the CPU and RSS
		// accounting, are Portunus's own.
		argv = append([]string{"env", "PORTUNUS_UPSTREAM_CLIENT=stdlib", "PORTUNUS_HTTP1_SERVER=stdlib"}, argv...)
	}
	c, err := sup.start(name, sup.pin.ProxyCPUs, filepath.Join(sup.dir, name+".log"), argv...)
	if err != nil {
		return nil, err
	}
	url := fmt.Sprintf("http://127.0.0.1:%d/", port)
	if err := waitReady(ctx, c, url, x.headers...); err != nil {
		return nil, err
	}
	return &target{name: name, url: url, proc: c}, nil
}

// waitReady polls GET url until it answers 200, the process exits, or
// readyTimeout passes.
func waitReady(ctx context.Context, c *child, url string, headers ...string) error {
	ctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	client := &http.Client{Timeout: 2 * time.Second}
	var last string
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		for _, h := range headers {
			if k, v, ok := strings.Cut(h, ":"); ok {
				req.Header.Set(strings.TrimSpace(k), strings.TrimSpace(v))
			}
		}
		resp, err := client.Do(req)
		if err == nil {
			_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				client.CloseIdleConnections()
				return nil
			}
			last = "status " + resp.Status
		} else {
			last = err.Error()
		}
		if c.exited() {
			return fmt.Errorf("%s exited before answering %s (%v)\n%s", c.name, url, c.waitErr, tailFile(c.logPath, 15))
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: GET %s did not return 200 within %s (last: %s)\n%s", c.name, url, readyTimeout, last, tailFile(c.logPath, 15))
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// toolVersion returns the first line of a tool's version output (wrk and
// nginx print it on stderr, and wrk -v exits non-zero).
func toolVersion(ctx context.Context, argv ...string) string {
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	out, _ := exec.CommandContext(cctx, argv[0], argv[1:]...).CombinedOutput()
	line, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
	return strings.TrimSpace(line)
}

// findNginx returns the nginx binary: the flag, else PATH, else the usual
// sbin locations (not on a non-root PATH), else "".
func findNginx(flagValue string) string {
	if flagValue != "" {
		return flagValue
	}
	if p, err := exec.LookPath("nginx"); err == nil {
		return p
	}
	for _, p := range []string{"/usr/sbin/nginx", "/usr/local/sbin/nginx", "/usr/local/nginx/sbin/nginx"} {
		if st, err := os.Stat(p); err == nil && !st.IsDir() && st.Mode()&0o111 != 0 {
			return p
		}
	}
	return ""
}
