#!/usr/bin/env bash
# pool.sh — bench/pool.c (can a take-over work pool harvest a shared core?)
# beside a busy neighbour: a process spinning on one core, pinned there with
# taskset and started in this script's session (the scheduler's autogroup
# then weighs the neighbour against wick's threads one to one, as busy.sh
# does), then the same without it.  Prints pool's table for each: steps/s of
# the headline's five big products on 1 and 2 threads, alternated in rounds,
# for today's barrier step, OpenMP and the take-over pool.
#
#   bash bench/pool.sh                    both conditions (~1 min on 2 quiet cores)
#   NEIGHBOUR=0 bash bench/pool.sh        only the quiet one
#   ARGS="--rounds 41 --item 64" BUILD=build-x bash bench/pool.sh
# The output is kept in bench/out/pool-*.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
CORE=${CORE:-1}
NEIGHBOUR=${NEIGHBOUR:-1}
bash scripts/setup.sh --bench   # the bench programs' packages, as on a fresh machine
make -s -j2 BUILD="$BUILD" "$BUILD/bench/pool" >/dev/null
mkdir -p bench/out
out=bench/out/pool-$(date -u +%Y%m%dT%H%M%SZ).txt
spinner=""
stop_spinner() { if [ -n "$spinner" ]; then kill "$spinner" 2>/dev/null || true; fi; spinner=""; }
trap stop_spinner EXIT
# the CLI's bounded libgomp spin (tools/wick.c) for the OpenMP rows
export GOMP_SPINCOUNT=${GOMP_SPINCOUNT:-1000}
conds="quiet"
[ "$NEIGHBOUR" = 1 ] && conds="neighbour quiet"
for cond in $conds; do
    if [ "$cond" = neighbour ]; then
        taskset -c "$CORE" sh -c 'while :; do :; done' &
        spinner=$!
        sleep 0.5
    fi
    echo "pool.sh: $cond (load $(cut -d' ' -f1-3 /proc/loadavg))"
    "$BUILD/bench/pool" ${ARGS:-}
    stop_spinner
done | tee "$out"
echo "pool.sh: output in $out" >&2
