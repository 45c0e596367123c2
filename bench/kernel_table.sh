#!/usr/bin/env bash
# kernel_table.sh — a Lee et al. (2018)-style table for Fashion-MNIST (issue 20):
# NNGP and NTK test accuracy against the training-set size and the depth,
# beside a trained MLP of the same depth and width (wick train), with the
# hyperparameters chosen by the NNGP log evidence.  Writes $OUT.csv (one row a
# size and depth; joined from $OUT-kernel.csv and $OUT-mlp.csv, which the two
# halves append to), $OUT-evidence.csv (the choice and its error), $OUT.json,
# $OUT.txt (the tables as text) and $OUT.png (gnuplot: accuracy against the
# size, log x, one curve a method and depth).
#
# 1. Evidence (once a depth): `wick kernel --optimise` maximises the NNGP log
#    evidence of the first EVPRE training images over (C_b, C_W, noise) by BFGS
#    on the exact gradient, from C_b 0.1, C_W 2, noise 1e-6; then BFGS again on
#    the first EVSEL images, started there.  Its start against its end is the
#    estimator's error: what choosing on EVPRE images costs in EVSEL-image
#    evidence (nats).  The table uses the EVSEL optimum; the depth for the BIG
#    sizes is the one with the largest EVSEL-image evidence.
# 2. Rows: for every size in SIZES and depth in DEPTHS, `wick kernel` at that
#    depth's hyperparameters on all TEST test images, and `wick train` of a
#    784-[WIDTH]x(depth-1)-10 ReLU MLP (critical init, SGD with momentum 0.9, lr
#    0.05 decayed linearly to 5e-4, batch 128, cross-entropy, no validation
#    split) on the same first `size` images for max(EPOCHS, MLPSTEPS*128/size)
#    epochs.  BIG sizes (40k, 60k) only at the evidence's depth.
#
#   bench/kernel_table.sh                                   everything: hours on 2 cores
#   SIZES=1000,2000 DEPTHS=2,3 BIG= TEST=2000 bench/kernel_table.sh   minutes
#   MLP=0 ... / KERNELS=0 BEST=d ...   one half only (run both at once: the rows
#                           of each go to their own CSV, joined at the end)
#   EVIDENCE=file.csv ...   reuse an -evidence.csv
#   PLOT_ONLY=1 OUT=...     only the joined CSV, text, JSON and plot
# Each --train N needs 8 N^2/2 bytes (60000: 14.4 GB) and two n^3/3 Choleskys
# (float32 ones refined to float64 from 16384 on: docs/kernel.md); 60000 took
# 29 min on 2 quiet Zen 3 cores.  Accuracies do not depend on the machine's load.
set -euo pipefail
cd "$(dirname "$0")/.."
SIZES=${SIZES-1000,2000,5000,10000,20000}
BIG=${BIG-40000}
DEPTHS=${DEPTHS:-2,3,5}
TEST=${TEST:-10000}
EVPRE=${EVPRE:-500}
EVSEL=${EVSEL:-1000}
EPOCHS=${EPOCHS:-5}
MLPSTEPS=${MLPSTEPS:-400}
WIDTH=${WIDTH:-512}
MLP=${MLP:-1}
KERNELS=${KERNELS:-1}
THREADS=${THREADS:-2}
BUILD=${BUILD:-build}
OUT=${OUT:-bench/results/kernel-table-$(date +%Y%m%d)}
W=$BUILD/wick
mkdir -p "$(dirname "$OUT")"
csv=$OUT.csv
kcsv=$OUT-kernel.csv
mcsv=$OUT-mlp.csv
evcsv=${EVIDENCE:-$OUT-evidence.csv}
jget() { python3 -c "import json,sys; j=json.loads(sys.stdin.read().strip().splitlines()[-1]); print(j$1)"; }

if [ "${PLOT_ONLY:-0}" != 1 ]; then
bash scripts/setup.sh   # the libraries wick links and the data set
[ -x "$W" ] || make -s BUILD="$BUILD" all >/dev/null

