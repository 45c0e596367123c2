#!/usr/bin/env bash
# cnn_prof_ab.sh — a 0/1 switch of the conv net's step, op by op: bench/cnn_prof
# (the issue's example spec, batch 128, the graph executor's ops timed one by
# one) with AB=0 and AB=1 alternated ABBA, ROUNDS times; prints each run's
# median step and the ops named in OPS (cnn_prof's row names, a regex), then
# each column's median for 0 and 1.  Wall time; CPU=1 takes the process's
# CPU time (WICK_PROF_CPU=1: the measure on a loaded machine, with THREADS=1).
#   bash bench/cnn_prof_ab.sh                       AB=WICK_CONV_BLK, 2 threads, ~1 min
#   AB=WICK_BN_DX OPS='conv 1x28|batchnorm 32' ROUNDS=6 bash bench/cnn_prof_ab.sh
#   THREADS=1 CPU=1 BUILD=build-x bash bench/cnn_prof_ab.sh
#   BASE=/tmp/old/build/bench/cnn_prof OPS=. bash bench/cnn_prof_ab.sh
#       two engine versions instead of a switch: 0 runs BASE (a cnn_prof built
#       from another commit), 1 runs this tree's
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-4}
STEPS=${STEPS:-30}
THREADS=${THREADS:-2}
CPU=${CPU:-0}
BUILD=${BUILD:-build}
AB=${AB:-WICK_CONV_BLK}
BASE=${BASE:-}
[ -z "$BASE" ] || { [ -x "$BASE" ] || { echo "cnn_prof_ab.sh: BASE=$BASE is not an executable" >&2; exit 2; }; AB=BASE; }
OPS=${OPS:-conv 32x14x14|batchnorm 64x14x14}
bash scripts/setup.sh --bench >/dev/null   # bench programs link libxsmm, as on a fresh machine
make -s -j2 BUILD="$BUILD" "$BUILD/bench/cnn_prof" >/dev/null
out=$(mktemp)
trap 'rm -f "$out"' EXIT
echo "# $(uptime)"
for r in $(seq "$ROUNDS"); do
    order="0 1 1 0"
    for v in $order; do
        bin=$BUILD/bench/cnn_prof
        [ -n "$BASE" ] && [ "$v" = 0 ] && bin=$BASE
        o=$(env "$AB=$v" WICK_PROF_CPU="$CPU" "$bin" --threads "$THREADS" --steps "$STEPS" 2>&1)
        step=$(echo "$o" | grep -o "median step [0-9.]*" | awk '{print $3}')
        ops=$(echo "$o" | grep -E "^($OPS)" | awk '{printf "%s_%s %s ", $2, $3, $4}')
        echo "$v step $step $ops" | tee -a "$out" | sed "s/^/round $r $AB=/"
    done
done
echo "# $(uptime)"
/usr/bin/python3 - "$out" "$AB" <<'PY'
import sys, statistics
rows = [l.split() for l in open(sys.argv[1]) if l.strip()]
for v in "01":
    cols = {}
    for r in rows:
        if r[0] != v: continue
        for k in range(1, len(r) - 1, 2): cols.setdefault(r[k], []).append(float(r[k + 1]))
    print(f"{sys.argv[2]}={v} medians (ms): " + ", ".join(f"{k} {statistics.median(x):.3f}" for k, x in cols.items()))
PY
