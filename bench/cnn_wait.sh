#!/usr/bin/env bash
# cnn_wait.sh — how libgomp's waiting policy moves the conv net's 2-thread
# training step (the OpenMP regions: oneDNN and wick's conv/batch-norm ops),
# on a quiet machine and beside a busy neighbour (a spinning process pinned
# on one core, as bench/busy.sh).  For each condition, in turn, ROUNDS times:
# libgomp's default (spin 300,000 pauses, then sleep), GOMP_SPINCOUNT=N for each N of
# SPINS (default 10000),
# OMP_WAIT_POLICY=passive, and what the CLI chooses by itself; plus --threads 1.
# Prints samples/s medians.
#   bash bench/cnn_wait.sh            ~3 min on 2 cores
#   ROUNDS=5 STEPS=60 SPINS="300 1000 3000" BUILD=build-x bash bench/cnn_wait.sh
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-3}
STEPS=${STEPS:-40}
BUILD=${BUILD:-build}
CORE=${CORE:-1}
SPINS=${SPINS:-10000}   # GOMP_SPINCOUNT values to try beside the default and passive
ARCH="input:1x28x28,conv2d:32:3:pad=1,batchnorm,relu,maxpool:2,conv2d:64:3:pad=1,batchnorm,relu,maxpool:2,flatten,dropout:0.25,linear:256,relu,dropout:0.5,linear:10"
DATA=/usr/share/datasets/fashion-mnist
bash scripts/setup.sh
make -s -j2 BUILD="$BUILD" "$BUILD/wick" >/dev/null
run() {   # threads env...
    local t=$1; shift
    env "$@" "$BUILD/wick" train --arch "$ARCH" --data "$DATA" --epochs 1 --max-steps "$STEPS" --json --quiet \
        --val 0 --threads "$t" --batch 128 --momentum 0.9 --lr 0.01 2>/dev/null | tail -1 |
        /usr/bin/python3 -c 'import json, sys; print(round(json.load(sys.stdin)["samples_per_s"]))'
}
spinner=""
trap '[ -n "$spinner" ] && kill "$spinner" 2>/dev/null' EXIT
for cond in quiet neighbour; do
    if [ "$cond" = neighbour ]; then
        taskset -c "$CORE" sh -c 'while :; do :; done' &
        spinner=$!
        sleep 0.5
    fi
    declare -A r=()
    for k in $(seq "$ROUNDS"); do
        r[default]+="$(run 2 GOMP_SPINCOUNT=300000) "   # libgomp's own default, set: wick would not re-exec
        for n in $SPINS; do r[spin$n]+="$(run 2 GOMP_SPINCOUNT=$n) "; done
        r[passive]+="$(run 2 OMP_WAIT_POLICY=passive) "
        r[wick]+="$(run 2 X=1) "                         # what the CLI chooses by itself
        r[one]+="$(run 1 X=1) "
    done
    for c in default $(for n in $SPINS; do echo spin$n; done) passive wick one; do
        med=$(printf '%s\n' ${r[$c]} | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
        printf '%-10s %-34s %8s samples/s   (%s)\n' "$cond" \
            "$(case $c in default) echo "2 threads, libgomp default";; spin*) echo "2 threads, GOMP_SPINCOUNT=${c#spin}";;
               passive) echo "2 threads, OMP_WAIT_POLICY=passive";; wick) echo "2 threads, wick's default";;
               one) echo "1 thread";; esac)" "$med" "${r[$c]% }"
    done
    unset r
done
