#!/usr/bin/env bash
# busy.sh — the headline MLP (784-512-512-10 ReLU, batch 128, one epoch of
# Fashion-MNIST, SGD momentum 0.9, lr 0.05) beside a busy neighbour: a
# process spinning on one core, pinned there with taskset, started before the
# runs and stopped after them (issue 22).  In each round, in turn: wick's
# default (all cores), wick --threads 1, PyTorch from PyPI (bench/venv) on
# 1 thread and on 2 threads with OMP_WAIT_POLICY passive and active, and the
# same three for Debian's python3-torch.  Prints the medians over the rounds,
# wick's default against its --threads 1 and against the best PyTorch row,
# with the machine's FMA peak (build/bench/peak) measured first, neighbour
# and all.
#
#   bash bench/busy.sh                 3 rounds with the neighbour (~6 min on 2 cores)
#   NEIGHBOUR=0 bash bench/busy.sh     the same without it (the quiet table)
#   REPS=5 CORE=0 SYSTEMS="wick torch-pypi" BUILD=build-x bash bench/busy.sh
#   TORCH_WAIT=passive LIMIT=20000     quick: no active-wait PyTorch runs (minutes each
#                                      beside a neighbour), PyTorch on 20000 samples
#   BASE=/tmp/old/build/wick bash bench/busy.sh   also another wick binary's default
#                                      (e.g. an older revision's), in the same rounds
#   REDO_AB=1 bash bench/busy.sh       also wick's default with the step's redo forced
#                                      on (WICK_REDO=1) and off (WICK_REDO=0), and both on
#                                      two threads with the team tuner off (WICK_TEAM_SIZE=2),
#                                      redo also without a late worker's join (WICK_REDO_REJOIN=0)
#                                      and without its race, abandon and overlap (WICK_REDO_RACE=0 ...)
# Raw JSON lines go to bench/out/busy-*.jsonl.
set -euo pipefail
cd "$(dirname "$0")/.."
REPS=${REPS:-3}
NEIGHBOUR=${NEIGHBOUR:-1}
CORE=${CORE:-1}
SYSTEMS=${SYSTEMS:-"wick torch-pypi debian"}
BUILD=${BUILD:-build}
venv_py=bench/venv/bin/python
mkdir -p bench/out
out=bench/out/busy-$(date -u +%Y%m%dT%H%M%SZ).jsonl
: > "$out"
bash scripts/setup.sh --bench   # libxsmm (build/bench/peak) and Debian's torch
make -s -j2 BUILD="$BUILD" "$BUILD/wick" "$BUILD/bench/peak" >/dev/null
if [[ " $SYSTEMS " == *" torch-pypi "* ]] && ! [ -x "$venv_py" ]; then
    echo "busy.sh: no $venv_py; run bench/torch_venv.sh first (PyPI rows skipped)" >&2
    SYSTEMS=${SYSTEMS//torch-pypi/}
fi

spinner=""
stop_spinner() { [ -n "$spinner" ] && kill "$spinner" 2>/dev/null; spinner=""; }
trap stop_spinner EXIT
if [ "$NEIGHBOUR" = 1 ]; then
    taskset -c "$CORE" sh -c 'while :; do :; done' &
    spinner=$!
    sleep 0.5
    echo "busy.sh: neighbour pid $spinner spinning on core $CORE" >&2
fi

args=(--arch 784-512-512-10 --act relu --batch 128)
record() {   # label json-output
    local line
    line=$(printf '%s\n' "$2" | tail -n 1)
    if [[ $line != "{"* ]]; then echo "busy.sh: $1 printed no JSON line" >&2; return; fi
    printf '{"run": "%s", "load": "%s", "r": %s}\n' "$1" "$(cut -d' ' -f1 /proc/loadavg)" "$line" >> "$out"
}
wick_run() { "$BUILD/wick" train "${args[@]}" --epochs 1 --optimizer sgd --momentum 0.9 --lr 0.05 --json "$@" 2>/dev/null || true; }
torch_run() {   # python threads wait
    OMP_NUM_THREADS=$2 MKL_NUM_THREADS=$2 OPENBLAS_NUM_THREADS=$2 OMP_WAIT_POLICY=$3 \
        "$1" bench/torch_mlp.py --threads "$2" "${args[@]}" ${LIMIT:+--limit $LIMIT} 2>/dev/null || true
}
TORCH_WAIT=${TORCH_WAIT:-"passive active"}   # the 2-thread runs' OpenMP wait policies
torch_all() {   # python name
    record "$2 1 thread" "$(torch_run "$1" 1 active)"
    for w in $TORCH_WAIT; do record "$2 2 threads $w" "$(torch_run "$1" 2 "$w")"; done
}

"$BUILD/bench/peak" --json > "${out%.jsonl}.peak.json"
for rep in $(seq "$REPS"); do
    echo "busy.sh: round $rep/$REPS (load $(cut -d' ' -f1-3 /proc/loadavg))" >&2
    for sys in $SYSTEMS; do
        case $sys in
        wick)
            record "wick default" "$(wick_run)"
            record "wick --threads 1" "$(wick_run --threads 1)"
            [ -n "${BASE:-}" ] && record "wick BASE default" "$("$BASE" train "${args[@]}" --epochs 1 \
                --optimizer sgd --momentum 0.9 --lr 0.05 --json 2>/dev/null || true)"
            if [ "${REDO_AB:-0}" = 1 ]; then   # the step's redo forced on / off (chain.c)
                record "wick WICK_REDO=1" "$(WICK_REDO=1 wick_run)"
                record "wick WICK_REDO=0" "$(WICK_REDO=0 wick_run)"
                # and with both threads kept (no team tuner): what redo harvests of the shared core
                record "wick 2 threads WICK_REDO=1" "$(WICK_TEAM_SIZE=2 WICK_REDO=1 wick_run)"
                record "wick 2 threads WICK_REDO=0" "$(WICK_TEAM_SIZE=2 WICK_REDO=0 wick_run)"
                # a late worker leaves instead of joining the step under way (chain.c's step_redo)
                record "wick 2 threads WICK_REDO=1 REJOIN=0" \
                    "$(WICK_TEAM_SIZE=2 WICK_REDO=1 WICK_REDO_REJOIN=0 wick_run)"
                # redo as it was before the race, the abandon and the overlap (chain.c's redo_late,
                # redo_watch, redo_one)
                record "wick 2 threads WICK_REDO=1 RACE,ABANDON,OVERLAP=0" \
                    "$(WICK_TEAM_SIZE=2 WICK_REDO=1 WICK_REDO_RACE=0 WICK_REDO_ABANDON=0 WICK_REDO_OVERLAP=0 wick_run)"
            fi ;;
        torch-pypi) torch_all "$venv_py" "PyPI torch" ;;
        debian) torch_all /usr/bin/python3 "Debian torch" ;;
        esac
    done
