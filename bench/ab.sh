#!/bin/bash
# Paired A/B of two Portunus builds on the plain keep-alive route: both run at
# once, pinned to the same CPU, and wrk alternates between them in short
# slices, so drift of a shared machine hits both alike. Prints requests per
# CPU-second of each (CPU time from /proc/PID/stat) and B/A. Run it in both
# orders (A B, then B A) and compare with an A/A run before believing a
# difference of a few percent.
#
#   bench/ab.sh OLD_BINARY NEW_BINARY [cycles=20] [seconds=3] [connections=50]
#
# AB_CLOSE=1 sends Connection: close (the new-connection rate) instead.
#
# Linux only; needs wrk and taskset. Traffic goes to 127.0.0.1 only; every
# process it starts is stopped by PID when it ends.
set -euo pipefail
[ $# -ge 2 ] || { sed -n 2,10p "$0"; exit 2; }
A=$(realpath "$1"); B=$(realpath "$2")
cycles=${3:-20}; secs=${4:-3}; conns=${5:-50}
proxy_cpu=${AB_PROXY_CPU:-0}; load_cpu=${AB_LOAD_CPU:-1}
root=$(CDPATH= cd -- "$(dirname -- "$0")/.." && pwd)
dir=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$dir"; }
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.05; done; echo "port $1 never opened" >&2; exit 1; }

(cd "$root" && go build -o "$dir/upstream" ./bench/cmd/upstream)
up=$(free_port)
taskset -c "$load_cpu" "$dir/upstream" -addr "127.0.0.1:$up" >/dev/null 2>&1 & pids+=($!)
wait_port "$up"

declare -A port pid
for x in A B; do
	port[$x]=$(free_port)
	cat >"$dir/$x.yaml" <<EOF
listeners: [{ address: "127.0.0.1:${port[$x]}" }]
observability: { access_log: { path: "off" } }
upstreams: [{ name: bench, targets: [{ url: "http://127.0.0.1:$up" }] }]
routes: [{ name: plain, match: { path_prefix: / }, upstream: bench }]
EOF
	bin=$A; [ $x = B ] && bin=$B
	taskset -c "$proxy_cpu" "$bin" run -config "$dir/$x.yaml" >"$dir/$x.log" 2>&1 & pid[$x]=$!; pids+=($!)
	wait_port "${port[$x]}"
done

ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
wrk_args=()
[ "${AB_CLOSE:-0}" = 1 ] && wrk_args=(-H "Connection: close")
load() { taskset -c "$load_cpu" wrk -t1 -c"$conns" -d"$1"s "${wrk_args[@]}" "http://127.0.0.1:$2/" | awk '/requests in/ {print $1}'; }
load 2 "${port[A]}" >/dev/null; load 2 "${port[B]}" >/dev/null # warm-up

declare -A req cpu
req[A]=0; req[B]=0; cpu[A]=0; cpu[B]=0
for _ in $(seq "$cycles"); do
	for x in A B; do
		c0=$(ticks "${pid[$x]}")
		n=$(load "$secs" "${port[$x]}")
		c1=$(ticks "${pid[$x]}")
		req[$x]=$((req[$x] + n)); cpu[$x]=$((cpu[$x] + c1 - c0))
	done
done
hz=$(getconf CLK_TCK)
for x in A B; do
	echo "$x: ${req[$x]} requests, $(echo "scale=2; ${cpu[$x]} / $hz" | bc) CPU-s, $((req[$x] * hz / cpu[$x])) req/CPU-s"
done
echo "B/A: $(echo "scale=3; (${req[B]} * ${cpu[A]}) / (${req[A]} * ${cpu[B]})" | bc)"
