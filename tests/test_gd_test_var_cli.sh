#!/usr/bin/env bash
# test_gd_test_var_cli.sh — `wick gd --order1 --test-gram ... --variance`: the
# variance across initialisations at the test input after gradient descent on
# the training input (wick_gd_var_test beside wick_gd_test_var_measure;
# docs/theory-finite-width.md, "the variance at a test input"): the fully
# trained infinite-width variance K_bb - 2 c K_ab + c^2 K_aa, c =
# Theta_ba/Theta_aa, against the arc-cosine kernels of ReLU (an independent
# closed form, in Python), the terms' sums, a measured row, the refusals.
# Uses $WICK (tests/run.sh exports it).
set -u
WICK=${WICK:-build/wick}
T=${WICK_TEST_TMP:-/tmp}
. "$(dirname "$0")/check.sh"

. "$(dirname "$0")/gd_check.sh"

out=$("$WICK" gd --order1 --act relu --depth 3 --eta 0.15 --target 0.7 --test-gram 1,0.5,1.5 --trained --variance --widths 8 --samples 40 --json 2>"$T/err")
rc=$?
[ $rc -eq 0 ] || bad "relu fully trained: exit code $rc: $(cat "$T/err")"
j=$(printf '%s\n' "$out" | tail -n 1)
jcheck "relu fully trained: var = K_bb - 2 c K_ab + c^2 K_aa (arc-cosine)" "$j" "abs(j['var'] - gpvar([1, .5, 1.5], 3, .15, -1)) < 1e-9"
jcheck "relu fully trained: the terms add up, the vertex 0" "$j" "abs(j['var_frozen'] - j['var_ntk1'] - j['var_DF'] - j['var_AB']) < 1e-12 and abs(j['var_beyond'] - j['var_dntk'] - j['var_ddI'] - j['var_ddII']) < 1e-12 and j['var_V'] == 0"
jcheck "relu fully trained: a measured row" "$j" "j['widths'][0]['pairs'] == 20 and math.isfinite(j['widths'][0]['n_var_beyond']) and j['widths'][0]['steps_taken'] > 5"
out=$("$WICK" gd --order1 --act relu --depth 3 --eta 0.15 --steps 3 --target 0.7 --test-gram 1,0.5,1.5 --variance --widths 8 --samples 20 --json 2>"$T/err")
j=$(printf '%s\n' "$out" | tail -n 1)
jcheck "relu t = 3: var with c = Theta_ba/Theta_aa (1 - (1 - eta Theta_aa)^3)" "$j" "abs(j['var'] - gpvar([1, .5, 1.5], 3, .15, 3)) < 1e-9"

"$WICK" gd --order1 --eta 0.1 --test-gram 1,.5,1.5 --target 1,2 --variance --samples 40 >/dev/null 2>"$T/err"
[ $? -eq 2 ] && grep -q "one --target" "$T/err" && good "two targets: usage error" || bad "two targets: $(cat "$T/err")"
"$WICK" gd --order1 --eta 0.1 --trained --variance --samples 40 >/dev/null 2>"$T/err"
[ $? -eq 2 ] && grep -q -- "--trained only with --test-gram" "$T/err" && good "--trained --variance without --test-gram: usage error" || bad "--trained --variance: $(cat "$T/err")"
finish