done
stop_spinner

/usr/bin/python3 - "$out" "${out%.jsonl}.peak.json" "$NEIGHBOUR" "$CORE" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
peak = json.load(open(sys.argv[2]))
cond = f"a neighbour spinning on core {sys.argv[4]}" if sys.argv[3] == "1" else "no neighbour"
print(f"headline MLP, {cond}; FMA peak at the start: 1 core {peak['peak_gflops_1']:.1f}, "
      f"all cores {peak['peak_gflops_all']:.1f} GFLOP/s")
print(f"{'run':44} {'n':>2} {'samples/s':>10} {'(min-max)':>17} {'%peak':>6}  load")
med = {}
for name in dict.fromkeys(r["run"] for r in rows):
    rs = [r for r in rows if r["run"] == name]
    sps = [r["r"]["samples_per_s"] for r in rs]
    m = statistics.median(sps)
    med[name] = m
    f = rs[0]["r"].get("flops_per_sample") or rs[0]["r"]["gflops"] * 1e9 / rs[0]["r"]["samples_per_s"]
    system = rs[0]["r"].get("system", "")
    label = name if name.startswith("wick") else f"{name} ({system.split()[-1]})"
    loads = "/".join(r["load"] for r in rs)
    print(f"{label[:44]:44} {len(sps):>2} {m:>10.0f} {min(sps):>8.0f}-{max(sps):<8.0f} "
          f"{100 * m * f / 1e9 / peak['peak_gflops_all']:>5.1f}%  {loads}")
w, w1, w0 = med.get("wick default"), med.get("wick --threads 1"), med.get("wick BASE default")
torch = {k: v for k, v in med.items() if not k.startswith("wick")}
if w and w1:
    print(f"wick default / wick --threads 1: {w / w1:.2f}")
if w and w0:
    print(f"wick default / BASE's default: {w / w0:.2f}")
if w and torch:
    best = max(torch, key=torch.get)
    print(f"wick default / best PyTorch ({best}, {torch[best]:.0f}): {w / torch[best]:.2f}")
r2 = med.get("wick 2 threads WICK_REDO=1")
if r2 and torch:
    best = max(torch, key=torch.get)
    print(f"wick 2 threads WICK_REDO=1 / best PyTorch: {r2 / torch[best]:.2f}"
          + (f"; / wick --threads 1: {r2 / w1:.2f}" if w1 else ""))
PY
echo "busy.sh: raw results in $out" >&2
