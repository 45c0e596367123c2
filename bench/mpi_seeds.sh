#!/usr/bin/env bash
# Is the test accuracy of K ranks (mpirun -np K wick train) that of one process, or only as close
# as two seeds are?  Trains the main job (784-512-512-10 on Fashion-MNIST, batch 128, the global
# batch under mpirun) for each seed and each K, and prints test accuracy and loss per run, then
# mean +- sd over the seeds for each K and the paired difference (K ranks - one process, same
# seed) with its standard error.  K = 1 is the plain single-process run (its MLP fast path).
# K ranks compute the same update as one process up to rounding (docs/distributed.md), and early
# training amplifies rounding, so a K-rank run and a one-process run of the same seed part like
# two seeds: equal accuracy means a paired difference within its noise.
#   bench/mpi_seeds.sh                          seeds 1-5, K = 1 and 4, 3 epochs
#   SEEDS="1 2 3" KS="1 2 4" EPOCHS=20 bench/mpi_seeds.sh    the full main job (minutes a run)
# Runs are niced (nice -n 10); timings are not the point here.
set -eu
cd "$(dirname "$0")/.."
W=${WICK:-build/wick}
SEEDS=${SEEDS:-1 2 3 4 5}
KS=${KS:-1 4}
EPOCHS=${EPOCHS:-3}
EXTRA=${EXTRA:-}
OUT=${OUT:-bench/out/mpi_seeds}
mkdir -p "$OUT"
bash scripts/setup.sh   # the build packages and Open MPI
[ -n "${WICK:-}" ] || make -s -j2 build/wick >/dev/null
[ -x "$W" ] || { echo "mpi_seeds: build $W first (make)" >&2; exit 1; }
MPI="mpirun --oversubscribe --allow-run-as-root --mca btl self,vader"
export OMPI_MCA_mpi_yield_when_idle=1
for s in $SEEDS; do
    for k in $KS; do
        f="$OUT/e${EPOCHS}_k${k}_s$s.json"
        [ -s "$f" ] && continue   # a finished run is kept: the script resumes where it stopped
        echo "== seed $s, K = $k, $EPOCHS epochs" >&2
        if [ "$k" = 1 ]; then
            nice -n 10 $W train --quiet --json --epochs $EPOCHS --seed $s $EXTRA | tail -n 1 > "$f.tmp"
        else
            nice -n 10 $MPI -np $k $W train --quiet --json --epochs $EPOCHS --seed $s $EXTRA | tail -n 1 > "$f.tmp"
        fi
        mv "$f.tmp" "$f"
    done
done
python3 - "$OUT" "$EPOCHS" "$SEEDS" "$KS" <<'PY'
import json, math, sys
out, epochs, seeds, ks = sys.argv[1], sys.argv[2], sys.argv[3].split(), sys.argv[4].split()
r = {(k, s): json.load(open(f"{out}/e{epochs}_k{k}_s{s}.json")) for k in ks for s in seeds}
def ms(v):
    m = sum(v) / len(v)
    sd = math.sqrt(sum((x - m) ** 2 for x in v) / (len(v) - 1)) if len(v) > 1 else float("nan")
    return m, sd
print(f"main job, {epochs} epochs, seeds {' '.join(seeds)}: test accuracy / test loss")
print(f"{'seed':>5}" + "".join(f"{'K=' + k:>20}" for k in ks))
for s in seeds:
    print(f"{s:>5}" + "".join(f"{r[k, s]['test_acc']:>11.4f} /{r[k, s]['test_loss']:>7.4f}" for k in ks))
for what in ("test_acc", "test_loss"):
    print(f"\n{what}: mean +- sd over {len(seeds)} seeds")
    for k in ks:
        m, sd = ms([r[k, s][what] for s in seeds])
        print(f"  K={k}: {m:.4f} +- {sd:.4f}")
    for k in ks[1:]:
        d = [r[k, s][what] - r[ks[0], s][what] for s in seeds]
        m, sd = ms(d)
        print(f"  K={k} - K={ks[0]}, paired: {m:+.4f} +- {sd / math.sqrt(len(d)):.4f} (se; sd {sd:.4f})")
PY
