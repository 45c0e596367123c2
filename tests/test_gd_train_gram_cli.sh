#!/usr/bin/env bash
# test_gd_train_gram_cli.sh — `wick gd --order1 --train-gram`: gradient descent
# on two training inputs read at a third (wick_gd_mean_multi beside
# wick_gd_multi_measure; docs/theory-finite-width.md, "several training
# inputs"): fully trained, the training inputs' means are the targets and the
# read input's infinite-width mean is Theta_2T Theta_TT^-1 y, against ReLU's
# arc-cosine NTK (an independent closed form, in Python, pair by pair); the
# JSON's measured rows; the refusals.  Uses $WICK (tests/run.sh exports it).
set -u
WICK=${WICK:-build/wick}
T=${WICK_TEST_TMP:-/tmp}
. "$(dirname "$0")/check.sh"

. "$(dirname "$0")/gd_check.sh"

j=$("$WICK" gd --order1 --act relu --cw 2 --cb 0 --depth 3 --eta 0.1 --trained --target 1,0.5 \
    --train-gram 1,0.5,0.3,1.5,0.2,1.2 --widths 8 --samples 8 --json 2>/dev/null | tail -n 1)
jcheck "relu fully trained on two inputs: the training means are the targets" "$j" "abs(j['inputs'][0]['lin'] - 1) < 1e-12 and abs(j['inputs'][1]['lin'] - 0.5) < 1e-12 and abs(j['inputs'][0]['beyond']) < 1e-12 and abs(j['inputs'][1]['frozen']) < 1e-12"
jcheck "relu fully trained: read input lin = Theta_2T Theta_TT^-1 y (arc-cosine)" "$j" "(lambda H01, H02, H12: abs(j['inputs'][2]['lin'] - (lambda a, b, c, d, u, v: (u * (d * 1 - b * 0.5) + v * (-c * 1 + a * 0.5)) / (a * d - b * c))(H01[0][0], H01[0][1], H01[1][0], H01[1][1], H02[1][0], H12[1][0])) < 1e-9)(relu_ntk([1, .5, 1.5], 3), relu_ntk([1, .3, 1.2], 3), relu_ntk([1.5, .2, 1.2], 3))"
jcheck "relu fully trained: measured rows at every input" "$j" "j['widths'][0]['pairs'] == 4 and len(j['widths'][0]['inputs']) == 3 and abs(j['widths'][0]['inputs'][0]['mean'] - 1) < 1e-12 and math.isfinite(j['widths'][0]['inputs'][2]['n_beyond'])"

"$WICK" gd --order1 --eta 0.1 --train-gram 1,0.5 --target 1,2 --samples 8 >/dev/null 2>"$T/err"
[ $? -eq 2 ] && grep -q "3 or 6 Gram entries" "$T/err" && good "two Gram entries: usage error" || bad "two entries: $(cat "$T/err")"
"$WICK" gd --order1 --eta 0.1 --train-gram 1,0.5,1.5 --target 1 --samples 8 >/dev/null 2>"$T/err"
[ $? -eq 2 ] && grep -q "two --target" "$T/err" && good "one target: usage error" || bad "one target: $(cat "$T/err")"
"$WICK" gd --train-gram 1,0.5,1.5 --samples 8 >/dev/null 2>"$T/err"
[ $? -eq 2 ] && grep -q -- "--train-gram needs --order1" "$T/err" && good "--train-gram without --order1: usage error" || bad "no --order1: $(cat "$T/err")"
finish
