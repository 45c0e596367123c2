#!/bin/bash
# The fully trained mean at a TEST input (docs/theory-finite-width.md, "the
# mean at a test input"): one `wick gd --order1 --test-gram --trained --json`
# per width, tanh at criticality, depth 3, eta = 0.4, y = 1, inputs of Gram
# (1, 0.5, 1.5); writes docs/figures/gd2_gap.dat (columns: act n pairs
# n*beyond se n*frozen se n*gap_inf se n*gap_1n se, where gap_inf = E[r] +
# frozen/n predicted and gap_1n subtracts the beyond prediction as well:
# see the docs for why the frozen part is the prediction's).
# usage: bash docs/figures/gd2_gap.sh [WICK] (from the repository root; about
# an hour of two cores, most of it n = 2048 and 1024)
set -e
W=${1:-build/wick}
out=docs/figures/gd2_gap.dat
echo "# act n pairs n_beyond se n_frozen se n_gap_inf se n_gap_1n se" > $out
run() {  # act cw eta widths:samples...
    act=$1 cw=$2 eta=$3; shift 3
    for ws in "$@"; do
        n=${ws%:*} m=${ws#*:}
        $W gd --order1 --act $act --cw $cw --cb 0 --depth 3 --eta $eta --target 1 \
           --test-gram 1,0.5,1.5 --trained --widths $n --samples $m --seed 5 --json | tail -1 |
        python3 -c "
import json,sys; j=json.load(sys.stdin); r=j['widths'][0]
fz, be = j['frozen'], j['beyond']
print('$act', r['width'], r['pairs'], r['n_beyond'], r['n_beyond_se'], r['n_frozen'], r['n_frozen_se'],
      r['n_beyond'] + fz, r['n_beyond_se'], r['n_beyond'] - be, r['n_beyond_se'])" >> $out
    done
}
run tanh 1 0.4 64:16000 128:8000 256:4000 512:2000 1024:800 2048:200
echo >> $out; echo >> $out
run relu 2 0.15 64:8000 128:4000 256:2000 512:800 1024:200
