#!/usr/bin/env bash
# test_gd_test_input_cli.sh — `wick gd --order1 --test-gram`: gradient descent
# on one training input read at a test input (wick_gd_mean_test beside
# wick_gd_test_measure; docs/theory-finite-width.md, "the mean at a test
# input"): the fully trained infinite-width mean Theta_ba/Theta_aa y against the
# arc-cosine kernels of ReLU (an independent closed form, in Python), the
# JSON's measured row, and the refusals.  Uses $WICK (tests/run.sh exports it).
set -u
WICK=${WICK:-build/wick}
T=${WICK_TEST_TMP:-/tmp}
. "$(dirname "$0")/check.sh"

. "$(dirname "$0")/gd_check.sh"

out=$("$WICK" gd --order1 --act relu --depth 3 --eta 0.15 --target 0.7 --test-gram 1,0.5,1.5 --trained --widths 8 --samples 40 --json 2>"$T/err")
rc=$?
[ $rc -eq 0 ] || bad "relu fully trained: exit code $rc: $(cat "$T/err")"
j=$(printf '%s\n' "$out" | tail -n 1)
jcheck "relu fully trained: lin = Theta_ba / Theta_aa y (arc-cosine)" "$j" "abs(j['lin'] - relu_ntk([1, .5, 1.5], 3)[1][0] / relu_ntk([1, .5, 1.5], 3)[0][0] * 0.7) < 1e-9"
jcheck "relu fully trained: the terms add up" "$j" "abs(j['frozen'] - j['a_ntk1'] - j['a_var']) < 1e-12 and abs(j['beyond'] - j['a_dntk'] - j['a_ddI'] - j['a_ddII']) < 1e-12 and j['a_ddI'] == 0"
jcheck "relu fully trained: a measured row" "$j" "j['widths'][0]['pairs'] == 20 and math.isfinite(j['widths'][0]['n_beyond']) and j['widths'][0]['n_eta2'] is None and j['widths'][0]['steps_taken'] > 5"
out=$("$WICK" gd --order1 --act tanh --depth 3 --eta 0.2 --steps 1 --target 1 --test-gram 1,0.5,1.5 --widths 8 --samples 40 --json 2>"$T/err")
j=$(printf '%s\n' "$out" | tail -n 1)
jcheck "tanh one step: lin = eta Theta_ba y, both dNTK forms equal" "$j" "abs(j['lin'] - 0.2 * 2.0397603) < 1e-6 and abs(j['beyond'] - j['beyond_pathwise']) < 1e-12 and math.isfinite(j['widths'][0]['n_eta3'])"

"$WICK" gd --order1 --eta 0.1 --test-gram 1,0.5 --samples 40 >/dev/null 2>"$T/err"
[ $? -eq 2 ] && grep -q "G00,G01,G11" "$T/err" && good "two Gram entries: usage error" || bad "two entries: $(cat "$T/err")"
"$WICK" gd --order1 --eta 0.1 --test-gram 1,1,1 --depth 3 --samples 40 >/dev/null 2>"$T/err"
[ $? -eq 2 ] && grep -q "parallel" "$T/err" && good "parallel inputs: usage error" || bad "parallel: $(cat "$T/err")"
"$WICK" gd --order1 --eta 0.1 --test-gram 1,.5,1.5 --target 1,2 --samples 40 >/dev/null 2>"$T/err"
[ $? -eq 2 ] && grep -q "one --target" "$T/err" && good "two targets: usage error" || bad "two targets: $(cat "$T/err")"
for v in "" --variance; do   # both read the shared check (tools/cmd_gd.c gd_test_gram)
    "$WICK" gd --order1 --eta 0.1 --test-gram 1,.5,1.5 --depth 1 $v --samples 40 >/dev/null 2>"$T/err"
    [ $? -eq 2 ] && grep -q -- "--test-gram needs --depth >= 2 (the two-input" "$T/err" && good "depth 1 ${v:-(mean)}: usage error" || bad "depth 1 $v: $(cat "$T/err")"
done
"$WICK" gd --order1 --eta 0.1 --train-gram 1,.5,1.5 --target 1,2 --steps 1 --depth 1 --samples 40 >/dev/null 2>"$T/err"
[ $? -eq 2 ] && grep -q -- "--train-gram needs --depth >= 2 (the several-input" "$T/err" && good "--train-gram depth 1: usage error" || bad "--train-gram depth 1: $(cat "$T/err")"
"$WICK" gd --trained --samples 2 >/dev/null 2>"$T/err"
[ $? -eq 2 ] && grep -q -- "--trained needs --order1" "$T/err" && good "--trained without --order1: usage error" || bad "--trained: $(cat "$T/err")"
finish
