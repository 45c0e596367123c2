#!/usr/bin/env bash
# loop.sh — the headline run's samples/s beside where its training time goes.
#
# In alternate rounds, REPS times: `wick train` exactly as bench/run.sh runs
# the headline (784-512-512-10 ReLU, batch 128, one epoch, SGD momentum 0.9,
# lr 0.05; its samples_per_s), then build/bench/loop, the same run through
# the public trainer with each step's time and team recorded (bench/loop.c),
# which splits the trainer's seconds into the steps at the median step and
# what the rest costs: the first step (packing), steps on fewer threads (the
# team tuner), steps with redo, slow steps (> 1.5x the median: preempted),
# the spread of the others, and the loop outside the steps; and the share
# of their cores' time the threads got (process CPU time / (threads x wall
# time) over the steps at the full team).  The median step's samples/s is
# what bench/step_ab.sh measures of the step alone.
#
#   bench/loop.sh                  5 rounds (~1 min on 2 quiet cores)
#   REPS=9 BUILD=build-x bench/loop.sh
#   DATA=DIR                       the Fashion-MNIST IDX files (default /usr/share/datasets/fashion-mnist)
#   TRANSIENT=1.0                  a neighbour spinning on core 1 for the first 1.0 s of each run
#                                  (both kinds; the data load takes ~0.5 s quiet): how long the team
#                                  tuner stays on fewer threads after it has left ("fewer threads")
set -euo pipefail
cd "$(dirname "$0")/.."
REPS=${REPS:-5}
BUILD=${BUILD:-build}
DATA=${DATA:-/usr/share/datasets/fashion-mnist}
bash scripts/setup.sh --bench >/dev/null
make -s -j2 BUILD="$BUILD" "$BUILD/wick" "$BUILD/bench/loop" "$BUILD/bench/peak" >/dev/null
out=bench/out/loop-$(date -u +%Y%m%dT%H%M%SZ).jsonl
mkdir -p bench/out
: > "$out"
"$BUILD/bench/peak" --json > "$out.peak"
echo "loop.sh: peak $(cat "$out.peak")" >&2
spinner=""
stop_spinner() { if [ -n "$spinner" ]; then kill "$spinner" 2>/dev/null || true; fi; spinner=""; }
trap stop_spinner EXIT
transient() {   # a neighbour on core 1 for TRANSIENT seconds, from now
    stop_spinner
    [ -n "${TRANSIENT:-}" ] || return 0
    timeout "$TRANSIENT" taskset -c 1 sh -c 'while :; do :; done' &
    spinner=$!
}
for rep in $(seq "$REPS"); do
    echo "loop.sh: round $rep/$REPS (load $(cut -d' ' -f1-3 /proc/loadavg))" >&2
    transient
    line=$("$BUILD/wick" train --data "$DATA" --arch 784-512-512-10 --act relu --batch 128 --epochs 1 \
        --optimizer sgd --momentum 0.9 --lr 0.05 --json 2>/dev/null | tail -n 1)
    printf '{"run": "wick train", "r": %s}\n' "$line" >> "$out"
    # the wick command re-executes itself with bounded OpenMP spinning (GOMP_SPINCOUNT=1000): so does this
    transient
    line=$(GOMP_SPINCOUNT=${GOMP_SPINCOUNT:-1000} "$BUILD/bench/loop" --data "$DATA" --json)
    stop_spinner
    printf '{"run": "bench/loop", "r": %s}\n' "$line" >> "$out"
done
echo "loop.sh: raw results in $out" >&2
/usr/bin/python3 - "$out" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
peak = json.load(open(sys.argv[1] + ".peak"))["peak_gflops_all"]
cli = [r["r"] for r in rows if r["run"] == "wick train"]
lp = [r["r"] for r in rows if r["run"] == "bench/loop"]
fps = 2 * (2 * (784 * 512 + 512 * 512 + 512 * 10) + 512 * 512 + 512 * 10)
med = statistics.median
print(f"2-core FMA peak {peak:.1f} GFLOP/s (bench/loop measures its own after each run)")
print("round  wick train  %peak | bench/loop  %peak  median step (ms, samples/s, %peak) | loop s = at median"
      " + first + fewer threads (n) + redo (n) + slow (n) + spread + outside; the share of their cores' time"
      " the threads got at the full team (the team tuner tries fewer threads only below 90%)")
for i, (a, b) in enumerate(zip(cli, lp)):
    print(f"{i + 1:5}  {a['samples_per_s']:10.0f} {100 * a['samples_per_s'] * fps / 1e9 / peak:5.1f}% |"
          f" {b['samples_per_s']:10.0f} {b['pct_peak']:5.1f}%  {1e3 * b['median_step_s']:.3f} {b['median_samples_per_s']:6.0f}"
          f" {b['pct_peak_median']:5.1f}% | {b['loop_s']:.4f} = {b['at_median_s']:.4f} {b['first_s']:+.4f}"
          f" {b['fewer_s']:+.4f} ({b['fewer_steps']}) {b['redo_s']:+.4f} ({b['redo_steps']}) {b['slow_s']:+.4f}"
          f" ({b['slow_steps']}) {b['spread_s']:+.4f} {b['outside_s']:+.4f}; cores' time {100 * b['cpu_share']:.1f}%")
k = ["loop_s", "at_median_s", "first_s", "fewer_s", "redo_s", "slow_s", "spread_s", "outside_s"]
m = {x: med(b[x] for b in lp) for x in k}
s = med(a["samples_per_s"] for a in cli)
print(f"median: wick train {s:.0f} samples/s = {100 * s * fps / 1e9 / peak:.1f}% of the peak; bench/loop"
      f" {med(b['samples_per_s'] for b in lp):.0f}, its median step {med(b['median_samples_per_s'] for b in lp):.0f}"
      f" samples/s ({med(b['pct_peak_median'] for b in lp):.1f}%)")
print("median split of the loop (s): " + ", ".join(f"{x[:-2]} {m[x]:+.4f}" for x in k) +
      f"; the loop / the steps at the median: {med(b['loop_s'] / b['at_median_s'] for b in lp):.4f}")
PY
