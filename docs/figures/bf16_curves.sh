#!/bin/bash
# bf16 against float32 training, epoch by epoch (docs/precision.md): the main job
# (scripts/main.sh's MLP: 30 epochs, label smoothing 0.1, weight decay 5e-4) at each
# precision and seeds 1 and 2, the validation loss and accuracy per epoch from
# `wick train --log`; writes docs/figures/bf16_curves.dat (columns: precision seed
# epoch train_loss val_loss val_acc) and draws docs/figures/bf16_curves.png.
# usage: bash docs/figures/bf16_curves.sh [WICK]  (from the repository root, on a CPU
# with AVX512-BF16; about a minute on 2 cores)
set -e
W=${1:-build/wick}
dir=docs/figures
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
out=$dir/bf16_curves.dat
echo "# precision seed epoch train_loss val_loss val_acc test_acc" > $out
for p in f32 bf16; do
    for seed in 1 2; do
        acc=$($W train --epochs 30 --label-smoothing 0.1 --weight-decay 5e-4 --precision $p --seed $seed \
              --log "$tmp/$p$seed.jsonl" --json 2>/dev/null | tail -1 |
              python3 -c "import json,sys; print(json.load(sys.stdin)['test_acc'])")
        python3 - "$tmp/$p$seed.jsonl" $p $seed "$acc" >> $out <<'PY'
import json, sys
for line in open(sys.argv[1]):
    e = json.loads(line)
    print(sys.argv[2], sys.argv[3], e["epoch"], e["train_loss"], e["val_loss"], e["val_acc"], sys.argv[4])
PY
        echo >> $out; echo >> $out
    done
done
gnuplot <<GP
set terminal pngcairo size 1000,420 font "sans,10"
set output "$dir/bf16_curves.png"
set multiplot layout 1,2 title "784-512-512-10 ReLU, Fashion-MNIST: bf16 products (--precision bf16) against float32, seeds 1 and 2"
set xlabel "epoch"; set grid
set ylabel "loss (label smoothing 0.1)"
set key top right
plot "$out" index 0 using 3:4 with lines lw 2 lc rgb "#1f77b4" title "float32 train, seed 1", \
     "" index 0 using 3:5 with lines lw 2 dt 2 lc rgb "#1f77b4" title "float32 validation", \
     "" index 1 using 3:5 with lines lw 1 dt 2 lc rgb "#9ecae1" title "float32 validation, seed 2", \
     "" index 2 using 3:4 with lines lw 2 lc rgb "#d62728" title "bf16 train, seed 1", \
     "" index 2 using 3:5 with lines lw 2 dt 2 lc rgb "#d62728" title "bf16 validation", \
     "" index 3 using 3:5 with lines lw 1 dt 2 lc rgb "#fc9272" title "bf16 validation, seed 2"
set ylabel "validation accuracy"
set key bottom right
plot "$out" index 0 using 3:6 with lines lw 2 lc rgb "#1f77b4" title "float32, seed 1", \
     "" index 1 using 3:6 with lines lw 1 lc rgb "#9ecae1" title "float32, seed 2", \
     "" index 2 using 3:6 with lines lw 2 lc rgb "#d62728" title "bf16, seed 1", \
     "" index 3 using 3:6 with lines lw 1 lc rgb "#fc9272" title "bf16, seed 2"
unset multiplot
GP
echo "test accuracy (seed 1, seed 2):"
awk '!/^#/ && NF && $3 == 30 {print "  " $1 " seed " $2 ": " $7}' $out
