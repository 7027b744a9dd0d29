#!/bin/sh
# Builds the load harness and runs it from the module root; every argument is
# passed through (see: bench/run.sh -h). The harness is exec'd, not run under
# `go run`, so SIGINT/SIGTERM reach it directly and it stops its children.
#
#   bench/run.sh                 # full run: 3 rounds x 10 s x direct, nginx, portunus
#   bench/run.sh -smoke          # CI: about 2 s per target, exit 1 on any failure
set -eu
root=$(CDPATH= cd -- "$(dirname -- "$0")/.." && pwd)
cd "$root"
command -v go >/dev/null 2>&1 || PATH="$PATH:/usr/local/go/bin"
mkdir -p bench/.bin
go build -o bench/.bin/loadharness ./bench/cmd/loadharness
exec bench/.bin/loadharness "$@"
