#!/usr/bin/env bash
# cnn_split.sh — does the conv plan's batch split (src/backend/conv.c
# split_run: conv2's oneDNN forward and input gradient as one one-thread
# primitive per half of the batch) speed up `wick train` on 2 threads?
# WICK_CONV_SPLIT=0 (one primitive over the team) and 1 (the default)
# alternate, ABBA, ROUNDS times; the conv net of cnn.sh, STEPS steps a run.
# Prints each run's samples/s and the two medians.  The products' bits are
# the same either way (test_conv_backend), so this is a speed question only;
# bench/conv_split.c times the two plans' calls alone.
#   bash bench/cnn_split.sh                 ~1 min on 2 cores
#   ROUNDS=8 STEPS=100 BUILD=build-x bash bench/cnn_split.sh
# AB=WICK_BN_DX: the same A/B of another 0/1 switch (the deferred batch norm
# dx of conv1, src/graph/ops_impl.h bn_bwd; also the same bits); likewise
# AB=WICK_CONV_BLK (conv2's output left in nChw8c for its batch norm,
# ops_impl.h bn_fwd_blk; the same bits).
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-4}
STEPS=${STEPS:-60}
BUILD=${BUILD:-build}
AB=${AB:-WICK_CONV_SPLIT}
ARCH="input:1x28x28,conv2d:32:3:pad=1,batchnorm,relu,maxpool:2,conv2d:64:3:pad=1,batchnorm,relu,maxpool:2,flatten,dropout:0.25,linear:256,relu,dropout:0.5,linear:10"
DATA=/usr/share/datasets/fashion-mnist
bash scripts/setup.sh   # the build's Debian packages and the dataset, as on a fresh machine
make -s -j2 BUILD="$BUILD" "$BUILD/wick" >/dev/null
run() {   # split
    env "$AB=$1" "$BUILD/wick" train --arch "$ARCH" --data "$DATA" --epochs 1 --max-steps "$STEPS" \
        --json --quiet --val 0 --threads 2 --batch 128 --momentum 0.9 --lr 0.01 2>/dev/null | tail -1 |
        /usr/bin/python3 -c 'import json, sys; print(round(json.load(sys.stdin)["samples_per_s"]))'
}
declare -A got=([0]="" [1]="")
echo "# $(uptime)"
for r in $(seq "$ROUNDS"); do
    order="0 1"
    [ $((r % 2)) = 0 ] && order="1 0"
    for v in $order; do
        s=$(run "$v")
        got[$v]="${got[$v]} $s"
        echo "round $r $AB=$v $s samples/s"
    done
done
echo "# $(uptime)"
for v in 0 1; do
    echo "$AB=$v median $(printf '%s\n' ${got[$v]} | sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}') samples/s (${got[$v]# })"
done
