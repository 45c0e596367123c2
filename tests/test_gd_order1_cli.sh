#!/usr/bin/env bash
# test_gd_order1_cli.sh — `wick gd --order1`: the order-1/n prediction of the
# trained mean after t steps from one input (wick_gd_mean1, wick_gd_mean_t)
# beside its measurement on mirror pairs (docs/theory-finite-width.md), its
# JSON against the closed forms for ReLU at criticality, and the refusals.
# Uses $WICK (tests/run.sh exports it).
set -u
WICK=${WICK:-build/wick}
T=${WICK_TEST_TMP:-/tmp}
. "$(dirname "$0")/check.sh"

jcheck() {  # name, json, python expression over j that must be True
    if printf '%s' "$2" | /usr/bin/python3 -c "import json,sys,math; j=json.loads(sys.stdin.read()); sys.exit(0 if ($3) else 1)"; then
        good "$1"; else bad "$1: $3"; fi
}

# ReLU at criticality, depth 3, eta = 0.08, y = 1: eta Theta = 0.48, Theta1 = 0,
# beyond = -eta^2 (P + Q/2) = -0.0064 * 32 (R = 0); t = 2: lin = 1 - 0.52^2,
# frozen = -eta^2 (A + 2B) = -0.0064 * 141
out=$("$WICK" gd --order1 --act relu --depth 3 --eta 0.08 --steps 1 --target 1 --widths 8 --samples 200 --json 2>"$T/err")
rc=$?
[ $rc -eq 0 ] || bad "relu one step: exit code $rc: $(cat "$T/err")"
j=$(printf '%s\n' "$out" | tail -n 1)
jcheck "relu one step: prediction" "$j" "abs(j['lin'] - 0.48) < 1e-12 and abs(j['frozen']) < 1e-12 and abs(j['beyond'] + 0.2048) < 1e-12"
jcheck "relu one step: a measured row" "$j" "j['widths'][0]['width'] == 8 and j['widths'][0]['pairs'] == 100 and math.isfinite(j['widths'][0]['n_eta2'])"
out=$("$WICK" gd --order1 --act relu --depth 3 --eta 0.08 --steps 2 --target 1 --widths 8 --samples 100 --json 2>"$T/err")
j=$(printf '%s\n' "$out" | tail -n 1)
jcheck "relu two steps: prediction" "$j" "abs(j['lin'] - (1 - 0.52**2)) < 1e-12 and abs(j['frozen'] + 0.0064 * 141) < 1e-10 and j['widths'][0]['n_eta2'] is None"

"$WICK" gd --order1 --steps 1 --samples 100 >/dev/null 2>"$T/err"
[ $? -eq 2 ] && grep -q "needs --eta" "$T/err" && good "no eta: usage error" || bad "no eta: $(cat "$T/err")"
"$WICK" gd --order1 --eta 0.1 --steps 1 --samples 101 >/dev/null 2>"$T/err"
[ $? -eq 2 ] && grep -q "mirror pairs" "$T/err" && good "odd samples: usage error" || bad "odd samples: $(cat "$T/err")"
# two outputs, t = 2 (wick_gd_mean_tn): per unit target, frozen = -eta^2 (A + 3B) = -0.0064 * 181;
# --variance, one output, t = 2: var = 0.52^4 K, frozen = -4 eta 0.52^3 (D + 2F) + eta^2 0.52^2 (A + 2B) (6K + 4)
# with K = 2, D + 2F = 90, A + 2B = 141
out=$("$WICK" gd --order1 --act relu --depth 3 --eta 0.08 --steps 2 --target 1,-0.5 --widths 8 --samples 100 --json 2>"$T/err")
j=$(printf '%s\n' "$out" | tail -n 1)
jcheck "relu two steps, two outputs: prediction" "$j" "j['outputs'] == 2 and abs(j['lin'] - (1 - 0.52**2)) < 1e-12 and abs(j['frozen'] + 0.0064 * 181) < 1e-10 and math.isfinite(j['widths'][0]['n_beyond'])"
out=$("$WICK" gd --order1 --act relu --depth 3 --eta 0.08 --steps 2 --target 1 --widths 8 --samples 100 --variance --json 2>"$T/err")
j=$(printf '%s\n' "$out" | tail -n 1)
jcheck "relu two steps, variance: prediction" "$j" "abs(j['var'] - 2 * 0.52**4) < 1e-12 and abs(j['var_frozen'] - (-0.32 * 0.52**3 * 90 + 0.0064 * 0.52**2 * 141 * 16)) < 1e-10 and math.isfinite(j['widths'][0]['n_var_beyond']) and j['widths'][0]['var'] > 0"
"$WICK" gd --order1 --eta 0.1 --steps 2 --target 1,2 --samples 100 --variance >/dev/null 2>"$T/err"
[ $? -eq 2 ] && grep -q "one --target" "$T/err" && good "--variance with two outputs: usage error" || bad "variance, two outputs: $(cat "$T/err")"
"$WICK" gd --order1 --act relu --depth 3 --eta 0.5 --steps 2 --samples 100 >/dev/null 2>"$T/err"
[ $? -ne 0 ] && grep -q "converge" "$T/err" && good "eta above 2/Theta refused" || bad "eta 0.5: $(cat "$T/err")"
"$WICK" gd --order1 --eta 0.1 --steps 1 --samples 100 --train 32 >/dev/null 2>"$T/err"
[ $? -eq 2 ] && grep -q -- "--train contradicts --order1" "$T/err" && good "--order1 with --train: usage error" || bad "--train: $(cat "$T/err")"
"$WICK" gd --target 1 --samples 2 >/dev/null 2>"$T/err"
[ $? -eq 2 ] && grep -q -- "--target needs --order1" "$T/err" && good "--target without --order1: usage error" || bad "--target: $(cat "$T/err")"
finish
