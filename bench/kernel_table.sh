#!/usr/bin/env bash
# kernel_table.sh — a Lee et al. (2018)-style table for Fashion-MNIST (issue 20):
# NNGP and NTK test accuracy against the training-set size and the depth,
# beside a trained MLP of the same depth (wick train, critical init, the
# same first N images, no validation split), hyperparameters (C_b, noise) by
# the NNGP evidence of the first min(N, SELECT) images.  Writes a CSV and a
# PNG (gnuplot).
#   bench/kernel_table.sh                         SIZES 1000..60000, DEPTHS 2,3,5: ~2 h
#   SIZES=1000,2000,5000,10000,20000 bench/kernel_table.sh             ~12 min
#   SIZES=1000,2000,5000 DEPTHS=2,3 TEST=2000 bench/kernel_table.sh    minutes
#   MLP=0 ...                                     kernels only
#   OPT=1 ...                                     C_b, C_W, noise by wick kernel --optimise
# Each --train N needs 8 N^2/2 bytes (60000: 14.4 GB) and two n^3/3 Choleskys
# (float32 ones refined to float64 from 16384 on: docs/kernel.md).  Times are
# predictions for 2 quiet Zen 3 cores from per-stage rates (docs/kernel.md):
# per depth ~5 s up to 5000, ~20 s at 10000, ~90 s at 20000, ~8 min at 40000,
# ~25 min at 60000, plus the MLP (20 epochs) and the 6-point grid at 2000.
set -euo pipefail
cd "$(dirname "$0")/.."
SIZES=${SIZES:-1000,5000,10000,20000,40000,60000}
DEPTHS=${DEPTHS:-2,3,5}
TEST=${TEST:-10000}
SELECT=${SELECT:-2000}
EPOCHS=${EPOCHS:-20}
MLP=${MLP:-1}
OPT=${OPT:-0}
optflag=
if [ "$OPT" = 1 ]; then optflag=--optimise; fi
BUILD=${BUILD:-build}
OUT=${OUT:-bench/results/kernel-table-$(date +%Y%m%d)}
W=$BUILD/wick
bash scripts/setup.sh   # the libraries wick links and the data set
[ -x "$W" ] || make -s BUILD="$BUILD" all >/dev/null
mkdir -p "$(dirname "$OUT")"
csv=$OUT.csv
echo "train,depth,nngp,ntk,mlp,cb,noise,log_evidence_full,seconds" > "$csv"
json_get() { python3 -c "import json,sys; j=json.loads(sys.stdin.read().strip().splitlines()[-1]); print(j$1)"; }
for n in ${SIZES//,/ }; do
    for d in ${DEPTHS//,/ }; do
        k=$("$W" kernel --train "$n" --test "$TEST" --depths "$d" --select "$SELECT" \
            $optflag --json 2>/dev/null)
        nngp=$(echo "$k" | json_get "['accuracy_nngp']")
        ntk=$(echo "$k" | json_get "['accuracy_ntk']")
        cb=$(echo "$k" | json_get "['cb']")
        noise=$(echo "$k" | json_get "['noise']")
        ev=$(echo "$k" | json_get "['log_evidence_full']")
        secs=$(echo "$k" | json_get "['seconds']")
        mlp=nan
        if [ "$MLP" = 1 ]; then
            # depth L: L - 1 hidden layers of 512
            arch=784$(printf -- '-512%.0s' $(seq 1 $((d - 1))))-10
            t=$("$W" train --arch "$arch" --train-limit "$n" --val 0 --epochs "$EPOCHS" --quiet --json 2>/dev/null || true)
            mlp=$(echo "$t" | json_get "['test_acc']" 2>/dev/null || echo nan)
        fi
        echo "$n,$d,$nngp,$ntk,$mlp,$cb,$noise,$ev,$secs" | tee -a "$csv"
    done
done
if command -v gnuplot >/dev/null; then
    gnuplot -e "csv='$csv'; out='$OUT.png'; depths='${DEPTHS//,/ }'; ntest='$TEST'" - <<'GP'
set terminal pngcairo size 900,600
set output out
set datafile separator ","
set logscale x
set datafile missing NaN
set offsets graph 0.05, graph 0.05, graph 0.08, graph 0.05
set key bottom right
set xlabel "training images"
set ylabel "test accuracy (Fashion-MNIST, ".ntest." test images)"
set title "Infinite-width NNGP / NTK (ReLU, C_W = 2) beside trained MLPs, by depth"
plot for [d in depths] csv every ::1 using 1:($2 == d ? $3 : NaN) with linespoints dashtype 1 title "NNGP, depth ".d, \
     for [d in depths] csv every ::1 using 1:($2 == d ? $4 : NaN) with linespoints dashtype 2 title "NTK, depth ".d, \
     for [d in depths] csv every ::1 using 1:($2 == d ? $5 : NaN) with linespoints dashtype 3 title "MLP, depth ".d
GP
    echo "kernel_table: $csv, $OUT.png"
else
    echo "kernel_table: $csv (no gnuplot: no plot)"
fi
