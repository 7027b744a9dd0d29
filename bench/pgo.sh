#!/bin/bash
# Regenerates cmd/portunus/default.pgo, the CPU profile `go build` uses
# for profile-guided optimisation of the portunus binary (Go's -pgo=auto:
# hotter calls inlined, hot interface calls devirtualised). The profile is
# the gateway under load on loopback, one scenario after another on the
# same process: a plain proxied route at 50 and 1000 keep-alive
# connections, a cache hit, and an API-key route with a rate limit that is
# never reached. Re-run it after large changes to the request path, and
# check the gain with bench/ab.sh (a build with -pgo=off against one
# without).
#
#   bench/pgo.sh [seconds per scenario=10]
#
# Linux only; needs wrk. Traffic goes to 127.0.0.1 only; every process it
# starts is stopped by PID when it ends.
set -euo pipefail
secs=${1:-10}
root=$(CDPATH= cd -- "$(dirname -- "$0")/.." && pwd)
dir=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$dir"; }
trap cleanup EXIT
command -v wrk >/dev/null || { echo "pgo.sh: wrk is not installed" >&2; exit 1; }
ulimit -n 8192 2>/dev/null || true

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 200); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.05; done; echo "port $1 never opened" >&2; exit 1; }

# The profiled binary is built without a profile, so the new one does not
# depend on the old.
(cd "$root" && go build -pgo=off -o "$dir/portunus" ./cmd/portunus && go build -o "$dir/upstream" ./bench/cmd/upstream)
up=$(free_port); gw=$(free_port); admin=$(free_port)
"$dir/upstream" -addr "127.0.0.1:$up" >/dev/null 2>&1 & pids+=($!)
wait_port "$up"
key=pgo-$(od -An -tx1 -N12 /dev/urandom | tr -d ' \n')
cat >"$dir/pgo.yaml" <<EOF
listeners: [{ address: "127.0.0.1:$gw" }]
admin: { address: "127.0.0.1:$admin" }
observability: { access_log: { path: "off" }, pprof: true }
consumers: [{ name: bench, api_keys: ["$key"] }]
upstreams: [{ name: bench, targets: [{ url: "http://127.0.0.1:$up" }] }]
routes:
  - { name: plain, match: { path_prefix: / }, upstream: bench }
  - { name: cached, match: { path_prefix: /cached }, upstream: bench, cache: { ttl: 600s } }
  - name: keyed
    match: { path_prefix: /keyed }
    upstream: bench
    auth: [api_key]
    rate_limits: [{ limit: 1000000000, window: 1s, by: consumer }]
EOF
"$dir/portunus" run -config "$dir/pgo.yaml" >"$dir/portunus.log" 2>&1 & pids+=($!)
wait_port "$gw"

# profile NAME CONNECTIONS PATH [wrk header]: one scenario's CPU profile.
profile() {
	local name=$1 conns=$2 path=$3
	shift 3
	wrk -t1 -c"$conns" -d2s "$@" "http://127.0.0.1:$gw$path" >/dev/null # warm-up
	wrk -t1 -c"$conns" -d"$((secs + 2))"s "$@" "http://127.0.0.1:$gw$path" >"$dir/$name.wrk" &
	local w=$!
	sleep 1
	curl -fsS -o "$dir/$name.pprof" "http://127.0.0.1:$admin/debug/pprof/profile?seconds=$secs"
	wait "$w"
	echo "pgo.sh: $name: $(awk '/Requests\/sec/ {print $2}' "$dir/$name.wrk") req/s" >&2
}
profile plain 50 /
profile plain-c1000 1000 /
profile cached 50 /cached/x
profile keyed 50 /keyed/x -H "X-API-Key: $key"

(cd "$root" && go tool pprof -proto "$dir"/plain.pprof "$dir"/plain-c1000.pprof "$dir"/cached.pprof "$dir"/keyed.pprof >"$dir/merged.pgo" 2>/dev/null)
mv "$dir/merged.pgo" "$root/cmd/portunus/default.pgo"
echo "pgo.sh: wrote cmd/portunus/default.pgo ($(wc -c <"$root/cmd/portunus/default.pgo") bytes)" >&2
