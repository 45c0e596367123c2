#!/usr/bin/env bash
# cnn_loop.sh — the conv net's `wick train` against its step: bench/cnn.sh's
# wick run (the issue's example CNN, batch 128, 2 threads, one epoch cut at
# STEPS steps, --val 0, SGD momentum 0.9, lr 0.01) beside where its training
# time goes.
#
# In alternate rounds, ROUNDS times: `wick train` exactly as bench/cnn.sh runs
# it (its samples_per_s); build/bench/cnn_loop, the same run through the
# public trainer with every step's wall and CPU time, page faults, context
# switches and run-queue wait recorded (bench/cnn_loop.c), which splits the
# trainer's seconds into the steps at the median step and what the rest
# costs (the first step, slow steps, the spread, the loop outside the steps),
# gives each quarter's median step (does a longer run slow down?) and the
# steps whose threads never waited for a CPU (the loop as a quiet machine runs
# it); and build/bench/cnn_prof, the step alone (random data, no gather, plain
# SGD), whose median is what the 2.76x of the fifth quiet window measured.
# Every program runs with GOMP_SPINCOUNT=1000, as the wick command runs itself.
#
#   bash bench/cnn_loop.sh                     ROUNDS=3 STEPS=60 THREADS=2 BUILD=build
#   STEPS=240 bash bench/cnn_loop.sh           a longer run (its quarters)
#   AB=WICK_GEMM_WARM bash bench/cnn_loop.sh   each round runs wick train and cnn_loop with AB=0 and AB=1,
#                                              ABBA (0 1 1 0, then 1 0 0 1): the switch's A/B as users run it
# Raw JSON lines in bench/out/cnn_loop-STAMP.jsonl, the table on stdout.
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-3}
STEPS=${STEPS:-60}
THREADS=${THREADS:-2}
BUILD=${BUILD:-build}
DATA=${DATA:-/usr/share/datasets/fashion-mnist}
AB=${AB:-}
ARCH="input:1x28x28,conv2d:32:3:pad=1,batchnorm,relu,maxpool:2,conv2d:64:3:pad=1,batchnorm,relu,maxpool:2,flatten,dropout:0.25,linear:256,relu,dropout:0.5,linear:10"
bash scripts/setup.sh --bench >/dev/null
make -s -j2 BUILD="$BUILD" "$BUILD/wick" "$BUILD/bench/cnn_loop" "$BUILD/bench/cnn_prof" >/dev/null
mkdir -p bench/out
out=bench/out/cnn_loop-$(date -u +%Y%m%dT%H%M%SZ).jsonl
: > "$out"
export GOMP_SPINCOUNT=1000
one() {   # value of AB ("" without AB)
    local e=()
    [ -n "$AB" ] && e=("$AB=$1")
    local line
    line=$(env "${e[@]}" "$BUILD/wick" train --arch "$ARCH" --data "$DATA" --epochs 1 --max-steps "$STEPS" --json \
        --quiet --val 0 --threads "$THREADS" --batch 128 --momentum 0.9 --lr 0.01 | tail -n 1)
    printf '{"run": "wick train", "ab": "%s", "r": %s}\n' "$1" "$line" >> "$out"
    line=$(env "${e[@]}" "$BUILD/bench/cnn_loop" --arch "$ARCH" --data "$DATA" --steps "$STEPS" --threads "$THREADS" --json)
    printf '{"run": "cnn_loop", "ab": "%s", "r": %s}\n' "$1" "$line" >> "$out"
}
for r in $(seq "$ROUNDS"); do
    echo "cnn_loop.sh: round $r/$ROUNDS (load $(cut -d' ' -f1-3 /proc/loadavg))" >&2
    if [ -n "$AB" ]; then
        if [ $((r % 2)) -eq 1 ]; then order="0 1 1 0"; else order="1 0 0 1"; fi
        for v in $order; do one "$v"; done
    else
        one ""
    fi
    p=$("$BUILD/bench/cnn_prof" --arch "$ARCH" --threads "$THREADS" --steps 30 | sed -n 2p)
    printf '{"run": "cnn_prof", "ab": "", "r": "%s"}\n' "$p" >> "$out"
done
echo "cnn_loop.sh: raw results in $out" >&2
/usr/bin/python3 - "$out" "$AB" <<'PY'
import json, re, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
ab = sys.argv[2]
med = statistics.median
prof = [float(re.search(r"median step ([0-9.]+) ms", r["r"]).group(1)) for r in rows if r["run"] == "cnn_prof"]
print(f"cnn_prof (the step alone, {len(prof)} runs of 30 steps): median steps "
      + ", ".join(f"{p:.2f}" for p in prof) + f" ms; median {med(prof):.2f} ms = {128e3 / med(prof):.0f} samples/s")
for v in sorted(set(r["ab"] for r in rows if r["run"] != "cnn_prof")):
    cli = [r["r"] for r in rows if r["run"] == "wick train" and r["ab"] == v]
    lp = [r["r"] for r in rows if r["run"] == "cnn_loop" and r["ab"] == v]
    tag = f"{ab}={v}: " if ab else ""
    print(f"{tag}wick train samples/s " + ", ".join(f"{c['samples_per_s']:.0f}" for c in cli)
          + f" (median {med(c['samples_per_s'] for c in cli):.0f}, {len(cli)} runs of {cli[0]['steps']} steps)")
    print(f"{tag}cnn_loop: loop s = steps at the median + first (its CPU) + slow (n) + spread + outside; quarters' "
          "median steps (ms); faults a step; run-queue wait a step (ms); the unwaited steps: n, median, mean (ms)")
    for b in lp:
        print(f"  {b['samples_per_s']:6.0f}/s  median step {1e3 * b['median_step_s']:.2f} ms ({b['median_samples_per_s']:.0f}/s),"
              f" mean {1e3 * b['mean_step_s']:.2f} | {b['loop_s']:.4f} = {b['at_median_s']:.4f} {b['first_s']:+.4f}"
              f" ({b['first_cpu_s']:+.4f}) {b['slow_s']:+.4f} ({b['slow_steps']}) {b['spread_s']:+.4f}"
              f" {b['outside_s']:+.4f} | " + " ".join(f"{1e3 * x:.2f}" for x in b["quarters_s"])
              + f" | {b['faults_per_step']:.2f} | {1e3 * b['run_queue_wait_per_step_s']:.2f} |"
              f" {b['unwaited_steps']} {1e3 * b['unwaited_median_s']:.2f} {1e3 * b['unwaited_mean_s']:.2f}")
    k = ["loop_s", "at_median_s", "first_s", "slow_s", "spread_s", "outside_s"]
    print(f"{tag}median split (s): " + ", ".join(f"{x[:-2]} {med(b[x] for b in lp):+.4f}" for x in k)
          + f"; loop / steps at the median {med(b['loop_s'] / b['at_median_s'] for b in lp):.4f};"
          f" wick train / cnn_prof's median step {med(c['samples_per_s'] for c in cli) * med(prof) / 128e3:.4f}")
    nu = sum(b["unwaited_steps"] for b in lp)
    if nu:   # the loop as a machine with nothing else on it runs it
        mu = sum(b["unwaited_steps"] * b["unwaited_mean_s"] for b in lp) / nu
        print(f"{tag}the {nu} steps (of {sum(b['steps'] - 1 for b in lp)}) whose threads waited under 0.5 ms for a CPU: "
              f"mean {1e3 * mu:.2f} ms = {128 / mu:.0f} samples/s, {mu / med(prof) * 1e3:.4f}x cnn_prof's median step")
PY