if [ "$KERNELS" = 1 ] && [ -z "${EVIDENCE:-}" ]; then
    echo "depth,cb_pre,cw_pre,noise_pre,log_ev_pre,cb,cw,noise,log_ev_at_pre,log_ev_sel,gap_nats,steps,converged,seconds" > "$evcsv"
    for d in ${DEPTHS//,/ }; do
        t0=$(date +%s)
        k=$("$W" kernel --train "$EVPRE" --select "$EVPRE" --test 100 --depths "$d" --cbs 0.1 \
            --noises 0.000001 --optimise --threads "$THREADS" --json 2>/dev/null)
        cb=$(echo "$k" | jget "['cb']"); cw=$(echo "$k" | jget "['cw']"); noise=$(echo "$k" | jget "['noise']")
        evp=$(echo "$k" | jget "['optimised']['log_evidence_after']")
        # BFGS again on EVSEL images from the EVPRE optimum: its starting
        # evidence against its end is what the smaller subset's choice costs
        c=$("$W" kernel --train "$EVSEL" --select "$EVSEL" --test 100 --depths "$d" --cbs "$cb" \
            --cw "$cw" --noises "$noise" --optimise --threads "$THREADS" --json 2>/dev/null)
        evc=$(echo "$c" | jget "['optimised']['log_evidence_before']")
        evm=$(echo "$c" | jget "['optimised']['log_evidence_after']")
        steps=$(echo "$c" | jget "['optimised']['steps']"); conv=$(echo "$c" | jget "['optimised']['converged']")
        cb2=$(echo "$c" | jget "['cb']"); cw2=$(echo "$c" | jget "['cw']"); no2=$(echo "$c" | jget "['noise']")
        gap=$(python3 -c "print($evm - $evc)")
        echo "$d,$cb,$cw,$noise,$evp,$cb2,$cw2,$no2,$evc,$evm,$gap,$steps,$conv,$(( $(date +%s) - t0 ))" | tee -a "$evcsv"
    done
fi
if [ "$KERNELS" = 1 ]; then
    best=$(python3 -c "import csv; r=list(csv.DictReader(open('$evcsv'))); print(max(r, key=lambda x: float(x['log_ev_sel']))['depth'])")
    echo "kernel_table: the evidence on $EVSEL images chooses depth $best"
else
    best=${BEST:-2}
fi

[ -f "$kcsv" ] || echo "train,depth,nngp,ntk,cb,cw,noise,log_evidence_full,kernel_seconds" > "$kcsv"
[ -f "$mcsv" ] || echo "train,depth,mlp,mlp_epochs,mlp_seconds" > "$mcsv"
row() { # size depth
    local n=$1 d=$2 hp cb cw noise k nngp ntk ev secs mlp ep ms arch t t0
    if [ "$KERNELS" = 1 ]; then
        hp=$(python3 -c "import csv; r=[x for x in csv.DictReader(open('$evcsv')) if x['depth']=='$d'][0]; print(r['cb'], r['cw'], r['noise'])")
        read -r cb cw noise <<< "$hp"
        k=$("$W" kernel --train "$n" --test "$TEST" --select "$(( n < 500 ? n : 500 ))" --depths "$d" \
            --cbs "$cb" --cw "$cw" --noises "$noise" --threads "$THREADS" --json 2>/dev/null)
        nngp=$(echo "$k" | jget "['accuracy_nngp']"); ntk=$(echo "$k" | jget "['accuracy_ntk']")
        ev=$(echo "$k" | jget "['log_evidence_full']"); secs=$(echo "$k" | jget "['seconds']")
        echo "$n,$d,$nngp,$ntk,$cb,$cw,$noise,$ev,$secs" | tee -a "$kcsv"
    fi
    if [ "$MLP" = 1 ]; then
        arch=784$(for _ in $(seq 2 "$d"); do printf -- '-%s' "$WIDTH"; done)-10
        ep=$(( (MLPSTEPS * 128 + n - 1) / n )); [ "$ep" -ge "$EPOCHS" ] || ep=$EPOCHS
        t0=$(date +%s)
        t=$("$W" train --arch "$arch" --train-limit "$n" --val 0 --epochs "$ep" --threads "$THREADS" \
            --quiet --json 2>/dev/null || true)
        ms=$(( $(date +%s) - t0 ))
        mlp=$(echo "$t" | jget "['test_acc']" 2>/dev/null || echo nan)
        echo "$n,$d,$mlp,$ep,$ms" | tee -a "$mcsv"
    fi
}
for n in ${SIZES//,/ }; do
    for d in ${DEPTHS//,/ }; do row "$n" "$d"; done
done
for n in ${BIG//,/ }; do row "$n" "$best"; done
fi

# the text table, the JSON, the plot
python3 - "$kcsv" "$mcsv" "$evcsv" "$OUT" "$TEST" "$EVPRE" "$EVSEL" <<'PY'
import csv, json, os, sys
kf, mf, ef, out, ntest, evpre, evsel = sys.argv[1:8]
rd = lambda f: list(csv.DictReader(open(f))) if os.path.exists(f) else []
krows, mrows, ev = rd(kf), rd(mf), rd(ef)
# the kernel and MLP rows joined on (train, depth); the last of repeated rows wins
rows = {}
for r in krows + mrows:
    rows.setdefault((int(r['train']), int(r['depth'])), {}).update(r)
cols = ["train", "depth", "nngp", "ntk", "mlp", "mlp_epochs", "cb", "cw", "noise", "log_evidence_full",
        "kernel_seconds", "mlp_seconds"]
table = [{c: rows[k].get(c, "nan") for c in cols} for k in sorted(rows)]
with open(out + ".csv", "w") as f:
    f.write(",".join(cols) + "\n")
    for r in table: f.write(",".join(str(r[c]) for c in cols) + "\n")
lines = []
if ev:
    lines.append("hyperparameters: BFGS (exact gradient) on the NNGP log evidence of the first %s training images,"
                 % evsel)
    lines.append("started from the optimum on the first %s; 'gap' = the %s-image evidence gained by re-optimising "
                 "there (what choosing on %s images would cost):" % (evpre, evsel, evpre))
    lines.append("depth  C_b        C_W      noise      log ev (%s)  at the %s-optimum  gap nats  steps" % (evsel, evpre))
    for e in ev:
        lines.append("%5s  %-9.3g  %-7.4g  %-9.4g  %12.1f  %17.1f  %8.2f  %5s" % (e['depth'], float(e['cb']),
                     float(e['cw']), float(e['noise']), float(e['log_ev_sel']), float(e['log_ev_at_pre']),
                     float(e['gap_nats']), e['steps']))
    lines.append("")
lines.append("test accuracy on %s Fashion-MNIST test images:" % ntest)
lines.append("train  depth   NNGP    NTK     MLP   (MLP epochs)")
f = lambda s: "  -   " if s in ("nan", "") else "%.4f" % float(s)
for r in table:
    lines.append("%5sk %5s  %s  %s  %s  (%s)" % ("%g" % (int(r['train']) / 1000), r['depth'], f(r['nngp']),
                 f(r['ntk']), f(r['mlp']), r['mlp_epochs']))
open(out + ".txt", "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
json.dump({"test_images": int(ntest), "evidence_subset": int(evsel), "evidence_presubset": int(evpre),
           "evidence": ev, "rows": table}, open(out + ".json", "w"), indent=1)
PY
if command -v gnuplot >/dev/null; then
    depths=$(python3 -c "import csv; print(' '.join(sorted({r['depth'] for r in csv.DictReader(open('$csv'))}, key=int)))")
    gnuplot -e "csv='$csv'; out='$OUT.png'; depths='$depths'; ntest='$TEST'" - <<'GP'
set terminal pngcairo size 1000,650
set output out
set datafile separator ","
set logscale x
set autoscale xfix
set datafile missing NaN
set offsets graph 0.03, graph 0.03, graph 0.05, graph 0.05
set key outside right top
set xlabel "training images (the first N of Fashion-MNIST)"
set ylabel "test accuracy (".ntest." test images)"
set xtics ("1k" 1000, "2k" 2000, "5k" 5000, "10k" 10000, "20k" 20000, "40k" 40000, "60k" 60000)
set grid
cols = "#1f77b4 #d62728 #2ca02c #9467bd #ff7f0e #8c564b"
set title "NNGP (solid) / NTK (dashed) at evidence-chosen C_b, C_W, noise; trained ReLU MLPs (dotted), by depth"
plot for [i=1:words(depths)] csv every ::1 using 1:($2 == word(depths,i) ? $3 : NaN) with linespoints lc rgb word(cols,i) pt 7 dashtype 1 title "NNGP, depth ".word(depths,i), \
     for [i=1:words(depths)] csv every ::1 using 1:($2 == word(depths,i) ? $4 : NaN) with linespoints lc rgb word(cols,i) pt 6 dashtype 2 title "NTK, depth ".word(depths,i), \
     for [i=1:words(depths)] csv every ::1 using 1:($2 == word(depths,i) ? $5 : NaN) with linespoints lc rgb word(cols,i) pt 4 dashtype 3 title "MLP, depth ".word(depths,i)
GP
    echo "kernel_table: $csv, $evcsv, $OUT.txt, $OUT.json, $OUT.png"
else
    echo "kernel_table: $csv, $evcsv, $OUT.txt, $OUT.json (no gnuplot: no plot)"
fi
