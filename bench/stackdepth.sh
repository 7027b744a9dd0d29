#!/bin/bash
# Where request goroutines outgrow their stacks. Starts one Portunus build on
# the plain keep-alive route, puts a uprobe on runtime.morestack (perf), runs
# wrk against it, and prints how many stacks grew from each size and, for
# stacks that outgrew 4 KiB, the call chain and depth (bytes from the stack's
# top) where they did. A request path that fits 4 KiB shows no growth from
# 4096 except on rare paths (an upstream dial, a slow allocation).
#
#   bench/stackdepth.sh BINARY [connections=1000] [seconds=8] [route extras]
#
# Route extras are YAML keys added to the measured route, to probe a policy's
# path, e.g. 'cache: { ttl: 60s }' or
# 'rate_limits: [{ limit: 1000000000, window: 1s, by: ip }]'.
#
# Linux, amd64 (the probe reads g from R14), root, perf with uprobes, wrk,
# taskset. Traffic goes to 127.0.0.1 only; every process it starts is stopped
# by PID when it ends, and the probe is removed.
set -euo pipefail
[ $# -ge 1 ] || { sed -n 2,16p "$0"; exit 2; }
bin=$(realpath "$1"); conns=${2:-1000}; secs=${3:-8}; extras=${4:-}
root=$(CDPATH= cd -- "$(dirname -- "$0")/.." && pwd)
dir=$(mktemp -d)
pids=()
group=portunus_stackdepth
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	perf probe -q -d "$group:*" 2>/dev/null || true
	rm -rf "$dir"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.05; done; echo "port $1 never opened" >&2; exit 1; }

(cd "$root" && go build -o "$dir/upstream" ./bench/cmd/upstream)
up=$(free_port); gw=$(free_port); adm=$(free_port)
taskset -c 1 "$dir/upstream" -addr "127.0.0.1:$up" >/dev/null 2>&1 & pids+=($!)
wait_port "$up"
cat >"$dir/portunus.yaml" <<YAML
listeners: [{ address: "127.0.0.1:$gw" }]
admin: { address: "127.0.0.1:$adm" }
observability: { access_log: { path: "off" } }
upstreams: [{ name: bench, targets: [{ url: "http://127.0.0.1:$up" }] }]
routes: [{ name: plain, match: { path_prefix: / }, upstream: bench${extras:+, $extras} }]
YAML

# g.stack.lo and g.stack.hi are the first two words of the g in R14.
perf probe -q -d "$group:*" 2>/dev/null || true
perf probe -q -x "$bin" --add "$group:grow=runtime.morestack sp=%sp lo=+0(%r14):u64 hi=+8(%r14):u64"
taskset -c 0 "$bin" run -c "$dir/portunus.yaml" >"$dir/portunus.log" 2>&1 & gpid=$!; pids+=($gpid)
wait_port "$gw"
perf record -q -e "$group:grow" -g -p "$gpid" -o "$dir/perf.data" -- sleep $((secs + 1)) >/dev/null 2>&1 & pids+=($!)
sleep 0.5
taskset -c 1 wrk -t1 -c"$conns" -d"${secs}s" "http://127.0.0.1:$gw/" | grep -E 'Requests/sec'
wait "${pids[-1]}" || true
perf script -i "$dir/perf.data" 2>/dev/null >"$dir/perf.txt"
python3 - "$dir/perf.txt" <<'PY'
import collections, re, sys
events, cur = [], None
for line in open(sys.argv[1]):
    m = re.search(r'sp=0x([0-9a-f]+) lo=(\d+) hi=(\d+)', line)
    if m:
        cur = {'sp': int(m.group(1), 16), 'lo': int(m.group(2)), 'hi': int(m.group(3)), 'frames': []}
        events.append(cur)
    elif cur is not None and line.strip():
        cur['frames'].append(line.split()[1].split('+')[0])
sizes = collections.Counter(e['hi'] - e['lo'] for e in events)
print('stack growths by size before growing:', dict(sorted(sizes.items())))
chains = collections.Counter()
for e in events:
    if e['hi'] - e['lo'] == 4096:
        frames = [f.replace('github.com/portunus-gw/portunus/internal/', '') for f in e['frames'][1:9]]
        chains[(e['hi'] - e['sp'], ' < '.join(frames))] += 1
for (depth, chain), n in chains.most_common(8):
    print(f'{n:6d} at {depth} bytes: {chain}')
PY
