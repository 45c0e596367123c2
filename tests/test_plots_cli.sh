#!/usr/bin/env bash
# test_plots_cli.sh — every --plot of every command, each in a short form:
# a PNG comes out, valid (signature and IHDR) and of the size the plot asks
# for (900x600; the confusion matrix 900x800, its class names when the data
# are Fashion-MNIST).  What the plots show is held in test_plot.c, through
# the gnuplot script.  Uses $WICK (tests/run.sh exports it).
set -u
W=${WICK:-build/wick}
T=${WICK_TEST_TMP:-/tmp}
FM=/usr/share/datasets/fashion-mnist
. "$(dirname "$0")/check.sh"
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}

if ! command -v gnuplot >/dev/null 2>&1; then
    skip "gnuplot not installed: no plot can be drawn"
    finish; exit
fi
# a sanitizer build runs the same code several times slower: the theory
# commands only (the plotting code is the same for all)
san=0
nm "$W" 2>/dev/null | grep -qE "__asan_report|__ubsan_handle" && san=1

# png FILE WIDTH HEIGHT: a PNG signature, then an IHDR of that size
png() {
    [ -s "$1" ] || return 1
    [ "$(od -An -tx1 -N8 "$1" | tr -d ' \n')" = 89504e470d0a1a0a ] || return 1
    local wh
    wh=$(od -An -tu1 -j16 -N8 "$1" | awk '{print $1*16777216+$2*65536+$3*256+$4, $5*16777216+$6*65536+$7*256+$8}')
    [ "$wh" = "$2 $3" ] || { echo "  $1 is $wh, not $2 $3" >&2; return 1; }
}

# plot NAME WIDTH HEIGHT -- command...: the command succeeds and NAME.png is a WIDTHxHEIGHT PNG
plot() {
    local name=$1 w=$2 h=$3; shift 4
    rm -f "$T/$name.png"
    local out rc
    out=$("$@" --plot "$T/$name.png" 2>&1 >/dev/null); rc=$?
    [ $rc = 0 ] || echo "  exit $rc: $(tail -n 3 <<<"$out")" >&2
    [ $rc = 0 ] && png "$T/$name.png" "$w" "$h"
    ok $? "$name --plot: a ${w}x${h} PNG"
}

t0=$SECONDS
plot theory 900 600 -- "$W" theory --depth 8
plot ensemble 900 600 -- "$W" ensemble --samples 200 --depth 6 --width 16
plot ntk 900 600 -- "$W" ntk --samples 40 --depth 2,3 --width 16
plot sweep 900 600 -- "$W" sweep --samples 100 --widths 16,32 --depths 2,4
if [ $san = 1 ]; then
    skip "sanitizer build: train, eval, kernel and gd plots left to the optimised build"
    finish; exit
fi

# a small CSV problem: label first, 4 features, 3 classes
python3 - "$T" <<'PY'
import sys, random
random.seed(2)
with open(sys.argv[1] + "/p.csv", "w") as f:
    for i in range(300):
        x = [random.gauss(0, 1) for _ in range(4)]
        f.write(f"{int(x[0] > 0) + int(x[1] > 0.5)}," + ",".join(f"{v:.5f}" for v in x) + "\n")
PY
C="--train-csv $T/p.csv --test-csv $T/p.csv --arch 4-16-3 --batch 16 --quiet"
plot train 900 600 -- "$W" train $C --epochs 3 --out "$T/p.safetensors"
plot train-one-epoch 900 600 -- "$W" train $C --epochs 1
plot eval 900 800 -- "$W" eval --model "$T/p.safetensors" --test-csv "$T/p.csv"

if [ -r "$FM/t10k-labels-idx1-ubyte.gz" ] || [ -r "$FM/t10k-labels-idx1-ubyte" ]; then
    plot kernel 900 600 -- "$W" kernel --train 60 --test 60 --classes 2 --depths 1,2 --cbs 0
    plot gd 900 600 -- "$W" gd --train 24 --test 24 --samples 2 --widths 16,32 --steps 3 --probes 4
    "$W" train --arch 784-8-10 --epochs 1 --max-steps 20 --val 0 --quiet --out "$T/f.safetensors" >/dev/null 2>&1
    # the class names go to gnuplot as tick labels: through a stand-in gnuplot
    mkdir -p "$T/bin"
    printf '#!/bin/sh\ncat > "%s/cm.gp"\nout=$(sed -n "s/^set output '"'"'\\(.*\\)'"'"'$/\\1/p" "%s/cm.gp")\nprintf x > "$out"\n' "$T" "$T" > "$T/bin/gnuplot"
    chmod +x "$T/bin/gnuplot"
    PATH="$T/bin:$PATH" "$W" eval --model "$T/f.safetensors" --plot "$T/cm.png" >/dev/null 2>&1
    grep -q "'Ankle boot' 9" "$T/cm.gp" && grep -q "'T-shirt/top' 0" "$T/cm.gp"
    ok $? "eval --plot on Fashion-MNIST names the classes"
else
    skip "Fashion-MNIST not installed: kernel, gd and the named confusion matrix"
fi
echo "  ($((SECONDS - t0)) s)" >&2
finish
