#!/usr/bin/env bash
# cnn.sh — the reference CNN (two conv blocks, fc 256), a whole training step, wick against PyTorch on
# this machine, with the FMA peak measured in the same run:
#   input:1x28x28,conv2d:32:3:pad=1,batchnorm,relu,maxpool:2,conv2d:64:3:pad=1,
#   batchnorm,relu,maxpool:2,flatten,dropout:0.25,linear:256,relu,dropout:0.5,linear:10
# on Fashion-MNIST, batch 128, SGD with momentum 0.9.
#
# Each round runs, in turn: wick train on 1 and 2 threads (the conv plans),
# the same with WICK_GRAPH_CONV=general (the graph's im2col path, for the
# A/B), bench/torch_cnn.py with Debian's torch (/usr/bin/python3) and PyPI's
# (bench/venv, bench/torch_venv.sh; skipped when absent) on 1 and 2 threads
# (2 threads with passive and with active OpenMP waits);
# build/bench/peak runs before the first round and after the last.  The
# table gives each configuration's median over the rounds: samples/s,
# GFLOP/s at wick summary's flops_train per sample, % of the FMA peak of
# that many threads (the better of the two peak runs), and the ratio to the
# best torch median.  `uptime` is logged before each round: the machine is
# shared, so read the 2-thread figures with the load beside them.
#
#   bash bench/cnn.sh                     # ROUNDS=3 STEPS=60 BUILD=build
#   ROUNDS=5 STEPS=100 BUILD=build-fp bash bench/cnn.sh
#   SYSTEMS="wick wick-general" bash bench/cnn.sh     # a subset
# Raw JSON lines go to bench/out/cnn-STAMP.jsonl, the table to stdout and
# bench/out/cnn-STAMP.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
ROUNDS=${ROUNDS:-3}
STEPS=${STEPS:-60}
SYSTEMS=${SYSTEMS:-"wick wick-general torch-debian torch-pypi"}
ARCH="input:1x28x28,conv2d:32:3:pad=1,batchnorm,relu,maxpool:2,conv2d:64:3:pad=1,batchnorm,relu,maxpool:2,flatten,dropout:0.25,linear:256,relu,dropout:0.5,linear:10"
DATA=/usr/share/datasets/fashion-mnist
mkdir -p bench/out
STAMP=$(date +%Y%m%d-%H%M%S)
RAW=bench/out/cnn-$STAMP.jsonl
: >"$RAW"

bash scripts/setup.sh --bench   # libxsmm (the bench programs) and Debian's torch
make -s -j2 BUILD="$BUILD" all bench >/dev/null
for f in "$BUILD/wick" "$BUILD/bench/peak"; do
    [ -x "$f" ] || { echo "cnn.sh: $f missing (make BUILD=$BUILD all bench)" >&2; exit 1; }
done
FLOPS=$("$BUILD/wick" summary --arch "$ARCH" --json | tail -1 |
        /usr/bin/python3 -c 'import json, sys; print(json.load(sys.stdin)["flops_train"])')

record() {   # system threads json
    printf '{"system":"%s","threads":%s,"result":%s}\n' "$1" "$2" "$3" >>"$RAW"
}
peak() {
    printf '{"system":"peak","result":%s}\n' "$("$BUILD/bench/peak" --json)" >>"$RAW"
}
# wick runs as a user runs it: the wick command bounds libgomp's spinning
# waits itself (tools/wick.c; WICK_WAIT=passive|active overrides).  PyTorch's
# 2-thread runs try both OpenMP wait policies, as run.sh does, and the better
# counts (TORCH_WAIT="passive active"; one of them to save time): passive
# wins beside a neighbour, active often on a quiet machine.
WICK_WAIT=${WICK_WAIT:-}
TORCH_WAIT=${TORCH_WAIT:-"passive active"}
wick_run() {   # threads [env...]
    local t=$1; shift
    env ${WICK_WAIT:+OMP_WAIT_POLICY=$WICK_WAIT} "$@" "$BUILD/wick" train --arch "$ARCH" --data "$DATA" --epochs 1 --max-steps "$STEPS" \
        --json --quiet --val 0 --threads "$t" --batch 128 --momentum 0.9 --lr 0.01 | tail -1
}
torch_run() {   # python threads wait
    OMP_NUM_THREADS=$2 MKL_NUM_THREADS=$2 OPENBLAS_NUM_THREADS=$2 OMP_WAIT_POLICY=$3 \
        "$1" bench/torch_cnn.py --threads "$2" --steps "$STEPS" --warmup 5 --data "$DATA/" | tail -1
}
torch_record() {   # system python threads
    if [ "$3" -eq 1 ]; then record "$1" 1 "$(torch_run "$2" 1 active)"; return; fi
    for w in $TORCH_WAIT; do record "$1 ($w)" "$3" "$(torch_run "$2" "$3" "$w")"; done
}

peak
for r in $(seq "$ROUNDS"); do
    printf '{"system":"uptime","round":%d,"result":"%s"}\n' "$r" "$(uptime | sed 's/.*load/load/')" >>"$RAW"
    for t in 1 2; do
        for s in $SYSTEMS; do
            case $s in
            wick) record wick "$t" "$(wick_run "$t")" ;;
            wick-general) record wick-general "$t" "$(wick_run "$t" WICK_GRAPH_CONV=general)" ;;
            torch-debian) torch_record torch-debian /usr/bin/python3 "$t" ;;
            torch-pypi) [ -x bench/venv/bin/python ] && torch_record torch-pypi bench/venv/bin/python "$t" ;;
            esac
        done
    done
done
peak

/usr/bin/python3 - "$RAW" "$FLOPS" <<'EOF' | tee "${RAW%.jsonl}.txt"
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
flops = float(sys.argv[2])
peaks = [r["result"] for r in rows if r["system"] == "peak"]
p1 = max(p["peak_gflops_1"] for p in peaks)
pn = max(p["peak_gflops_all"] for p in peaks)
loads = [r["result"] for r in rows if r["system"] == "uptime"]
runs = {}
for r in rows:
    if r["system"] in ("peak", "uptime"):
        continue
    runs.setdefault((r["system"], r["threads"]), []).append(r["result"]["samples_per_s"])
best_torch = max([statistics.median(v) for (s, t), v in runs.items() if s.startswith("torch")] or [float("nan")])
print(f"# {flops / 1e6:.2f} MFLOP a training sample; FMA peak 1 thread {p1:.1f}, "
      f"2 threads {pn:.1f} GFLOP/s (best of {len(peaks)} runs: {[(p['peak_gflops_1'], p['peak_gflops_all']) for p in peaks]})")
for i, l in enumerate(loads):
    print(f"# round {i + 1}: {l}")
print("| system | threads | samples/s (each round) | median | GFLOP/s | % of peak | / best torch |")
print("|---|---|---|---|---|---|---|")
for (s, t), v in sorted(runs.items()):
    m = statistics.median(v)
    gf = m * flops / 1e9
    pk = p1 if t == 1 else pn
    print(f"| {s} | {t} | {', '.join(f'{x:.0f}' for x in v)} | {m:.0f} | {gf:.1f} | {100 * gf / pk:.1f}% | {m / best_torch:.2f}x |")
EOF
